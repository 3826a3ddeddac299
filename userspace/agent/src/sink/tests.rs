use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use heir_model::{Category, Event, EventKind, Process, Severity, Timestamp};
use heir_store::Read as _;
use tokio::sync::mpsc;

use super::*;
use crate::pipeline::{self, Stages, Stats};
use crate::proctable::{Lookup, ProcessTable};

fn event(i: u64) -> Event {
    Event {
        ts: Timestamp::from_secs(1_700_000_000 + i),
        process: Process {
            pid: 4242,
            comm: "test".into(),
            ..Process::default()
        },
        kind: EventKind::Exit {
            code: 0,
            signal: None,
        },
    }
}

fn alert(i: u64) -> Alert {
    Alert::new(
        Timestamp::from_secs(1_700_000_000 + i),
        "test.alert",
        "A test alert",
        Category::Anomaly,
        Severity::Low,
        0.5,
    )
}

/// A sink that never finishes its first item until the test lets it go.
struct Stuck {
    name: &'static str,
    release: std_mpsc::Receiver<()>,
    held: bool,
}

impl Stuck {
    fn hold(&mut self) {
        if !self.held {
            self.held = true;
            // Returns when the test sends or drops its end.
            let _ = self.release.recv();
        }
    }
}

impl Sink for Stuck {
    fn name(&self) -> &'static str {
        self.name
    }
    fn wants(&self) -> Wants {
        Wants::BOTH
    }
    fn events(&mut self, _: &[Event]) -> Result<(), Failure> {
        self.hold();
        Ok(())
    }
    fn alert(&mut self, _: &Alert) -> Result<(), Failure> {
        self.hold();
        Ok(())
    }
}

/// Counts what reaches it.
struct Counting(Arc<AtomicU64>, Arc<AtomicU64>);

