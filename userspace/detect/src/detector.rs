//! The one trait every stateful detector implements, and the static description of what its
//! alerts mean.

use heir_model::{Alert, Category, Event, Severity, Taxonomy, Timestamp};

use crate::Kind;

/// A detector: looks at the events of the kinds it asked for and appends alerts.
///
/// Detectors never block and never allocate per event unless something is worth remembering;
/// the engine calls [`Detector::tick`] with the clock's time so windows close and periodic
/// analyses (beacons, anomaly windows) run even when no event arrives.
pub trait Detector: Send {
    /// Stable name, used in the configuration table and in state snapshots.
    fn name(&self) -> &'static str;
    /// Event kinds this detector wants; it sees no others.
    fn kinds(&self) -> &'static [Kind];
    fn inspect(&mut self, event: &Event, out: &mut Vec<Alert>);
    fn tick(&mut self, _now: Timestamp, _out: &mut Vec<Alert>) {}
    /// Learnt state worth keeping across restarts (baselines, models), serialised.
    fn save(&self) -> Option<Vec<u8>> {
        None
    }
    fn restore(&mut self, _state: &[u8]) -> Result<(), StateError> {
        Ok(())
    }
}

/// A saved detector state could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("state of detector `{detector}` is unreadable")]
    Decode {
        detector: String,
        #[source]
        source: postcard::Error,
    },
    #[error("state snapshot is unreadable")]
    Snapshot(#[source] postcard::Error),
}

/// What one kind of alert means: rule id, category and where it sits in the taxonomies.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    pub rule: &'static str,
    pub category: Category,
    pub owasp_iot: &'static str,
    pub enisa: &'static str,
    pub attack: &'static str,
}

impl Spec {
    pub fn alert(
        &self,
        ts: Timestamp,
        title: impl Into<String>,
        severity: Severity,
        confidence: f32,
    ) -> Alert {
        let mut a = Alert::new(ts, self.rule, title, self.category, severity, confidence);
        a.taxonomy = Taxonomy {
            owasp_iot: Some(self.owasp_iot.to_owned()),
            enisa: Some(self.enisa.to_owned()),
            attack: Some(self.attack.to_owned()),
        };
        a
    }

    /// An alert about a host process: pid and comm filled in from the event.
    pub fn process_alert(
        &self,
        ev: &Event,
        title: impl Into<String>,
        severity: Severity,
        confidence: f32,
    ) -> Alert {
        let mut a = self.alert(ev.ts, title, severity, confidence);
        a.pid = Some(ev.process.pid);
        a.comm = Some(ev.process.comm.clone());
        a
    }
}
