//! The responder: active blocks, pending approvals and the requests that change them.

use std::net::IpAddr;

use heir_model::{Category, Severity, Timestamp};
use serde::{Deserialize, Serialize};

/// Who decided a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// An operator, through the API or CLI.
    Operator,
    /// The responder's `auto` policy.
    Policy,
    /// An operator approved the responder's proposal.
    Approved,
    /// The responder's `mesh` policy: an attacker the other hospitals corroborated.
    Mesh,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Block {
    pub addr: IpAddr,
    pub reason: String,
    pub origin: Origin,
    pub since: Timestamp,
    /// None: until unblocked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<Timestamp>,
    /// The alert that caused it, by store sequence number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert: Option<u64>,
}

/// A block the responder proposes under an `ask` policy, waiting for an operator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pending {
    pub id: String,
    pub addr: IpAddr,
    pub reason: String,
    pub category: Category,
    pub severity: Severity,
    pub confidence: f32,
    pub requested: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Blocks {
    pub active: Vec<Block>,
    pub pending: Vec<Pending>,
}

/// `POST /v1/block`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockRequest {
    pub addr: IpAddr,
    /// Seconds until the block lifts by itself; None: until unblocked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_secs: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `POST /v1/unblock`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnblockRequest {
    pub addr: IpAddr,
}

/// One line of the responder's audit log, as the store keeps it.
pub use heir_model::AuditEntry;
