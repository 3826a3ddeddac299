//! Stateful detectors: attacks that only show across several events.
//!
//! Each detector is built from its own `Config` (every key documented, unknown keys rejected)
//! and listed in [`crate::registry`]. Windows run on event time so that replays of recorded
//! traffic give the same alerts as the live agent.

pub mod brute_force;
pub mod cleartext;
pub mod credential_access;
pub mod cryptomining;
pub mod default_credentials;
pub mod exfiltration;
pub mod injection;
pub mod kernel_module;
pub mod persistence;
pub mod port_scan;
pub mod privilege_escalation;
pub mod ransomware;
mod redirects;
pub mod reverse_shell;
pub mod syn_flood;
pub mod weak_tls;

#[cfg(test)]
pub(crate) mod fixtures;

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}