impl Sink for Counting {
    fn name(&self) -> &'static str {
        "counting"
    }
    fn wants(&self) -> Wants {
        Wants::BOTH
    }
    fn events(&mut self, e: &[Event]) -> Result<(), Failure> {
        self.0.fetch_add(e.len() as u64, Ordering::Relaxed);
        Ok(())
    }
    fn alert(&mut self, _: &Alert) -> Result<(), Failure> {
        self.1.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

fn wait_for(what: &str, deadline: Duration, mut done: impl FnMut() -> bool) {
    let until = Instant::now() + deadline;
    while !done() {
        assert!(Instant::now() < until, "{what}: not within {deadline:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_that_never_returns_does_not_slow_detection_and_its_drops_are_counted() {
    const BATCHES: u64 = 200;
    const PER_BATCH: u64 = 100;
    const ALERTS: u64 = 50;
    let (release, stuck_rx) = std_mpsc::channel();
    let (events, alerts) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let fanout = Fanout::spawn(vec![
        (
            Box::new(Stuck {
                name: "stuck",
                release: stuck_rx,
                held: false,
            }) as Box<dyn Sink>,
            4,
        ),
        (
            Box::new(Counting(events.clone(), alerts.clone())),
            (BATCHES + ALERTS) as usize,
        ),
    ])
    .unwrap();
    let drops = fanout.drops();

    // The real pipeline (enrichment and the detection engine) in front of the fan-out.
    let stats = Arc::new(Stats::default());
    let stages = Stages {
        control: None,
        table: ProcessTable::new(Lookup::None),
        engine: Some(crate::runtime::engine(&crate::Config::default(), None)),
        ticks: pipeline::Ticks::EventTime,
        stats: stats.clone(),
    };
    let (tx, rx) = mpsc::channel(pipeline::QUEUE_BATCHES);
    let started = Instant::now();
    let pipeline = tokio::spawn(stages.run(rx, fanout));
    for b in 0..BATCHES {
        let batch = (0..PER_BATCH).map(|i| event(b * PER_BATCH + i)).collect();
        tx.send(batch).await.unwrap();
    }
    drop(tx);
    let (_, fanout) = tokio::time::timeout(Duration::from_secs(30), pipeline)
        .await
        .expect("the pipeline finished while a sink was stuck")
        .unwrap();
    let took = started.elapsed();
    assert_eq!(Stats::get(&stats.events), BATCHES * PER_BATCH);

    // Every event reached the healthy sink; the stuck one holds one batch and queued four
    // (or, had it not yet taken its first, four), and every other batch is counted lost.
    wait_for(
        "events at the healthy sink",
        Duration::from_secs(10),
        || events.load(Ordering::Relaxed) == BATCHES * PER_BATCH,
    );
    let lost = drops.get("stuck", Reason::QueueFull);
    assert!(
        lost == (BATCHES - 5) * PER_BATCH || lost == (BATCHES - 4) * PER_BATCH,
        "drops: {:?}",
        drops.snapshot()
    );
    assert_eq!(drops.get("counting", Reason::QueueFull), 0);

    // Alerts after the flood: the stuck sink's queue is full, the healthy one gets them all.
    for i in 0..ALERTS {
        fanout.alert(alert(i));
    }
    wait_for(
        "alerts at the healthy sink",
        Duration::from_secs(10),
        || alerts.load(Ordering::Relaxed) == ALERTS,
    );
    assert_eq!(drops.get("stuck", Reason::QueueFull), lost + ALERTS);
    eprintln!(
        "{} events through the pipeline in {took:?} with one sink stuck",
        BATCHES * PER_BATCH
    );

    drop(release);
    assert!(fanout.close(Duration::from_secs(10)).is_empty());
}

#[test]
fn shutdown_with_full_queues_keeps_everything_the_store_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        heir_store::Store::open(&dir.path().join("heir.redb"), Default::default()).unwrap(),
    );
    let (live, _) = tokio::sync::broadcast::channel(16);
    let (release, gate) = std_mpsc::channel::<()>();

    /// The real store component behind a gate that holds its first batch, so its queue fills.
    struct Gated {
        inner: super::Store,
        gate: Option<std_mpsc::Receiver<()>>,
    }
    impl Sink for Gated {
        fn name(&self) -> &'static str {
            "store"
        }
        fn wants(&self) -> Wants {
            Wants::BOTH
        }
        fn events(&mut self, e: &[Event]) -> Result<(), Failure> {
            if let Some(g) = self.gate.take() {
                let _ = g.recv();
            }
            self.inner.events(e)
        }
        fn alert(&mut self, a: &Alert) -> Result<(), Failure> {
            self.inner.alert(a)
        }
        fn tick(&mut self) -> Result<(), Failure> {
            self.inner.tick()
        }
        fn close(&mut self) -> Result<(), Failure> {
            self.inner.close()
        }
    }

    const QUEUE: usize = 8;
    const BATCHES: u64 = 40;
    const PER_BATCH: u64 = 250;
    let fanout = Fanout::spawn(vec![(
        Box::new(Gated {
            inner: super::Store::new(store.clone(), live),
            gate: Some(gate),
        }) as Box<dyn Sink>,
        QUEUE,
    )])
    .unwrap();
    let drops = fanout.drops();
    for b in 0..BATCHES {
        fanout.events((0..PER_BATCH).map(|i| event(b * PER_BATCH + i)).collect());
    }
    let dropped = drops.get("store", Reason::QueueFull);
    assert!(
        dropped > 0,
        "the queue never filled: {:?}",
        drops.snapshot()
    );
    let accepted = BATCHES * PER_BATCH - dropped;
    // Less than one flush's worth: only the close at shutdown writes these.
    assert!(accepted < 10_000);

    drop(release);
    assert!(fanout.close(Duration::from_secs(20)).is_empty());
    assert_eq!(store.event_count().unwrap(), accepted);
    assert_eq!(drops.total(), dropped, "nothing else was lost");
}
