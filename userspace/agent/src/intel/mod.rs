//! What the observatory and the operator know, put to work: the indicators other hospitals
//! reported over the mesh and those the operator imported are matched against the sensors'
//! events by the detection engine ([`heir_detect::known`]), and every new one is hunted for
//! in the events the store already holds.
//!
//! ```text
//! mesh node ──┐                          ┌─► pipeline: engine.known(update)
//!             ├─► Learn ─► intel task ───┤
//! API import ─┘                          └─► store scan (retro-hunt) ─► pipeline: raise
//! ```

pub mod import;

use std::sync::Arc;
use std::time::Duration;

use heir_detect::known::{Hunt, Known, Origin, Target, Update};
use heir_mesh::Observable;
use heir_mesh::knowledge::Entry;
use heir_model::Timestamp;
use heir_store::Read as _;
use serde::Deserialize;
use tokio::sync::mpsc;

use crate::pipeline::Control;

/// `[intel]` in the configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// How many days of stored events are searched when an indicator arrives; 0: none. The
    /// store's retention (`[retention] max_age`, `max_events`) bounds it as well.
    pub retro_hunt_days: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config { retro_hunt_days: 7 }
    }
}

/// One change to what this node knows, for the intel task.
#[derive(Debug)]
pub struct Learn {
    pub update: Update,
    /// Search the stored events for earlier contacts (a new indicator, not new facts about
    /// one already known).
    pub hunt: bool,
}

/// Queue from the mesh and the API to the intel task.
pub const QUEUE: usize = 1024;

/// How long a retro-hunt waits for the events before it to be committed: longer than the
/// store sink's commit interval (one second), with room for a busy pipeline.
const HUNT_DELAY: Duration = Duration::from_secs(3);

/// The matcher's key of a mesh indicator.
pub fn mesh_id(id: &heir_mesh::indicator::IndicatorId) -> String {
    format!("mesh:{id}")
}

/// A mesh indicator as the matcher needs it: `None` when it is withdrawn, reported as a
/// false positive, expired, or names nothing the sensors see (a file hash, a product).
pub fn from_entry(e: &Entry, now: Timestamp) -> Option<Known> {
    let i = &e.indicator;
    if e.withdrawn || !e.false_positive.is_empty() || i.valid_until.is_some_and(|u| u <= now) {
        return None;
    }
    let target = match &i.observable {
        Observable::Ip(a) => Target::Address(*a),
        Observable::Domain(d) => Target::domain(d)?,
        Observable::Url(u) => Target::url(u)?,
        Observable::Sha256(_) | Observable::Product(_) => return None,
    };
    let mut reporters: Vec<String> = e.reports.iter().map(|r| r.hospital.clone()).collect();
    reporters.sort();
    reporters.dedup();
    Some(Known {
        id: mesh_id(&i.id),
        target,
        reported_as: i.category,
        reporters,
        tlp: i.tlp.label().to_owned(),
        confidence: (e.confidence.clamp(0.0, 1.0) * 100.0).round() as u8,
        severity: i.severity,
        attack: i.attack.clone(),
        origin: Origin::Mesh,
    })
}

/// Sends the imports the store holds to the intel task: those made while the agent was
/// stopped are hunted for, the others were when they came.
pub async fn learn_imports(store: Arc<heir_store::Store>, learn: mpsc::Sender<Learn>) {
    let read = store.clone();
    let held = tokio::task::spawn_blocking(move || {
        Ok::<_, import::Error>((import::stored(&*read)?, import::pending_hunts(&*read)?))
    })
    .await;
    let (imports, pending) = match held {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => {
            tracing::error!("imported indicators not matched: {}", heir_api::Chain(&e));
            return;
        }
        Err(e) => {
            tracing::error!("imported indicators not matched: {e}");
            return;
        }
    };
    let pending: std::collections::HashSet<String> = pending.into_iter().collect();
    for i in &imports {
        let Some(known) = import::known(i) else {
            tracing::warn!(
                "imported indicator `{}` ({}) is not valid; skipped",
                i.value,
                i.kind.as_str()
            );
            continue;
        };
        let hunt = pending.contains(&known.id);
        if learn
            .send(Learn {
                update: Update::Add(known),
                hunt,
            })
            .await
            .is_err()
        {
            return;
        }
    }
    if !pending.is_empty()
        && let Err(e) = store.put_blob(import::UNHUNTED, b"[]")
    {
        tracing::error!("clearing the imports' hunt list: {}", heir_api::Chain(&e));
    }
}

