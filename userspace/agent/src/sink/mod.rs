//! The pipeline's end: one fan-out to the components that keep, send or act on what the
//! detectors saw — the store, the alert file, syslog, RAMA, the responder, the mesh and the
//! API's live stream.
//!
//! Each component runs on its own thread behind its own bounded queue, as Vector's sinks do.
//! The fan-out never waits: an item a full queue turns away is counted as
//! [`Dropped`]`{ component, reason }`, and those counts reach the metrics endpoint, the
//! terminal UI and the log. So a slow disk, a syslog host that stopped answering or a kernel
//! map write never slows detection, and nothing is lost without a number saying so.
//!
//! A component is a [`Sink`]: it names itself, says what it wants, and handles one item at a
//! time on its thread; [`Fanout::close`] lets every component drain its queue and flush.

mod outputs;
mod rama;
mod store;
mod syslog;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::time::{Duration, Instant};

use heir_model::{Alert, Event};

pub use outputs::{AlertFile, EventFile, Live, MeshShare, Respond};
pub use rama::Rama;
pub use store::Store;
pub use syslog::Syslog;

/// What a component receives. Event batches are shared, not copied, between components.
#[derive(Debug, Clone)]
pub enum Item {
    Events(Arc<Vec<Event>>),
    Alert(Arc<Alert>),
}

impl Item {
    /// What the item counts for in drop counters: its events, or one alert.
    fn weight(&self) -> u64 {
        match self {
            Item::Events(e) => e.len() as u64,
            Item::Alert(_) => 1,
        }
    }
}

/// What a component takes from the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wants {
    pub events: bool,
    pub alerts: bool,
}

impl Wants {
    pub const ALERTS: Wants = Wants {
        events: false,
        alerts: true,
    };
    pub const EVENTS: Wants = Wants {
        events: true,
        alerts: false,
    };
    pub const BOTH: Wants = Wants {
        events: true,
        alerts: true,
    };
}

/// Why a component failed to handle an item, and how much it lost. Each component has its
/// own errors; the fan-out only counts and logs them.
#[derive(Debug)]
pub struct Failure {
    /// Items lost; `None` means the one item being handled (nothing, for a tick or a close).
    pub lost: Option<u64>,
    pub error: Box<dyn std::error::Error + Send + Sync>,
}

impl Failure {
    /// `error` lost `lost` items (a buffer that could not be written, say).
    pub fn lost(lost: u64, error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Failure {
            lost: Some(lost),
            error: error.into(),
        }
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure {
            lost: None,
            error: Box::new(e),
        }
    }
}

/// A component at the end of the pipeline. Its methods run on the component's own thread,
/// so they may block (a disk write, a kernel map update) without slowing anything else.
pub trait Sink: Send + 'static {
    /// The component's name in drop counters, metrics and logs (`store`, `syslog`, …).
    fn name(&self) -> &'static str;
    /// What the component takes.
    fn wants(&self) -> Wants;
    /// One batch of enriched events.
    fn events(&mut self, _events: &[Event]) -> Result<(), Failure> {
        Ok(())
    }
    /// One alert.
    fn alert(&mut self, _alert: &Alert) -> Result<(), Failure> {
        Ok(())
    }
    /// Called about every [`TICK`], busy or idle: time-driven work such as flushing a buffer
    /// or saving state.
    fn tick(&mut self) -> Result<(), Failure> {
        Ok(())
    }
    /// The pipeline has ended and the queue is drained: flush everything held.
    fn close(&mut self) -> Result<(), Failure> {
        Ok(())
    }
}

/// How often components get [`Sink::tick`].
pub const TICK: Duration = Duration::from_secs(1);

/// Why an item did not reach a component, or did not get through it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    /// The component's queue was full: it is slower than the pipeline.
    QueueFull,
    /// The component's thread has ended (it panicked, or it is shutting down).
    Stopped,
    /// The component took the item and failed to handle it (a write error, a refused send).
    Failed,
}

impl Reason {
    pub const ALL: [Reason; 3] = [Reason::QueueFull, Reason::Stopped, Reason::Failed];

    /// The label value in metrics and the API.
    pub const fn name(self) -> &'static str {
        match self {
            Reason::QueueFull => "queue_full",
            Reason::Stopped => "stopped",
            Reason::Failed => "failed",
        }
    }
}

/// Items one component lost for one reason: the key of every drop counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Dropped {
    pub component: &'static str,
    pub reason: Reason,
}

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.component, self.reason.name())
    }
}

/// One component's drop counters, by [`Reason`].
#[derive(Debug, Default)]
struct Counts([AtomicU64; 3]);

impl Counts {
    fn add(&self, reason: Reason, n: u64) {
        self.0[reason as usize].fetch_add(n, Ordering::Relaxed);
    }
}

