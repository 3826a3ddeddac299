//! Time as a dependency: expiry, freshness windows, rate limits and trends all read the clock
//! through [`Clock`], so tests can step time exactly instead of sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use heir_model::Timestamp;

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

    pub fn advance(&self, by: Duration) {
        let ns = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        self.0.fetch_add(ns, Ordering::SeqCst);
    }

    pub fn set(&self, to: Timestamp) {
        self.0.store(to.as_nanos(), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_nanos(self.0.load(Ordering::SeqCst))
    }
}

/// Shared handle to whichever clock a component was built with.
pub type SharedClock = Arc<dyn Clock>;

pub(crate) fn add(t: Timestamp, d: Duration) -> Timestamp {
    Timestamp::from_nanos(
        t.as_nanos()
            .saturating_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
    )
}

pub(crate) fn sub(t: Timestamp, d: Duration) -> Timestamp {
    Timestamp::from_nanos(
        t.as_nanos()
            .saturating_sub(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
    )
}
