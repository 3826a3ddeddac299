//! What the threat-sharing mesh knows: indicators and peers.

use heir_model::{Category, Timestamp};
use serde::{Deserialize, Serialize};

/// An indicator of compromise, local or shared by a peer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Indicator {
    pub id: String,
    /// What `value` is: "ipv4", "ipv6", "domain", "sha256", "ja3", ...
    pub kind: String,
    pub value: String,
    pub category: Category,
    pub confidence: f32,
    /// Peers that reported it (this node counts as "local").
    pub sources: Vec<String>,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    /// Times it matched locally.
    #[serde(default)]
    pub sightings: u64,
    /// Device model the reports concern, when the indicator carries one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_model: Option<String>,
}

/// A mesh peer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Peer {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// 0..1: how much its indicators are believed.
    pub trust: f32,
    pub connected: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<Timestamp>,
    #[serde(default)]
    pub indicators: u64,
}
