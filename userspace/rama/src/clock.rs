//! Where "now" comes from.
//!
//! Threat activity decays with time, so every score depends on the current instant. Taking it
//! from a [`Clock`] instead of the system keeps tests exact and lets replays score at the time of
//! the recording.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use heir_model::Timestamp;

/// A source of the current time.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// The wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that only moves when told to; clones share the same instant.
#[derive(Debug, Clone, Default)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    pub fn new(start: Timestamp) -> Self {
        Self(Arc::new(AtomicU64::new(start.as_nanos())))
    }

    pub fn set(&self, t: Timestamp) {
        self.0.store(t.as_nanos(), Ordering::SeqCst);
    }

    pub fn advance(&self, d: std::time::Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
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

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now(&self) -> Timestamp {
        (**self).now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told_and_clones_share_it() {
        let c = ManualClock::new(Timestamp::from_secs(100));
        let other = c.clone();
        assert_eq!(c.now(), Timestamp::from_secs(100));
        other.advance(std::time::Duration::from_secs(5));
        assert_eq!(c.now(), Timestamp::from_secs(105));
        c.set(Timestamp::from_secs(7));
        assert_eq!(other.now(), Timestamp::from_secs(7));
    }
}
