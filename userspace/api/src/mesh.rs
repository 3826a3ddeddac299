//! What the threat-sharing mesh knows: indicators and peers.

use heir_model::{Category, Severity, Timestamp};
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
    /// Who it came from: other hospitals, or this hospital's operator.
    #[serde(default)]
    pub origin: IndicatorOrigin,
    /// Its TLP label (`TLP:GREEN`), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tlp: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IndicatorOrigin {
    /// Reported by other hospitals over the mesh.
    #[default]
    Mesh,
    /// Imported by this hospital's operator (`heir import`).
    Import,
}

/// What an imported indicator names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportKind {
    Ip,
    /// An address block, `net/len`.
    Cidr,
    Domain,
    Url,
}

impl ImportKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ImportKind::Ip => "ip",
            ImportKind::Cidr => "cidr",
            ImportKind::Domain => "domain",
            ImportKind::Url => "url",
        }
    }
}

/// One indicator the operator imported (`heir import`), as the agent keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Imported {
    pub kind: ImportKind,
    /// The address, block, domain or URL, normalised (lowercase names, masked blocks).
    pub value: String,
    pub category: Category,
    pub severity: Severity,
    /// 0..=100.
    pub confidence: u8,
    /// TLP label (`TLP:GREEN`): how far it may be shared, if the operator shares it.
    pub tlp: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attack: Option<String>,
    /// The file it was imported from (its name, not its path).
    pub source: String,
    pub imported_at: Timestamp,
}

/// `POST /v1/indicators`: store these (all or none), match them from now on and hunt for
/// them in the stored events; publish them to the mesh too when `share`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportRequest {
    pub indicators: Vec<Imported>,
    #[serde(default)]
    pub share: bool,
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImportOutcome {
    /// Indicators new to this node.
    pub added: usize,
    /// Indicators it already held, replaced by the new facts.
    pub replaced: usize,
    /// Published to the mesh (with `share`).
    pub shared: usize,
    /// Not published, each with the reason (`share` asked for them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_shared: Vec<String>,
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
