//! The agent's health: version, uptime, probes, sensor counters, pipeline drops.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub version: String,
    pub uptime_secs: u64,
    pub probes: Probes,
    /// One entry per event kind the kernel sensor reports.
    pub sensors: Vec<SensorCounts>,
    /// Decoded events per second over the agent's last sampling interval.
    pub events_per_sec: f64,
    pub pipeline: Pipeline,
    /// What each sink lost, by component and reason; only counters above zero.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sinks: Vec<SinkDrops>,
}

/// Items one sink (store, syslog, responder, …) lost for one reason: its queue was full,
/// its thread had stopped, or it failed to handle them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SinkDrops {
    pub component: String,
    /// `queue_full`, `stopped` or `failed`.
    pub reason: String,
    pub dropped: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Probes {
    pub attached: Vec<String>,
    pub failed: Vec<Probe>,
}

/// A probe that did not attach, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Probe {
    pub program: String,
    pub reason: String,
}

/// Kernel counters of one event kind, summed over CPUs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SensorCounts {
    pub kind: String,
    pub emitted: u64,
    /// Records the kernel could not hand over (ring buffer full).
    pub lost: u64,
    /// Events dropped on purpose by in-kernel filters.
    pub filtered: u64,
}

/// Counters of the userspace pipeline: every drop is visible here.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pipeline {
    pub records: u64,
    pub events: u64,
    pub decode_errors: u64,
    /// Batches dropped because a bounded queue was full.
    pub dropped: u64,
    pub alerts: u64,
}

impl Status {
    /// Sum over all kinds.
    pub fn total(&self) -> SensorCounts {
        self.sensors.iter().fold(
            SensorCounts {
                kind: "total".into(),
                emitted: 0,
                lost: 0,
                filtered: 0,
            },
            |mut t, c| {
                t.emitted += c.emitted;
                t.lost += c.lost;
                t.filtered += c.filtered;
                t
            },
        )
    }
}
