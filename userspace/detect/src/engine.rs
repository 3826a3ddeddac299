//! The detection stage of the pipeline: every event goes to the rules and detectors that asked
//! for its kind, and what they conclude goes through incident aggregation.
//!
//! ```no_run
//! use std::sync::Arc;
//! use heir_detect::{Config, Engine, SystemClock};
//!
//! let mut engine = Engine::new(&Config::default(), Arc::new(SystemClock));
//! engine.reload_rules(std::path::Path::new("/etc/heir/rules")).expect("rules load");
//! let mut alerts = Vec::new();
//! # let events: Vec<heir_model::Event> = Vec::new();
//! for ev in &events {
//!     engine.process(ev, &mut alerts);
//! }
//! engine.tick(&mut alerts); // once a second: closes windows, flushes incidents
//! ```

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use heir_model::{Alert, Event};
use serde::{Deserialize, Serialize};

use crate::aggregate::Aggregator;
use crate::rules::{self, RuleSet, Runtime, Sources, Watcher};
use crate::{Clock, Config, Detector, Kind, StateError, registry};

/// Counters an operator can watch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub events: u64,
    pub raw_alerts: u64,
    pub published_alerts: u64,
    pub rule_reloads: u64,
    pub rule_reload_failures: u64,
}

/// What a successful rules reload changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reload {
    pub rules: usize,
}

#[derive(Serialize, Deserialize)]
struct Snapshot {
    detectors: Vec<(String, Vec<u8>)>,
}

/// Rules, detectors and aggregation behind one call per event.
pub struct Engine {
    detectors: Vec<Box<dyn Detector>>,
    by_kind: Vec<Vec<usize>>,
    rules: Runtime,
    rule_set: RuleSet,
    watcher: Option<Watcher>,
    aggregator: Aggregator,
    clock: Arc<dyn Clock>,
    raw: Vec<Alert>,
    stats: Stats,
    local_device: Option<String>,
    known: crate::known::Matcher,
}

impl Engine {
    /// Builds every enabled detector; rules start empty until [`Engine::reload_rules`] or
    /// [`Engine::set_rules`].
    pub fn new(cfg: &Config, clock: Arc<dyn Clock>) -> Self {
        Self::with_detectors(registry::build(cfg), cfg, clock)
    }

    /// An engine over a chosen set of detectors (tests, benchmarks, embedding).
    pub fn with_detectors(
        detectors: Vec<Box<dyn Detector>>,
        cfg: &Config,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let mut by_kind = vec![Vec::new(); Kind::COUNT];
        for (i, d) in detectors.iter().enumerate() {
            for k in d.kinds() {
                by_kind[k.index()].push(i);
            }
        }
        Self {
            detectors,
            by_kind,
            rules: Runtime::default(),
            rule_set: RuleSet::default(),
            watcher: None,
            aggregator: Aggregator::new((&cfg.aggregate).into()),
            clock,
            raw: Vec::new(),
            stats: Stats::default(),
            local_device: None,
            known: crate::known::Matcher::default(),
        }
    }

    /// Runs one event through the matching rules and detectors; appends the alerts to publish.
    pub fn process(&mut self, ev: &Event, out: &mut Vec<Alert>) {
        self.stats.events += 1;
        self.rules.inspect(ev, &mut self.raw);
        for &i in &self.by_kind[Kind::of(&ev.kind).index()] {
            self.detectors[i].inspect(ev, &mut self.raw);
        }
        self.known.inspect(ev, &mut self.raw);
        if !self.raw.is_empty() {
            self.publish(out);
        }
    }

    fn publish(&mut self, out: &mut Vec<Alert>) {
        let before = out.len();
        self.stats.raw_alerts += self.raw.len() as u64;
        for mut a in self.raw.drain(..) {
            if let Some(name) = &self.local_device
                && (a.device.as_deref() == Some("local") || (a.device.is_none() && a.pid.is_some()))
            {
                a.device = Some(name.clone());
            }
            self.aggregator.push(a, out);
        }
        self.stats.published_alerts += (out.len() - before) as u64;
    }

    /// Housekeeping at the clock's time: closes feature and traffic windows, flushes incidents.
    pub fn tick(&mut self, out: &mut Vec<Alert>) {
        self.tick_at(self.clock.now(), out);
    }

    /// Housekeeping at a given time; `heir replay` ticks at the replayed events' time so a
    /// recording gives the same alerts as the live run.
    pub fn tick_at(&mut self, now: heir_model::Timestamp, out: &mut Vec<Alert>) {
        for d in &mut self.detectors {
            d.tick(now, &mut self.raw);
        }
        self.publish(out);
        let before = out.len();
        self.aggregator.flush(now, out);
        self.stats.published_alerts += (out.len() - before) as u64;
    }

