//! The live stream: alerts and events as they happen.

use heir_model::{Event, Timestamp};
use serde::{Deserialize, Serialize};

use crate::alert::Stored;

/// One line of `GET /v1/stream`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Live {
    Alert(Stored),
    Event(Event),
    /// This subscriber fell behind and `missed` items were dropped for it (the agent never
    /// waits for a slow reader); a client should re-read the snapshots.
    Lagged {
        missed: u64,
    },
    /// Sent when nothing else was for a while, so a client can tell a quiet agent from a
    /// dead connection.
    Heartbeat {
        ts: Timestamp,
    },
}

/// `GET /v1/stream` query: which items the subscriber wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamQuery {
    #[serde(default = "yes")]
    pub alerts: bool,
    #[serde(default)]
    pub events: bool,
}

fn yes() -> bool {
    true
}

impl Default for StreamQuery {
    fn default() -> Self {
        Self {
            alerts: true,
            events: false,
        }
    }
}

impl Live {
    pub(crate) fn wanted(&self, q: StreamQuery) -> bool {
        match self {
            Live::Alert(_) => q.alerts,
            Live::Event(_) => q.events,
            Live::Lagged { .. } | Live::Heartbeat { .. } => true,
        }
    }
}
