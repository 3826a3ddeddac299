//! sources → decode → enrich → detect → [`Output`] (in the agent, the sinks' fan-out).
//!
//! Sources hand batches of decoded events to the pipeline over a bounded channel. The kernel
//! source waits when the channel is full, so back-pressure reaches the ring buffer, where
//! every record that does not fit is counted per kind by the probes: the kernel's lost
//! counters are the one place events can be lost, and they are always visible.

use std::io::{BufRead, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use heir_model::{Alert, Event};
use tokio::sync::mpsc;

use crate::decode;
use crate::proctable::ProcessTable;
use crate::sensor::{self, Reader};
use heir_model::BootClock;

/// Events per batch handed between stages: amortises channel costs at high rates.
pub const BATCH: usize = 1024;
/// Batches in flight between the source and the pipeline.
pub const QUEUE_BATCHES: usize = 256;

/// Userspace counters, shown next to the kernel's.
#[derive(Debug, Default)]
pub struct Stats {
    pub records: AtomicU64,
    pub decode_errors: AtomicU64,
    pub events: AtomicU64,
    pub alerts: AtomicU64,
    /// Events a full queue turned away (packet events waiting for the detectors).
    pub dropped: AtomicU64,
}

impl Stats {
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

/// Reads the ring buffer until the receiver goes away, decoding in batches.
pub async fn kernel_source(
    mut reader: Reader,
    tx: mpsc::Sender<Vec<Event>>,
    stats: Arc<Stats>,
) -> Result<(), sensor::Error> {
    let clock = BootClock::now();
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        let mut errors = 0u64;
        reader
            .read_batch(|bytes| match decode::decode(bytes, &clock) {
                Ok(e) => batch.push(e),
                Err(err) => {
                    errors += 1;
                    tracing::warn!("dropping an undecodable kernel record: {err}");
                }
            })
            .await?;
        stats.decode_errors.fetch_add(errors, Ordering::Relaxed);
        if batch.is_empty() {
            continue;
        }
        stats
            .records
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        for chunk in batch.chunks(BATCH) {
            if tx.send(chunk.to_vec()).await.is_err() {
                return Ok(());
            }
        }
        batch.clear();
    }
}

/// A line of an events file that could not be read as an event.
#[derive(Debug, thiserror::Error)]
#[error("{path}:{line}: {reason}")]
pub struct BadLine {
    pub path: String,
    pub line: usize,
    pub reason: String,
}

/// Reads recorded events (JSON lines, as `heir monitor --json` writes them). Bad lines are
/// reported with their line number and skipped; the rest of the file still flows.
pub fn replay_source(
    path: &Path,
    tx: mpsc::Sender<Vec<Event>>,
    bad: &mut Vec<BadLine>,
) -> std::io::Result<u64> {
    let file = std::fs::File::open(path)?;
    let mut batch = Vec::with_capacity(BATCH);
    let mut n = 0u64;
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Event>(&line) {
            Ok(e) => {
                batch.push(e);
                n += 1;
            }
            Err(e) => bad.push(BadLine {
                path: path.display().to_string(),
                line: i + 1,
                reason: e.to_string(),
            }),
        }
        if batch.len() == BATCH {
            if tx.blocking_send(std::mem::take(&mut batch)).is_err() {
                return Ok(n);
            }
            batch.reserve(BATCH);
        }
    }
    if !batch.is_empty() {
        let _ = tx.blocking_send(batch);
    }
    Ok(n)
}

/// When the detectors' time-driven work (closing windows, flushing incidents) happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ticks {
    /// Every second of wall-clock time: live sources.
    Wall,
    /// Every second of the events' own time: recordings, so a replay gives the alerts the
    /// live run gave.
    EventTime,
}

/// The stages after the source: enrich, detect, then hand events and alerts to the sinks.
pub struct Stages {
    pub table: ProcessTable,
    /// The detection engine; `None` where only events are wanted (`heir monitor`).
    pub engine: Option<heir_detect::Engine>,
    pub stats: Arc<Stats>,
    pub ticks: Ticks,
    /// Changes from outside the event stream: known indicators from the mesh and imports,
    /// and the alerts of retro-hunts over the store. `None` where nothing sends any.
    pub control: Option<mpsc::Receiver<Control>>,
}

/// Control messages waiting for the pipeline; the intel task waits when it is full.
pub const CONTROL_QUEUE: usize = 64;

/// What reaches the detection engine besides events.
#[derive(Debug)]
pub enum Control {
    /// A known indicator added, replaced or removed: what follows is matched against it.
    Known(heir_detect::known::Update),
    /// Alerts found outside the stream (a retro-hunt's), published like the detectors' own.
    Raise(Vec<Alert>),
}