    /// Adds, replaces or removes a known indicator (from the mesh or an import): the
    /// events that follow are matched against it.
    pub fn known(&mut self, update: crate::known::Update) {
        self.known.apply(update);
    }

    /// Known indicators being matched.
    pub fn known_len(&self) -> usize {
        self.known.len()
    }

    /// Publishes alerts raised outside the event stream (a retro-hunt's), through the same
    /// naming and aggregation as the detectors' own.
    pub fn raise(&mut self, alerts: impl IntoIterator<Item = Alert>, out: &mut Vec<Alert>) {
        self.raw.extend(alerts);
        self.publish(out);
    }

    /// Names this host in alerts about its own processes (syscall events carry no address):
    /// the agent passes the device name or address the inventory knows it by.
    pub fn set_local_device(&mut self, name: impl Into<String>) {
        self.local_device = Some(name.into());
    }

    /// Swaps the rule set. Unchanged rules keep their threshold windows and detectors keep
    /// all their state.
    pub fn set_rules(&mut self, set: RuleSet) {
        self.rules.replace(&set);
        self.rule_set = set;
    }

    pub fn rules(&self) -> &RuleSet {
        &self.rule_set
    }

    /// Loads `dir` alone (no built-in rules) and swaps it in, and watches it from now on.
    pub fn reload_rules(&mut self, dir: &Path) -> Result<Reload, rules::Error> {
        self.load_rules(&Sources::dir(dir))
    }

    /// Loads `sources` and swaps them in, and watches their directories from now on. On error
    /// nothing changes: the previous rules stay active and the error says which file, line and
    /// column.
    pub fn load_rules(&mut self, sources: &Sources) -> Result<Reload, rules::Error> {
        if self.watcher.as_ref().is_none_or(|w| w.sources() != sources) {
            self.watcher = Some(Watcher::new(sources.clone()));
        }
        match rules::load(sources) {
            Ok(set) => {
                self.stats.rule_reloads += 1;
                let n = set.len();
                self.set_rules(set);
                Ok(Reload { rules: n })
            }
            Err(e) => {
                self.stats.rule_reload_failures += 1;
                Err(e)
            }
        }
    }

    /// Reloads the watched sources if a file changed since the last look. `None` when nothing
    /// changed (or nothing is watched).
    pub fn reload_if_changed(&mut self) -> Option<Result<Reload, rules::Error>> {
        let w = self.watcher.as_mut()?;
        if !w.changed() {
            return None;
        }
        let sources = w.sources().clone();
        Some(self.load_rules(&sources))
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    pub fn detector_names(&self) -> Vec<&'static str> {
        self.detectors.iter().map(|d| d.name()).collect()
    }

    /// Learnt state of every detector that has some (baselines, anomaly models), for the store.
    pub fn save_state(&self) -> Vec<u8> {
        let snap = Snapshot {
            detectors: self
                .detectors
                .iter()
                .filter_map(|d| Some((d.name().to_owned(), d.save()?)))
                .collect(),
        };
        postcard::to_allocvec(&snap).unwrap_or_default()
    }

    /// Restores what [`Engine::save_state`] wrote; detectors missing from the snapshot keep a
    /// fresh state, and a corrupt snapshot changes nothing.
    pub fn restore_state(&mut self, bytes: &[u8]) -> Result<(), StateError> {
        let snap: Snapshot = postcard::from_bytes(bytes).map_err(StateError::Snapshot)?;
        let by_name: HashMap<String, Vec<u8>> = snap.detectors.into_iter().collect();
        for d in &mut self.detectors {
            if let Some(s) = by_name.get(d.name()) {
                d.restore(s)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use heir_model::{EventKind, Process, Timestamp};

    #[test]
    fn engine_moves_between_threads_and_names_the_local_device() {
        fn send<T: Send>() {}
        send::<Engine>();
        let mut e = Engine::new(&Config::default(), Arc::new(crate::ManualClock::default()));
        e.set_local_device("infusion-gw-3");
        let ev = Event {
            ts: Timestamp::from_secs(1),
            process: Process {
                pid: 9,
                comm: "insmod".into(),
                ..Default::default()
            },
            kind: EventKind::Module {
                op: heir_model::event::ModuleOp::InitModule,
                name: Some("rootkit".into()),
                ret: 0,
            },
        };
        let mut out = Vec::new();
        e.process(&ev, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].device.as_deref(), Some("infusion-gw-3"));
        assert_eq!(
            e.stats(),
            Stats {
                events: 1,
                raw_alerts: 1,
                published_alerts: 1,
                ..Stats::default()
            }
        );
        assert_eq!(e.detector_names().len(), 17);
    }
}
