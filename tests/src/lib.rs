//! End-to-end tests of heir, and the three-hospital world that `cargo xtask demo` runs and
//! `tests/hospitals.rs` checks.

pub mod hospitals;