/// The next control message; never, once there is no sender left (or none was given).
async fn next_control(control: &mut Option<mpsc::Receiver<Control>>) -> Control {
    if let Some(rx) = control.as_mut()
        && let Some(c) = rx.recv().await
    {
        return c;
    }
    *control = None;
    std::future::pending().await
}

/// Where the pipeline's results go: the sinks' fan-out in the agent, stdout in `heir
/// monitor` and `heir replay`. Called on the pipeline's task, so it must never wait.
pub trait Output {
    /// One batch of enriched events, after the detectors have seen them.
    fn events(&mut self, batch: Vec<Event>);
    /// One alert, as soon as it is raised.
    fn alert(&mut self, alert: Alert);
}

/// An [`Output`] from two closures.
pub struct Each<E, A>(pub E, pub A);

impl<E: FnMut(Vec<Event>), A: FnMut(Alert)> Output for Each<E, A> {
    fn events(&mut self, batch: Vec<Event>) {
        (self.0)(batch)
    }

    fn alert(&mut self, alert: Alert) {
        (self.1)(alert)
    }
}

impl Stages {
    /// Runs until every source has dropped its sender, then returns itself (the engine's
    /// learned state is saved from it) and the output (the sinks are closed from it).
    pub async fn run<O: Output>(
        mut self,
        mut rx: mpsc::Receiver<Vec<Event>>,
        mut output: O,
    ) -> (Self, O) {
        let out = &mut output;
        let mut alerts = Vec::new();
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_event_tick = None::<u64>;
        loop {
            let batch = tokio::select! {
                b = rx.recv() => b,
                c = next_control(&mut self.control) => {
                    if let Some(engine) = self.engine.as_mut() {
                        match c {
                            Control::Known(update) => engine.known(update),
                            Control::Raise(found) => engine.raise(found, &mut alerts),
                        }
                    }
                    self.publish(&mut alerts, out);
                    continue;
                }
                _ = tick.tick(), if self.ticks == Ticks::Wall && self.engine.is_some() => {
                    if let Some(engine) = self.engine.as_mut() {
                        if let Some(Err(e)) = engine.reload_if_changed() {
                            tracing::error!(
                                "rules not reloaded, the previous ones stay active: {}",
                                heir_api::Chain(&e)
                            );
                        }
                        engine.tick(&mut alerts);
                    }
                    self.publish(&mut alerts, out);
                    continue;
                }
            };
            let Some(mut batch) = batch else { break };
            for event in &mut batch {
                self.table.enrich(event);
                if let Some(engine) = self.engine.as_mut() {
                    if self.ticks == Ticks::EventTime {
                        let sec = event.ts.as_nanos() / 1_000_000_000;
                        if last_event_tick.is_some_and(|t| sec > t) {
                            engine.tick_at(event.ts, &mut alerts);
                        }
                        if last_event_tick.is_none_or(|t| sec > t) {
                            last_event_tick = Some(sec);
                        }
                    }
                    engine.process(event, &mut alerts);
                }
                self.publish(&mut alerts, out);
            }
            self.stats
                .events
                .fetch_add(batch.len() as u64, Ordering::Relaxed);
            out.events(batch);
        }
        if let (Ticks::EventTime, Some(sec), Some(engine)) =
            (self.ticks, last_event_tick, self.engine.as_mut())
        {
            // The recording is over: let every open window and incident close.
            engine.tick_at(heir_model::Timestamp::from_secs(sec + 3600), &mut alerts);
            self.publish(&mut alerts, out);
        }
        (self, output)
    }

    fn publish(&self, alerts: &mut Vec<Alert>, out: &mut impl Output) {
        for a in alerts.drain(..) {
            self.stats.alerts.fetch_add(1, Ordering::Relaxed);
            out.alert(a);
        }
    }
}

/// Appends JSON lines to a file or stdout, flushing each line so `tail -f` and scripts see
/// alerts as they happen.
pub struct JsonLines {
    out: Box<dyn Write + Send>,
}

impl JsonLines {
    pub fn stdout() -> Self {
        JsonLines {
            out: Box::new(std::io::stdout()),
        }
    }

    pub fn append(path: &Path) -> std::io::Result<Self> {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(JsonLines { out: Box::new(f) })
    }

    pub fn write<T: serde::Serialize>(&mut self, v: &T) -> std::io::Result<()> {
        serde_json::to_writer(&mut self.out, v)?;
        self.out.write_all(b"\n")?;
        self.out.flush()
    }
}