/// Hands each change to the pipeline, then hunts for the new indicators (all that arrived
/// together, in one pass over the store) in the events stored before they came. Ends when
/// every sender is gone or the pipeline has stopped.
pub async fn run(
    mut rx: mpsc::Receiver<Learn>,
    control: mpsc::Sender<Control>,
    store: Arc<heir_store::Store>,
    config: Config,
) {
    let mut batch = Vec::new();
    while rx.recv_many(&mut batch, QUEUE).await > 0 {
        let until = Timestamp::now();
        let mut new = Vec::new();
        for learn in batch.drain(..) {
            if learn.hunt
                && let Update::Add(k) = &learn.update
            {
                new.push(k.clone());
            }
            if control.send(Control::Known(learn.update)).await.is_err() {
                return;
            }
        }
        if new.is_empty() || config.retro_hunt_days == 0 {
            continue;
        }
        // Contacts the pipeline saw just before the indicator came are still on their way
        // into the store: hunt once they are there.
        tokio::time::sleep(HUNT_DELAY).await;
        let days = Duration::from_secs(u64::from(config.retro_hunt_days) * 24 * 3600);
        let from = Timestamp::from_nanos(until.as_nanos().saturating_sub(days.as_nanos() as u64));
        let store = store.clone();
        let n = new.len();
        let found = tokio::task::spawn_blocking(move || {
            let mut hunt = Hunt::new(new);
            let visited = store.events_between(from, until, &mut |ev| hunt.visit(&ev))?;
            Ok::<_, heir_store::Error>((visited, hunt.finish(Timestamp::now())))
        })
        .await;
        match found {
            Ok(Ok((visited, alerts))) => {
                tracing::info!(
                    "retro-hunt: {n} new indicator(s) over {visited} stored event(s): {} earlier contact(s)",
                    alerts.len()
                );
                if !alerts.is_empty() && control.send(Control::Raise(alerts)).await.is_err() {
                    return;
                }
            }
            Ok(Err(e)) => tracing::error!("retro-hunt: {}", heir_api::Chain(&e)),
            Err(e) => tracing::error!("retro-hunt stopped: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use heir_mesh::Indicator;
    use heir_mesh::knowledge::Report;
    use heir_model::{Category, Severity};

    use super::*;

    fn entry(observable: Observable) -> Entry {
        let mut i = Indicator::new(
            observable,
            Category::C2Beacon,
            Severity::High,
            Timestamp::from_secs(1000),
        );
        i.valid_until = Some(Timestamp::from_secs(5000));
        let report = |h: &str| Report {
            hospital: h.into(),
            confidence: 0.8,
            at: Timestamp::from_secs(1000),
        };
        Entry {
            indicator: i,
            reports: vec![
                report("hospital-b"),
                report("hospital-a"),
                report("hospital-b"),
            ],
            sightings: 0,
            false_positive: BTreeSet::new(),
            withdrawn: false,
            confidence: 0.86,
            first_seen: Timestamp::from_secs(1000),
            last_seen: Timestamp::from_secs(1000),
        }
    }

    #[test]
    fn mesh_entries_become_what_traffic_is_matched_against() {
        let now = Timestamp::from_secs(2000);
        let e = entry(Observable::Ip("203.0.113.66".parse().unwrap()));
        let k = from_entry(&e, now).unwrap();
        assert_eq!(k.target, Target::Address("203.0.113.66".parse().unwrap()));
        assert_eq!(k.reporters, ["hospital-a", "hospital-b"]);
        assert_eq!((k.confidence, k.tlp.as_str()), (86, "TLP:GREEN"));
        assert_eq!(k.id, mesh_id(&e.indicator.id));
        let d = from_entry(&entry(Observable::Domain("C2.Example.NET.".into())), now).unwrap();
        assert_eq!(d.target, Target::Domain("c2.example.net".into()));
        // Nothing the sensors could see, or nothing to believe any more.
        assert!(from_entry(&entry(Observable::Sha256([1; 32])), now).is_none());
        let mut withdrawn = e.clone();
        withdrawn.withdrawn = true;
        assert!(from_entry(&withdrawn, now).is_none());
        let mut disputed = e.clone();
        disputed.false_positive.insert("hospital-c".into());
        assert!(from_entry(&disputed, now).is_none());
        assert!(
            from_entry(&e, Timestamp::from_secs(5000)).is_none(),
            "expired"
        );
    }
}
