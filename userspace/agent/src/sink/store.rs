//! The store component: events and alerts into the embedded database.
//!
//! Events are written in large transactions (one commit per [`FLUSH_EVENTS`] events or per
//! second, whichever comes first): a commit costs an fsync, and the kernel can deliver
//! hundreds of thousands of events a second. Alerts are committed one by one as they come, so
//! the API and `heir alerts` see them at once, and each stored alert goes to the live stream
//! with its sequence number.

use std::sync::Arc;
use std::time::{Duration, Instant};

use heir_model::{Alert, Event};
use tokio::sync::broadcast;

use super::{Failure, Sink, Wants};

/// Events buffered before a commit.
const FLUSH_EVENTS: usize = 10_000;
/// Longest time an event waits for its commit.
const FLUSH_EVERY: Duration = Duration::from_secs(1);

pub struct Store {
    store: Arc<heir_store::Store>,
    live: broadcast::Sender<heir_api::Live>,
    pending: Vec<Event>,
    last_flush: Instant,
}

impl Store {
    /// Writes into `store`; stored alerts are announced on `live`.
    pub fn new(store: Arc<heir_store::Store>, live: broadcast::Sender<heir_api::Live>) -> Store {
        Store {
            store,
            live,
            pending: Vec::new(),
            last_flush: Instant::now(),
        }
    }

    fn flush(&mut self) -> Result<(), Failure> {
        self.last_flush = Instant::now();
        if self.pending.is_empty() {
            return Ok(());
        }
        let r = self.store.append_events(&self.pending);
        let n = self.pending.len() as u64;
        self.pending.clear();
        r.map_err(|e| Failure::lost(n, e))
    }
}

impl Sink for Store {
    fn name(&self) -> &'static str {
        "store"
    }

    fn wants(&self) -> Wants {
        Wants::BOTH
    }

    fn events(&mut self, events: &[Event]) -> Result<(), Failure> {
        self.pending.extend_from_slice(events);
        if self.pending.len() >= FLUSH_EVENTS {
            self.flush()?;
        }
        Ok(())
    }

    fn alert(&mut self, alert: &Alert) -> Result<(), Failure> {
        for seq in self.store.append_alerts(std::slice::from_ref(alert))? {
            let stored = heir_api::Stored {
                seq,
                acknowledged: None,
                alert: alert.clone(),
            };
            // Nobody listening is not a loss: the alert is in the store.
            let _ = self.live.send(heir_api::Live::Alert(stored));
        }
        Ok(())
    }

    fn tick(&mut self) -> Result<(), Failure> {
        if self.last_flush.elapsed() >= FLUSH_EVERY {
            self.flush()?;
        }
        Ok(())
    }

    fn close(&mut self) -> Result<(), Failure> {
        self.flush()
    }
}
