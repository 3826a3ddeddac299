//! Automated and operator responses: blocking traffic in the kernel.

pub mod blocklist;

pub use blocklist::{Block, Clock, Origin, SystemClock, Tables, Target};
