//! Where "now" comes from: the project's one clock abstraction, so windows and flushing are
//! testable to the nanosecond.

pub use heir_model::clock::{Clock, ManualClock, SystemClock};
