//! Alerts as the store keeps them: the alert, its store sequence number and its acknowledgement.

use serde::{Deserialize, Serialize};

/// A stored alert, as the store keeps it: `seq` is the store's key (increasing with arrival),
/// `alert.id` the content id that de-duplicates the same incident, `acknowledged` who looked
/// at it and when.
pub use heir_model::StoredAlert as Stored;

pub use heir_model::Ack;

/// `GET /v1/alerts` query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertQuery {
    /// At most this many, newest first.
    #[serde(default = "default_limit")]
    pub limit: usize,
    /// Only alerts with a larger `seq`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<u64>,
    /// Only alerts with a smaller `seq`: with the smallest `seq` of the last page, the next
    /// older page, so a reader can walk back through a store of any size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<u64>,
    /// Only alerts nobody acknowledged yet.
    #[serde(default)]
    pub unacknowledged: bool,
}

/// Upper bound on one page, so one request cannot make the agent serialise its whole store.
pub const MAX_LIMIT: usize = 10_000;

fn default_limit() -> usize {
    500
}

impl Default for AlertQuery {
    fn default() -> Self {
        Self {
            limit: default_limit(),
            after: None,
            before: None,
            unacknowledged: false,
        }
    }
}
