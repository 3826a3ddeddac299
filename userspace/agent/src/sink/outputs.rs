//! The small components: JSON-lines files, the API's live stream, the responder and the mesh.

use std::path::Path;
use std::sync::Arc;

use heir_model::{Alert, Event};
use tokio::sync::broadcast;

use super::{Failure, Sink, Wants};
use crate::pipeline::JsonLines;
use crate::respond::policy::{Decision, Responder};

/// Alert JSON lines appended to a file (`--alerts`), one flushed line per alert so `tail -f`
/// and scripts see each alert as it is raised.
pub struct AlertFile(JsonLines);

impl AlertFile {
    pub fn append(path: &Path) -> std::io::Result<AlertFile> {
        JsonLines::append(path).map(AlertFile)
    }
}

impl Sink for AlertFile {
    fn name(&self) -> &'static str {
        "alert_file"
    }

    fn wants(&self) -> Wants {
        Wants::ALERTS
    }

    fn alert(&mut self, alert: &Alert) -> Result<(), Failure> {
        Ok(self.0.write(alert)?)
    }
}

/// The packet sensor's events (flows, server answers, drops, recognised protocols) as JSON lines in a file
/// (`--packet-events`), in the shape `heir monitor --json` prints.
pub struct EventFile(JsonLines);

impl EventFile {
    pub fn append(path: &Path) -> std::io::Result<EventFile> {
        JsonLines::append(path).map(EventFile)
    }
}

impl Sink for EventFile {
    fn name(&self) -> &'static str {
        "packet_events"
    }

    fn wants(&self) -> Wants {
        Wants::EVENTS
    }

    fn events(&mut self, events: &[Event]) -> Result<(), Failure> {
        for e in events.iter().filter(|e| e.kind.is_packet()) {
            self.0.write(e)?;
        }
        Ok(())
    }
}

/// Every enriched event to the API's live stream, for `heir tui` and `GET /v1/stream`.
pub struct Live(pub broadcast::Sender<heir_api::Live>);

impl Sink for Live {
    fn name(&self) -> &'static str {
        "live"
    }

    fn wants(&self) -> Wants {
        Wants::EVENTS
    }

    fn events(&mut self, events: &[Event]) -> Result<(), Failure> {
        // A stream nobody follows costs nothing; a follower that lags is told by the
        // broadcast itself how much it missed.
        if self.0.receiver_count() > 0 {
            for e in events {
                let _ = self.0.send(heir_api::Live::Event(e.clone()));
            }
        }
        Ok(())
    }
}

/// The responder's view of alerts: blocks what its policy allows, audits everything.
pub struct Respond(pub Arc<Responder>);

impl Sink for Respond {
    fn name(&self) -> &'static str {
        "responder"
    }

    fn wants(&self) -> Wants {
        Wants::ALERTS
    }

    fn alert(&mut self, alert: &Alert) -> Result<(), Failure> {
        match self.0.consider(alert) {
            Decision::Refused(why) => tracing::warn!("responder did not block: {why}"),
            Decision::Blocked(addr) => tracing::info!("responder blocked {addr} ({})", alert.rule),
            _ => {}
        }
        Ok(())
    }
}

/// Alerts worth sharing, offered to the mesh node (whose privacy filter decides again what
/// leaves the hospital).
pub struct MeshShare {
    pub mesh: Arc<crate::mesh::Mesh>,
    pub policy: crate::mesh::Config,
}

impl Sink for MeshShare {
    fn name(&self) -> &'static str {
        "mesh"
    }

    fn wants(&self) -> Wants {
        Wants::ALERTS
    }

    fn alert(&mut self, alert: &Alert) -> Result<(), Failure> {
        if self.policy.shares(alert) {
            self.mesh.offer(alert);
        }
        Ok(())
    }
}
