//! The application's handle on a running node: cheap to clone, every call a command over the
//! bounded channel to the [`super::EventLoop`], answered on a oneshot.

use heir_model::{Alert, Timestamp};
use libp2p::{Multiaddr, PeerId};
use tokio::sync::{mpsc, oneshot};

use super::{Error, PeerInfo, Status};
use crate::group::Keyring;
use crate::indicator::{IndicatorId, Item, Metric};
use crate::knowledge::Entry;
use crate::membership::Revocations;
use crate::observatory::Report;
use crate::privacy::DeviceContext;

/// Receipt for a published item.
#[derive(Debug, Clone, PartialEq)]
pub struct Published {
    /// Gossipsub message id (content hash).
    pub message_id: Vec<u8>,
    /// Bytes on the wire.
    pub size: usize,
    /// False when no peer was reachable: the item is stored and peers get it by backfill.
    pub sent: bool,
}

/// Outcome of a group key rotation.
#[derive(Debug, Clone, PartialEq)]
pub struct Rotation {
    pub group: String,
    pub epoch: u32,
    /// Members the new key was wrapped to (this node included).
    pub recipients: usize,
    pub published: Published,
}

pub(super) type Reply<T> = oneshot::Sender<T>;

pub(super) enum Command {
    Publish {
        item: Item,
        group: Option<String>,
        reply: Reply<Result<Published, Error>>,
    },
    PublishAlert {
        alert: Box<Alert>,
        device: Option<DeviceContext>,
        group: Option<String>,
        reply: Reply<Result<Published, Error>>,
    },
    PublishStatistic {
        metric: Metric,
        counts: Vec<u64>,
        contributors: u32,
        period: (Timestamp, Timestamp),
        reply: Reply<Result<Published, Error>>,
    },
    #[cfg(feature = "testing")]
    PublishRaw {
        bytes: Vec<u8>,
        reply: Reply<Result<Published, Error>>,
    },
    Dial {
        addr: Multiaddr,
        reply: Reply<Result<(), Error>>,
    },
    ListenAddrs {
        reply: Reply<Vec<Multiaddr>>,
    },
    Peers {
        reply: Reply<Vec<PeerInfo>>,
    },
    Status {
        reply: Reply<Status>,
    },
    Indicators {
        reply: Reply<Vec<Entry>>,
    },
    Indicator {
        id: IndicatorId,
        reply: Reply<Option<Entry>>,
    },
    Observatory {
        own_rama: Option<f64>,
        reply: Reply<Report>,
    },
    Envelopes {
        reply: Reply<Vec<Vec<u8>>>,
    },
    Block {
        peer: PeerId,
        reply: Reply<()>,
    },
    Unblock {
        peer: PeerId,
        reply: Reply<()>,
    },
    Revoke {
        list: Revocations,
        reply: Reply<Result<Published, Error>>,
    },
    RotateGroup {
        group: String,
        reply: Reply<Result<Rotation, Error>>,
    },
    Keyring {
        reply: Reply<Keyring>,
    },
    Shutdown,
}

#[derive(Clone)]
pub struct Client {
    tx: mpsc::Sender<Command>,
    peer_id: PeerId,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Client({})", self.peer_id)
    }
}