/// Every component's drop counters, readable from any thread (status, metrics, tests).
#[derive(Debug, Clone, Default)]
pub struct Drops(Arc<Vec<(&'static str, Arc<Counts>)>>);

impl Drops {
    /// Every non-zero counter.
    pub fn snapshot(&self) -> Vec<(Dropped, u64)> {
        let mut out = Vec::new();
        for (component, counts) in self.0.iter() {
            for reason in Reason::ALL {
                let n = counts.0[reason as usize].load(Ordering::Relaxed);
                if n > 0 {
                    out.push((Dropped { component, reason }, n));
                }
            }
        }
        out
    }

    /// Items lost by all components.
    pub fn total(&self) -> u64 {
        self.snapshot().iter().map(|(_, n)| n).sum()
    }

    /// Items `component` lost for `reason`.
    pub fn get(&self, component: &str, reason: Reason) -> u64 {
        self.0
            .iter()
            .filter(|(c, _)| *c == component)
            .map(|(_, counts)| counts.0[reason as usize].load(Ordering::Relaxed))
            .sum()
    }
}

struct Outlet {
    name: &'static str,
    wants: Wants,
    tx: SyncSender<Item>,
    counts: Arc<Counts>,
    done: mpsc::Receiver<()>,
}

impl Outlet {
    fn offer(&self, item: Item) {
        let n = item.weight();
        match self.tx.try_send(item) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => self.counts.add(Reason::QueueFull, n),
            Err(TrySendError::Disconnected(_)) => self.counts.add(Reason::Stopped, n),
        }
    }
}

/// Components and the length of each one's queue, in the order they are closed.
pub type Components = Vec<(Box<dyn Sink>, usize)>;

/// The fan-out: hands every batch and alert to each component that wants it, never waiting.
pub struct Fanout {
    outlets: Vec<Outlet>,
    drops: Drops,
}

impl Fanout {
    /// Starts one thread per component, each behind a queue of `capacity` items.
    pub fn spawn(sinks: Components) -> std::io::Result<Fanout> {
        let mut outlets = Vec::with_capacity(sinks.len());
        for (sink, capacity) in sinks {
            let (tx, rx) = mpsc::sync_channel(capacity.max(1));
            let (done_tx, done) = mpsc::channel();
            let counts = Arc::new(Counts::default());
            let (name, wants) = (sink.name(), sink.wants());
            let failures = counts.clone();
            std::thread::Builder::new()
                .name(format!("heir-sink-{name}"))
                .spawn(move || {
                    drive(sink, rx, &failures);
                    let _ = done_tx.send(());
                })?;
            outlets.push(Outlet {
                name,
                wants,
                tx,
                counts,
                done,
            });
        }
        let drops = Drops(Arc::new(
            outlets.iter().map(|o| (o.name, o.counts.clone())).collect(),
        ));
        Ok(Fanout { outlets, drops })
    }

    /// The components' drop counters.
    pub fn drops(&self) -> Drops {
        self.drops.clone()
    }

    /// Hands a batch of events to every component that wants events.
    pub fn events(&self, events: Vec<Event>) {
        if events.is_empty() {
            return;
        }
        let batch = Arc::new(events);
        for o in self.outlets.iter().filter(|o| o.wants.events) {
            o.offer(Item::Events(batch.clone()));
        }
    }

    /// Hands an alert to every component that wants alerts.
    pub fn alert(&self, alert: Alert) {
        let alert = Arc::new(alert);
        for o in self.outlets.iter().filter(|o| o.wants.alerts) {
            o.offer(Item::Alert(alert.clone()));
        }
    }

    /// Closes every queue and waits until `deadline` for the components to drain and flush,
    /// in the order they were given. Returns the names of those that did not finish in time
    /// (their threads are left to finish on their own).
    pub fn close(self, deadline: Duration) -> Vec<&'static str> {
        let until = Instant::now() + deadline;
        let mut late = Vec::new();
        let waiting: Vec<_> = self
            .outlets
            .into_iter()
            .map(|o| {
                drop(o.tx);
                (o.name, o.done)
            })
            .collect();
        for (name, done) in waiting {
            let left = until.saturating_duration_since(Instant::now());
            match done.recv_timeout(left) {
                Ok(()) | Err(RecvTimeoutError::Disconnected) => {}
                Err(RecvTimeoutError::Timeout) => late.push(name),
            }
        }
        late
    }
}

impl crate::pipeline::Output for Fanout {
    fn events(&mut self, batch: Vec<Event>) {
        Fanout::events(self, batch)
    }

    fn alert(&mut self, alert: Alert) {
        Fanout::alert(self, alert)
    }
}

/// A component's thread: items as they come, a tick at least every [`TICK`], a close when
/// the queue ends.
fn drive(mut sink: Box<dyn Sink>, rx: mpsc::Receiver<Item>, counts: &Counts) {
    let name = sink.name();
    let failed = |what: &str, n: u64, f: Failure| {
        counts.add(Reason::Failed, f.lost.unwrap_or(n));
        tracing::warn!("{name}: {what}: {}", Chain(&*f.error));
    };
    let mut last_tick = Instant::now();
    loop {
        let wait = TICK.saturating_sub(last_tick.elapsed());
        match rx.recv_timeout(wait) {
            Ok(item) => {
                let n = item.weight();
                let r = match &item {
                    Item::Events(e) => sink.events(e),
                    Item::Alert(a) => sink.alert(a),
                };
                if let Err(e) = r {
                    failed("dropping what it could not handle", n, e);
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if last_tick.elapsed() >= TICK {
            last_tick = Instant::now();
            if let Err(e) = sink.tick() {
                failed("periodic work", 0, e);
            }
        }
    }
    if let Err(e) = sink.close() {
        failed("closing", 0, e);
    }
}

use heir_api::Chain;

#[cfg(test)]
mod tests;
