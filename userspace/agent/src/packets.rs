//! The agent's packet side: the XDP sensor on the interfaces named with `--iface`, and what
//! the sysadmin is told about it.

use std::path::Path;

use anyhow::{Context, Result};

use crate::sensor::xdp::{AttachError, Options, Packets};

/// Loads the packet sensor and attaches it to `ifaces`; `None` when no interface is named.
/// An interface that does not exist yet is attached when it appears.
pub fn start(ifaces: &[String], pin_dir: &Path) -> Result<Option<Packets>> {
    if ifaces.is_empty() {
        return Ok(None);
    }
    let options = Options {
        pin_dir: pin_dir.to_owned(),
        ..Options::default()
    };
    let mut packets = Packets::load(&options).context("starting the packet sensor (XDP)")?;
    for iface in ifaces {
        match packets.attach(iface) {
            Ok(mode) => eprintln!("heir: packet sensor on {iface} ({mode} mode)"),
            Err(AttachError::NoInterface(_)) => {
                eprintln!(
                    "heir: no interface {iface} yet; the packet sensor attaches when it appears"
                )
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Some(packets))
}

/// Re-attaches to interfaces that came (back); reports each attempt.
pub fn reattach(packets: &mut Packets) {
    for (iface, r) in packets.reattach() {
        match r {
            Ok(mode) => eprintln!("heir: packet sensor re-attached to {iface} ({mode} mode)"),
            Err(e) => eprintln!("heir: {e}"),
        }
    }
}
