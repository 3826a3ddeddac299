//! Where "now" comes from.
//!
//! Threat activity decays with time, so every score depends on the current instant. Taking it
//! from a [`Clock`] instead of the system keeps tests exact and lets replays score at the time of
//! the recording.

pub use heir_model::clock::{Clock, ManualClock, SystemClock};
