//! The store sink: events and alerts from the pipeline into the embedded store.
//!
//! Alerts are committed as they arrive, durably: an alert the agent has reported is never
//! lost. Events are grouped and committed about once a second, so the event ring costs one
//! fsync per second rather than one per batch. The queue in front of the writer is bounded;
//! events that do not fit are counted, never dropped silently.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::time::{Duration, Instant};

use heir_model::{Alert, Event};
use heir_store::Store;

enum Item {
    Events(Vec<Event>),
    Alert(Box<Alert>),
}

/// Events the writer holds before committing them, at most.
const FLUSH_EVENTS: usize = 10_000;
const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// The pipeline's handle on the writer.
#[derive(Clone)]
pub struct Sink {
    tx: SyncSender<Item>,
    pub dropped_events: Arc<AtomicU64>,
}

impl Sink {
    /// Queues events; counts them as dropped when the writer is behind.
    pub fn events(&self, events: Vec<Event>) {
        let n = events.len() as u64;
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
            self.tx.try_send(Item::Events(events))
        {
            self.dropped_events.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Queues an alert, waiting for room: alerts are never dropped.
    pub fn alert(&self, alert: Alert) {
        let _ = self.tx.send(Item::Alert(Box::new(alert)));
    }
}

/// Starts the writer thread. It ends, flushing what it holds, when every [`Sink`] is gone.
/// Stored alerts are announced on `live` with their sequence numbers.
pub fn spawn(
    store: Arc<Store>,
    live: tokio::sync::broadcast::Sender<heir_api::Live>,
) -> (Sink, std::thread::JoinHandle<()>) {
    let (tx, rx) = mpsc::sync_channel::<Item>(1024);
    let sink = Sink {
        tx,
        dropped_events: Arc::new(AtomicU64::new(0)),
    };
    let thread = std::thread::spawn(move || {
        let mut pending: Vec<Event> = Vec::new();
        let mut last_flush = Instant::now();
        let flush = |pending: &mut Vec<Event>| {
            if let Err(e) = store.append_events(pending) {
                tracing::error!("storing events: {e}");
            }
            pending.clear();
        };
        loop {
            match rx.recv_timeout(FLUSH_EVERY) {
                Ok(Item::Events(mut e)) => pending.append(&mut e),
                Ok(Item::Alert(a)) => match store.append_alerts(std::slice::from_ref(&a)) {
                    Ok(seqs) => {
                        for seq in seqs {
                            let stored = heir_api::Stored {
                                seq,
                                acknowledged: None,
                                alert: (*a).clone(),
                            };
                            // No subscriber is fine: nobody is watching.
                            let _ = live.send(heir_api::Live::Alert(stored));
                        }
                    }
                    Err(e) => tracing::error!("storing alert: {e}"),
                },
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    flush(&mut pending);
                    return;
                }
            }
            if pending.len() >= FLUSH_EVENTS
                || (!pending.is_empty() && last_flush.elapsed() >= FLUSH_EVERY)
            {
                flush(&mut pending);
                last_flush = Instant::now();
            }
        }
    });
    (sink, thread)
}
