//! Time as a dependency: expiry, freshness windows, rate limits and trends all read the clock
//! through [`Clock`], so tests can step time exactly instead of sleeping.

use std::sync::Arc;
use std::time::Duration;

use heir_model::Timestamp;
pub use heir_model::clock::{Clock, ManualClock, SystemClock};

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
