//! Where "now" comes from.
//!
//! Windows, decay, expiry, freshness and rate limits all read the time through [`Clock`], so
//! tests step time exactly instead of sleeping and replays run at the time of the recording.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::Timestamp;

/// A source of wall-clock time.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that only moves when told to; clones share the same time.
#[derive(Debug, Clone, Default)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    pub fn new(start: Timestamp) -> Self {
        Self(Arc::new(AtomicU64::new(start.as_nanos())))
    }

    pub fn set(&self, t: Timestamp) {
        self.0.store(t.as_nanos(), Ordering::SeqCst);
    }

    /// Moves the clock forward, saturating at the end of time.
    pub fn advance(&self, by: Duration) {
        let ns = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        let _ = self
            .0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |t| {
                Some(t.saturating_add(ns))
            });
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_nanos(self.0.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clocks_share_time_and_saturate() {
        let c = ManualClock::new(Timestamp::from_secs(10));
        let d = c.clone();
        c.advance(Duration::from_secs(5));
        assert_eq!(d.now(), Timestamp::from_secs(15));
        d.set(Timestamp::from_nanos(u64::MAX - 1));
        c.advance(Duration::from_secs(1));
        assert_eq!(c.now(), Timestamp::from_nanos(u64::MAX));
    }
}