impl Client {
    pub(super) fn new(tx: mpsc::Sender<Command>, peer_id: PeerId) -> Self {
        Self { tx, peer_id }
    }

    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    async fn ask<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, Error> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(make(tx)).await.map_err(|_| Error::Stopped)?;
        rx.await.map_err(|_| Error::Stopped)
    }

    /// Publishes an item after the privacy filter's final check. TLP:CLEAR and GREEN go to
    /// the consortium; AMBER and AMBER+STRICT need `group` and are sealed for it; RED is
    /// refused.
    pub async fn publish(&self, item: Item, group: Option<String>) -> Result<Published, Error> {
        self.ask(|reply| Command::Publish { item, group, reply })
            .await?
    }

    /// Turns an alert into an indicator through the privacy filter and publishes it.
    pub async fn publish_alert(
        &self,
        alert: Alert,
        device: Option<DeviceContext>,
        group: Option<String>,
    ) -> Result<Published, Error> {
        self.ask(|reply| Command::PublishAlert {
            alert: Box::new(alert),
            device,
            group,
            reply,
        })
        .await?
    }

    /// Releases a statistic (e.g. the histogram of this hospital's RAMA scores): withheld
    /// below the k-anonymity threshold, otherwise noised with the configured ε and published.
    pub async fn publish_statistic(
        &self,
        metric: Metric,
        counts: Vec<u64>,
        contributors: u32,
        period: (Timestamp, Timestamp),
    ) -> Result<Published, Error> {
        self.ask(|reply| Command::PublishStatistic {
            metric,
            counts,
            contributors,
            period,
            reply,
        })
        .await?
    }

    /// Publishes bytes exactly as given, bypassing envelope building and the privacy filter:
    /// for conformance tests of what receivers refuse.
    #[cfg(feature = "testing")]
    pub async fn publish_raw(&self, bytes: Vec<u8>) -> Result<Published, Error> {
        self.ask(|reply| Command::PublishRaw { bytes, reply })
            .await?
    }

    pub async fn dial(&self, addr: Multiaddr) -> Result<(), Error> {
        self.ask(|reply| Command::Dial { addr, reply }).await?
    }

    pub async fn listen_addrs(&self) -> Result<Vec<Multiaddr>, Error> {
        self.ask(|reply| Command::ListenAddrs { reply }).await
    }

    pub async fn peers(&self) -> Result<Vec<PeerInfo>, Error> {
        self.ask(|reply| Command::Peers { reply }).await
    }

    pub async fn status(&self) -> Result<Status, Error> {
        self.ask(|reply| Command::Status { reply }).await
    }

    /// Every indicator in the knowledge base, with its corroboration.
    pub async fn indicators(&self) -> Result<Vec<Entry>, Error> {
        self.ask(|reply| Command::Indicators { reply }).await
    }

    pub async fn indicator(&self, id: IndicatorId) -> Result<Option<Entry>, Error> {
        self.ask(|reply| Command::Indicator { id, reply }).await
    }

    /// The observatory's views; `own_rama` places this hospital among its peers.
    pub async fn observatory(&self, own_rama: Option<f64>) -> Result<Report, Error> {
        self.ask(|reply| Command::Observatory { own_rama, reply })
            .await
    }

    /// The stored envelopes, as peers would backfill them.
    pub async fn envelopes(&self) -> Result<Vec<Vec<u8>>, Error> {
        self.ask(|reply| Command::Envelopes { reply }).await
    }

    /// Closes connections to `peer` and refuses new ones.
    pub async fn block(&self, peer: PeerId) -> Result<(), Error> {
        self.ask(|reply| Command::Block { peer, reply }).await
    }

    pub async fn unblock(&self, peer: PeerId) -> Result<(), Error> {
        self.ask(|reply| Command::Unblock { peer, reply }).await
    }

    /// Installs a consortium-signed revocation list, disconnects revoked members, and relays
    /// the list to the mesh.
    pub async fn revoke(&self, list: Revocations) -> Result<Published, Error> {
        self.ask(|reply| Command::Revoke { list, reply }).await?
    }

    /// Starts a new key epoch for `group` and sends it, wrapped, to every member of the group
    /// this node knows (from their messages and backfill requests). Persist the result of
    /// [`Client::keyring`] afterwards.
    pub async fn rotate_group(&self, group: impl Into<String>) -> Result<Rotation, Error> {
        let group = group.into();
        self.ask(|reply| Command::RotateGroup { group, reply })
            .await?
    }

    /// The node's current group keys, e.g. to persist after a rotation.
    pub async fn keyring(&self) -> Result<Keyring, Error> {
        self.ask(|reply| Command::Keyring { reply }).await
    }

    pub async fn shutdown(&self) -> Result<(), Error> {
        self.tx
            .send(Command::Shutdown)
            .await
            .map_err(|_| Error::Stopped)
    }
}
