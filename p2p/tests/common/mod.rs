//! Real heir-mesh nodes on loopback, in-process.
#![allow(dead_code)]

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use heir_mesh::group::Keyring;
use heir_mesh::indicator::{Indicator, IndicatorId, Item, Observable};
use heir_mesh::keystore::Membership;
use heir_mesh::membership::{ConsortiumKey, Credential, Revocations, Terms};
use heir_mesh::node::{self, Client, Config, Event, Setup};
use heir_mesh::{Identity, SystemClock, Tlp};
use heir_model::{Category, Severity, Timestamp};
use libp2p::Multiaddr;
use libp2p::multiaddr::Protocol;
use tokio::sync::mpsc;

pub const DAY: Duration = Duration::from_secs(86_400);

/// A consortium with its key and the sharing groups' keys, to admit test members.
pub struct Consortium {
    pub key: ConsortiumKey,
    pub keyring: Keyring,
    serial: std::sync::atomic::AtomicU64,
}

impl Consortium {
    pub fn new() -> Self {
        let mut keyring = Keyring::default();
        keyring.rotate("icu");
        Self {
            key: ConsortiumKey::generate(),
            keyring,
            serial: 1.into(),
        }
    }

    pub fn credential(&self, id: &Identity, hospital: &str, expires: Timestamp) -> Credential {
        let serial = self
            .serial
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.key.issue(
            &id.join_request(),
            Terms {
                hospital: hospital.into(),
                groups: vec!["icu".into()],
                serial,
                issued: Timestamp::from_secs(1),
                expires,
            },
        )
    }

    pub fn member(&self, hospital: &str) -> (Setup, Credential) {
        let id = Identity::generate();
        let cred = self.credential(
            &id,
            hospital,
            heir_mesh::clock::SystemClock.now_plus(365 * DAY),
        );
        (self.setup_for(id, cred.clone()), cred)
    }

    pub fn setup_for(&self, identity: Identity, credential: Credential) -> Setup {
        Setup {
            identity,
            membership: Membership {
                credential,
                consortium: self.key.public(),
                bootstrap: vec![],
            },
            keyring: self.keyring.clone(),
            revocations: Revocations::empty(self.key.public()),
            pseudonym_key: zeroize::Zeroizing::new(rand::random()),
            log: None,
            clock: Arc::new(SystemClock),
        }
    }
}

trait NowPlus {
    fn now_plus(&self, d: Duration) -> Timestamp;
}

impl NowPlus for SystemClock {
    fn now_plus(&self, d: Duration) -> Timestamp {
        Timestamp::from_nanos(Timestamp::now().as_nanos() + d.as_nanos() as u64)
    }
}

pub fn config() -> Config {
    Config {
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
        heartbeat: Duration::from_millis(100),
        duplicate_cache: Duration::from_secs(1),
        colocation_whitelist: vec!["127.0.0.1".parse().unwrap()],
        ..Config::default()
    }
}

pub struct TestNode {
    pub client: Client,
    pub events: mpsc::Receiver<Event>,
    pub addr: Multiaddr,
    pub hospital: String,
}

pub async fn spawn(setup: Setup, config: Config, hospital: &str) -> TestNode {
    let (client, event_loop, events) = node::new(setup, config).expect("node starts");
    tokio::spawn(event_loop.run());
    let addrs = wait_for(Duration::from_secs(5), || {
        let c = client.clone();
        async move { c.listen_addrs().await.ok().filter(|a| !a.is_empty()) }
    })
    .await
    .expect("node listens");
    let addr = addrs[0].clone().with(Protocol::P2p(client.peer_id()));
    TestNode {
        client,
        events,
        addr,
        hospital: hospital.to_owned(),
    }
}

/// Polls `f` every 50 ms until it yields `Some`, or gives up after `timeout`.
pub async fn wait_for<T, F, Fut>(timeout: Duration, mut f: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return Some(v);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Starts `n` members of `consortium` and connects each to a few earlier ones.
pub async fn network(consortium: &Consortium, n: usize, config: Config) -> Vec<TestNode> {
    let mut nodes: Vec<TestNode> = Vec::new();
    for i in 0..n {
        let hospital = format!("H-{i}");
        let (setup, _) = consortium.member(&hospital);
        let node = spawn(setup, config.clone(), &hospital).await;
        for j in [0, i.saturating_sub(1), i / 2] {
            if j < i {
                node.client.dial(nodes[j].addr.clone()).await.unwrap();
            }
        }
        nodes.push(node);
    }
    wait_meshed(&nodes).await;
    nodes
}

/// Waits until every node has a gossipsub mesh peer.
pub async fn wait_meshed(nodes: &[TestNode]) {
    let ok = wait_for(Duration::from_secs(20), || async {
        for n in nodes {
            if n.client.status().await.ok()?.mesh_peers == 0 {
                return None;
            }
        }
        Some(())
    })
    .await;
    assert!(ok.is_some(), "gossipsub mesh did not form");
}

pub fn indicator(n: u8) -> Indicator {
    let mut i = Indicator::new(
        Observable::Ip(format!("203.0.113.{n}").parse().unwrap()),
        Category::C2Beacon,
        Severity::High,
        Timestamp::now(),
    );
    i.tlp = Tlp::Green;
    i.confidence = 80;
    i.rule = "net.c2_beacon".into();
    i
}

pub fn item(n: u8) -> Item {
    Item::Indicator(indicator(n))
}

pub async fn holders(nodes: &[TestNode], id: IndicatorId) -> usize {
    let mut n = 0;
    for node in nodes {
        if node.client.indicator(id).await.unwrap().is_some() {
            n += 1;
        }
    }
    n
}

/// Drains pending events without waiting.
pub fn drain(node: &mut TestNode) -> Vec<Event> {
    let mut v = Vec::new();
    while let Ok(e) = node.events.try_recv() {
        v.push(e);
    }
    v
}

/// Publishes indicator `n` from the first of `nodes` and waits until every one holds it.
///
/// Absence checks call this first: once the canary has spread, the nodes' event loops and
/// their gossip were live after whatever the adversary sent, so what is still missing was
/// refused, not late.
pub async fn canary(nodes: &[TestNode], n: u8) {
    let ind = indicator(n);
    nodes[0]
        .client
        .publish(Item::Indicator(ind.clone()), None)
        .await
        .unwrap();
    let spread = wait_for(Duration::from_secs(15), || async {
        (holders(nodes, ind.id).await == nodes.len()).then_some(())
    })
    .await;
    assert!(
        spread.is_some(),
        "the canary indicator {n} reached {} of {} nodes",
        holders(nodes, ind.id).await,
        nodes.len()
    );
}
