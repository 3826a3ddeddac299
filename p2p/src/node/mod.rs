//! The libp2p node: an [`EventLoop`] that owns the swarm, a [`Client`] that talks to it over a
//! bounded command channel, and a bounded channel of [`Event`]s out (cf. rust-libp2p's
//! file-sharing example).

mod actionable;
mod behaviour;
mod client;
mod event_loop;

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use libp2p::multiaddr::{Error as MultiaddrError, Protocol};
pub use libp2p::{Multiaddr, PeerId};
use serde::Serialize;
use tokio::sync::mpsc;

pub use actionable::Actionable;
pub use behaviour::{BackfillRequest, BackfillResponse, Behaviour, TOPIC};
pub use client::{Client, Published, Rotation};
pub use event_loop::EventLoop;

use crate::clock::{SharedClock, SystemClock};
use crate::group::Keyring;
use crate::identity::Identity;
use crate::indicator::Item;
use crate::keystore::{self, Keystore, Membership};
use crate::knowledge::Change;
use crate::membership::Revocations;
use crate::privacy::{self, Filter};
use crate::trust;
use crate::validate::Reason;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("transport")]
    Transport(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("listen on {addr}")]
    Listen {
        addr: Multiaddr,
        source: libp2p::TransportError<std::io::Error>,
    },
    #[error("dial {addr}")]
    Dial {
        addr: Multiaddr,
        source: Box<libp2p::swarm::DialError>,
    },
    #[error("gossipsub")]
    Gossipsub(#[source] libp2p::gossipsub::PublishError),
    /// Gossipsub's configuration refused (its errors are plain messages, not error types).
    #[error("gossipsub setup: {0}")]
    GossipsubSetup(String),
    #[error("mDNS")]
    Mdns(#[source] std::io::Error),
    #[error("refused by the privacy filter")]
    Privacy(#[from] privacy::Violation),
    #[error("not shared")]
    Withheld(#[from] privacy::Withheld),
    #[error("{0} items go to a sharing group: name one")]
    NeedsGroup(crate::tlp::Tlp),
    #[error("sharing group")]
    Group(#[from] crate::group::Error),
    #[error("this node's credential is not in sharing group `{0}`")]
    NotInGroup(String),
    #[error("knowledge base")]
    Knowledge(#[from] crate::knowledge::Error),
    #[error("keystore")]
    Keystore(#[from] keystore::Error),
    #[error("the node has stopped")]
    Stopped,
}

/// Node settings; every field has a working default.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: Vec<Multiaddr>,
    /// Peers to dial at start (with their `/p2p/` id) and to seed Kademlia with.
    pub bootstrap: Vec<Multiaddr>,
    /// Discover peers on the local network with mDNS.
    pub mdns: bool,
    pub heartbeat: Duration,
    /// How long gossipsub remembers message ids; identical bytes within it are dropped
    /// before the application sees them.
    pub duplicate_cache: Duration,
    pub trust: trust::Config,
    pub privacy: privacy::Config,
    /// Envelopes kept for backfill.
    pub log_capacity: usize,
    /// How far back to ask a peer for on (re)connection when this node knows nothing newer.
    pub backfill_window: Duration,
    /// Most envelopes one backfill response carries.
    pub backfill_limit: usize,
    pub command_capacity: usize,
    pub event_capacity: usize,
    /// Addresses exempt from gossipsub's IP-colocation penalty (hospitals behind one NAT,
    /// or tests on loopback).
    pub colocation_whitelist: Vec<IpAddr>,
    /// Hard rejections (forged, malformed) from one peer before it is blocked.
    pub ban_after: u32,
    pub idle_timeout: Duration,
    /// Discovered peers (Kademlia, mDNS) are dialled while this node has fewer connections.
    pub target_peers: usize,
    /// Liveness probe period; a connection whose ping fails is closed, so a partition is
    /// noticed and healed by reconnection and backfill.
    pub ping_interval: Duration,
    /// How often a node below half its peer target redials its bootstrap peers and re-runs
    /// Kademlia discovery.
    pub redial_interval: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: vec![
                "/ip4/0.0.0.0/tcp/4717".parse().expect("valid multiaddr"),
                "/ip4/0.0.0.0/udp/4717/quic-v1"
                    .parse()
                    .expect("valid multiaddr"),
            ],
            bootstrap: Vec::new(),
            mdns: false,
            heartbeat: Duration::from_secs(1),
            duplicate_cache: Duration::from_secs(120),
            trust: trust::Config::default(),
            privacy: privacy::Config::default(),
            log_capacity: 100_000,
            backfill_window: Duration::from_secs(7 * 86_400),
            backfill_limit: 2_000,
            command_capacity: 64,
            event_capacity: 1024,
            colocation_whitelist: Vec::new(),
            ban_after: 3,
            idle_timeout: Duration::from_secs(600),
            target_peers: 12,
            ping_interval: Duration::from_secs(15),
            redial_interval: Duration::from_secs(30),
        }
    }
}

/// Everything a node is made of besides its settings.
pub struct Setup {
    pub identity: Identity,
    pub membership: Membership,
    pub keyring: Keyring,
    pub revocations: Revocations,
    pub pseudonym_key: zeroize::Zeroizing<[u8; 32]>,
    /// Where accepted envelopes are persisted; `None` keeps them in memory only.
    pub log: Option<PathBuf>,
    pub clock: SharedClock,
}

impl Setup {
    /// Loads a node's keys and membership from its keystore, with the log beside them.
    pub fn from_keystore(store: &Keystore) -> Result<Self, keystore::Error> {
        Ok(Self {
            identity: store.identity()?,
            membership: store.membership()?,
            keyring: store.keyring()?,
            revocations: store.revocations()?,
            pseudonym_key: store.pseudonym_key()?,
            log: Some(store.path("knowledge.log")),
            clock: Arc::new(SystemClock),
        })
    }
}

/// Where a received item came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    Gossip,
    Backfill,
}

/// What the node reports to the application.
#[derive(Debug, Clone)]
pub enum Event {
    /// A validated item from another member, stored in the knowledge base.
    Received {
        item: Box<Item>,
        hospital: String,
        author: PeerId,
        change: Change,
        via: Via,
    },
    /// An attacker address corroborated past [`Config::trust`]'s thresholds (hospitals and
    /// confidence), following a [`Event::Received`]: the responder's input. Each address
    /// comes once per change of its corroboration (a further hospital reporting it); one
    /// that could not be delivered (a full event queue) comes with the next report.
    Actionable(Actionable),
    /// A validated envelope sealed for a sharing group this node is not in: stored and relayed.
    Relayed {
        author: PeerId,
    },
    /// A message refused; `peer` relayed it.
    Rejected {
        peer: PeerId,
        reason: Reason,
        detail: String,
    },
    BackfillCompleted {
        peer: PeerId,
        offered: usize,
        accepted: usize,
    },
    /// A member rotated a sharing group's key and this node installed the new epoch; persist
    /// [`Client::keyring`].
    GroupKey {
        group: String,
        epoch: u32,
    },
    PeerConnected(PeerId),
    PeerDisconnected(PeerId),
}

/// One connected peer, as `heir mesh peers` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct PeerInfo {
    #[serde(serialize_with = "display")]
    pub peer_id: PeerId,
    pub hospital: Option<String>,
    pub gossip_score: Option<f64>,
    pub reputation: Option<f64>,
    pub in_mesh: bool,
}

/// The node's state, as `heir mesh status` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    #[serde(serialize_with = "display")]
    pub peer_id: PeerId,
    pub hospital: String,
    pub consortium: String,
    pub credential_expires: heir_model::Timestamp,
    pub listen_addrs: Vec<String>,
    pub connected: usize,
    pub mesh_peers: usize,
    pub indicators: usize,
    pub stored_envelopes: usize,
    pub published: u64,
    pub accepted: u64,
    pub rejected: std::collections::BTreeMap<Reason, u64>,
    pub backfilled: u64,
    pub dropped_events: u64,
    pub blocked: Vec<String>,
    pub groups: Vec<(String, u32)>,
    pub revocations_version: u64,
    /// Problems met while running (damaged store, failed writes).
    pub warnings: Vec<String>,
}

fn display<T: std::fmt::Display, S: serde::Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

/// Builds a node. Drive the [`EventLoop`] with `tokio::spawn(event_loop.run())`; the
/// receiver yields [`Event`]s and must be drained (events beyond its capacity are dropped
/// and counted in [`Status::dropped_events`]).
pub fn new(
    setup: Setup,
    config: Config,
) -> Result<(Client, EventLoop, mpsc::Receiver<Event>), Error> {
    let filter = Filter::new(config.privacy.clone(), setup.pseudonym_key.clone());
    let (cmd_tx, cmd_rx) = mpsc::channel(config.command_capacity.max(1));
    let (ev_tx, ev_rx) = mpsc::channel(config.event_capacity.max(1));
    let peer_id = setup.identity.peer_id();
    let event_loop = EventLoop::new(setup, config, filter, cmd_rx, ev_tx)?;
    Ok((Client::new(cmd_tx, peer_id), event_loop, ev_rx))
}
