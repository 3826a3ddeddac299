//! Automated and operator responses: blocking traffic in the kernel.

pub mod blocklist;
pub mod never_block;
pub mod policy;

pub use blocklist::{Block, Clock, Origin, SystemClock, Tables, Target};
