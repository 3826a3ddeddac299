//! Devices and their RAMA scores.

use std::net::IpAddr;

use heir_model::Timestamp;
use heir_rama::history::Point;
use heir_rama::{Class, Criticality, Hospital, Score};
use serde::{Deserialize, Serialize};

/// One row of the inventory with its current score. The full explanation of one device is
/// [`heir_rama::Report`] (`GET /v1/devices/{id}`), fetched on demand because it is large.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Device {
    pub id: String,
    pub name: String,
    pub class: Class,
    pub criticality: Criticality,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manufacturer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<Timestamp>,
    pub score: Score,
}

/// The hospital's RAMA and how it moved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rama {
    pub hospital: Hospital,
    /// Recent changes of the hospital score, oldest first.
    #[serde(default)]
    pub history: Vec<Point>,
    /// Share (0..1) of mesh peers whose hospital RAMA is lower than this one's: 0.9 means
    /// riskier than 90% of them. None until the mesh is built and a peer shares its score.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer_percentile: Option<f64>,
}
