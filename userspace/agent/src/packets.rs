//! The agent's packet side: the XDP sensor on the interfaces named with `--iface`, and what
//! the sysadmin is told about it.

use std::path::Path;

use crate::respond::{Clock, SystemClock, Tables};
use crate::sensor::xdp::{AttachError, Options, Packets};
use anyhow::{Context, Result};
use heir_model::BootClock;
use heir_packet::Sweeper;

/// The packet sensor as the agent runs it: the attached program and the block tables it
/// keeps tidy.
pub struct Gateway {
    pub sensor: Packets,
    tables: Tables,
    flows: Sweeper,
    notify: crate::runtime::Notify,
}

/// Loads the packet sensor and attaches it to `ifaces`; `None` when no interface is named.
/// An interface that does not exist yet is attached when it appears. `flows` says when its
/// connections are reported (see [`Gateway::sweep`]).
pub fn start(
    ifaces: &[String],
    pin_dir: &Path,
    config: &crate::sensor::Config,
    notify: crate::runtime::Notify,
) -> Result<Option<Gateway>> {
    if ifaces.is_empty() {
        return Ok(None);
    }
    let flows = config.flows();
    let options = Options {
        pin_dir: pin_dir.to_owned(),
        flow_entries: config.flow_entries.max(1024),
        device_entries: config.device_entries.max(16),
        devices: config.device_traffic,
        ..Options::default()
    };
    let mut sensor = Packets::load(&options).context("starting the packet sensor (XDP)")?;
    for iface in ifaces {
        match sensor.attach(iface) {
            Ok(mode) => notify.say(&format!("packet sensor on {iface} ({mode} mode)")),
            Err(AttachError::NoInterface(_)) => notify.say(&format!(
                "no interface {iface} yet; the packet sensor attaches when it appears"
            )),
            Err(e) => return Err(e.into()),
        }
    }
    let tables = Tables::open(pin_dir)?;
    Ok(Some(Gateway {
        sensor,
        tables,
        flows: Sweeper::new(flows),
        notify,
    }))
}

impl Gateway {
    /// The packet ring buffer's reader. Can be taken once.
    pub fn reader(&mut self) -> Result<crate::sensor::Reader, crate::sensor::Error> {
        self.sensor.reader()
    }

    /// How often [`Gateway::sweep`] is meant to run.
    pub fn sweep_every(&self) -> std::time::Duration {
        self.flows.config().sweep
    }

    /// Reads the kernel's flow table and returns the connection records that are due, for
    /// the detectors (see [`heir_packet::flows`]).
    pub fn sweep(&mut self) -> Result<Vec<heir_model::Event>, crate::sensor::Error> {
        let table = self.sensor.flows()?;
        let now = SystemClock.boot().as_nanos() as u64;
        let mut out = Vec::new();
        let s = self.flows.sweep(now, table, &BootClock::now(), &mut out);
        tracing::debug!(
            "flow sweep: {} entries, {} connections, {} reported, {} forgotten",
            s.entries,
            s.connections,
            s.reported,
            s.forgotten
        );
        Ok(out)
    }

    /// Periodic upkeep: re-attaches to interfaces that came (back), reporting each attempt,
    /// and removes expired blocks (the kernel already ignores them).
    pub fn tick(&mut self) {
        for (iface, r) in self.sensor.reattach() {
            match r {
                Ok(mode) => self.notify.say(&format!(
                    "packet sensor re-attached to {iface} ({mode} mode)"
                )),
                Err(e) => self.notify.say(&e.to_string()),
            }
        }
        match self.tables.purge_expired(&SystemClock) {
            Ok(0) => {}
            Ok(n) => tracing::info!("{n} expired blocks removed"),
            Err(e) => tracing::warn!("purging expired blocks: {}", heir_api::Chain(&e)),
        }
    }
}

/// The packet source: reads the packet sensor's ring buffer, decodes each record once
/// ([`heir_packet::Decoder`]) and hands each ring-buffer batch to the pipeline as one batch,
/// beside the syscall events. It never waits on the pipeline: a batch the full queue turns
/// away is counted in `stats.dropped` (the kernel keeps counting what its own ring loses).
/// Undecodable records are counted in `stats.decode_errors` and logged.
pub async fn source(
    mut reader: crate::sensor::Reader,
    tx: tokio::sync::mpsc::Sender<Vec<heir_model::Event>>,
    stats: std::sync::Arc<crate::pipeline::Stats>,
) -> Result<(), crate::sensor::Error> {
    use std::sync::atomic::Ordering::Relaxed;
    let mut decoder = heir_packet::Decoder::new(BootClock::now());
    loop {
        let mut batch = Vec::new();
        let mut errors = 0;
        reader
            .read_batch(|b| {
                if let Err(e) = decoder.decode(b, &mut batch) {
                    errors += 1;
                    tracing::warn!("dropping an undecodable packet record: {e}");
                }
            })
            .await?;
        stats.decode_errors.fetch_add(errors, Relaxed);
        if batch.is_empty() {
            continue;
        }
        let n = batch.len() as u64;
        match tx.try_send(batch) {
            Ok(()) => {}
            Err(tokio::sync::mpsc::error::TrySendError::Full(_)) => {
                stats.dropped.fetch_add(n, Relaxed);
            }
            Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) => return Ok(()),
        }
    }
}
