//! The agent's place in the hospitals' mesh: which alerts it shares, and the node it runs
//! when this hospital is a member (after `heir mesh init` or `heir mesh join`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use heir_mesh::keystore::Keystore;
use heir_model::{Alert, Severity};
use serde::Deserialize;
use tokio::sync::mpsc;

/// `[mesh]` in the configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Run the mesh node when this node holds a membership.
    pub enabled: bool,
    /// Addresses to listen on (multiaddrs).
    pub listen: Vec<String>,
    /// Peers to dial at start, besides those in the invitation.
    pub bootstrap: Vec<String>,
    /// Discover peers on the local network with mDNS.
    pub mdns: bool,
    /// Alerts below this severity stay in the hospital.
    pub share_min_severity: Severity,
    /// Alerts below this confidence stay in the hospital.
    pub share_min_confidence: f32,
    /// Distinct hospitals that must have reported an attacker address before the responder
    /// may act on it (what it does is `[respond] mesh`).
    pub act_min_hospitals: usize,
    /// Corroborated confidence (0..1) the address must reach as well.
    pub act_min_confidence: f64,
    /// The hospital's own address blocks beyond the private ranges, its public prefixes
    /// included: no indicator ever names an address in them.
    pub internal_networks: Vec<heir_mesh::privacy::Cidr>,
    /// DNS suffixes of the hospital's own names (added to `local`, `lan`, …).
    pub internal_domains: Vec<String>,
    /// Words that must never leave (ward names, the hospital's name). The registry's device
    /// names and locations are added by themselves.
    pub private_terms: Vec<String>,
}

/// What the privacy filter must know of this hospital beyond `[mesh]`: the addresses of
/// the host and of the registry's devices, and the registry's names and locations.
#[derive(Debug, Clone, Default)]
pub struct Own {
    pub addresses: Vec<std::net::IpAddr>,
    pub terms: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            enabled: true,
            listen: vec![
                "/ip4/0.0.0.0/tcp/4717".into(),
                "/ip4/0.0.0.0/udp/4717/quic-v1".into(),
            ],
            bootstrap: Vec::new(),
            mdns: false,
            share_min_severity: Severity::Medium,
            share_min_confidence: 0.7,
            act_min_hospitals: heir_mesh::trust::Config::default().act_min_hospitals,
            act_min_confidence: heir_mesh::trust::Config::default().act_min_confidence,
            internal_networks: Vec::new(),
            internal_domains: Vec::new(),
            private_terms: Vec::new(),
        }
    }
}

impl Config {
    /// Whether an alert is worth offering to the other hospitals. What actually leaves is
    /// decided again by the mesh's privacy filter: only external indicators ever do.
    ///
    /// A match of a known indicator is never offered: it would come back as one more
    /// hospital reporting it, so one member's report, matched by every hospital's routine
    /// traffic (a public resolver), would corroborate itself into an actionable block.
    pub fn shares(&self, a: &Alert) -> bool {
        a.category != heir_model::Category::KnownIndicator
            && a.severity >= self.share_min_severity
            && a.confidence >= self.share_min_confidence
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("mesh keystore")]
    Keystore(#[from] heir_mesh::keystore::Error),
    #[error("mesh address `{addr}`")]
    Address {
        addr: String,
        source: heir_mesh::node::MultiaddrError,
    },
    #[error("mesh node")]
    Node(#[from] heir_mesh::node::Error),
}

/// The privacy filter's settings: `[mesh]`'s, plus this hospital's own addresses (as host
/// prefixes) and the registry's words.
pub fn privacy(config: &Config, own: &Own) -> heir_mesh::privacy::Config {
    let mut p = heir_mesh::privacy::Config::default();
    p.internal_networks
        .extend(config.internal_networks.iter().copied());
    p.internal_networks.extend(
        own.addresses
            .iter()
            .map(|ip| heir_mesh::privacy::Cidr::host(*ip)),
    );
    p.internal_domains
        .extend(config.internal_domains.iter().cloned());
    p.private_terms.extend(config.private_terms.iter().cloned());
    p.private_terms
        .extend(own.terms.iter().filter(|t| t.trim().len() >= 3).cloned());
    p
}

/// Where this node's mesh keys and knowledge base live.
pub fn keystore_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("mesh")
}

/// The responder's input from the mesh; the node decides what is actionable (its
/// `trust` thresholds) and hands each address over once per change of corroboration.
pub use heir_mesh::node::Actionable;

/// A running mesh node, as the agent uses it.
pub struct Mesh {
    pub client: heir_mesh::Client,
    outbox: mpsc::Sender<Alert>,
    pub unshared: Arc<AtomicU64>,
    pub received: Arc<AtomicU64>,
    /// The bootstrap peers' addresses, from the membership and the configuration: the
    /// responder never blocks them.
    pub bootstrap: Vec<String>,
}

impl Mesh {
    /// Starts the node when the configuration allows it and this node is a member;
    /// `Ok(None)` otherwise. The receiver yields each corroborated attacker address once;
    /// `learn` gets every indicator the knowledge base holds, then each change to one.
    pub fn start(
        config: &Config,
        data_dir: &Path,
        own: &Own,
        learn: mpsc::Sender<crate::intel::Learn>,
    ) -> Result<Option<(Mesh, mpsc::Receiver<Actionable>)>, Error> {
        let dir = keystore_dir(data_dir);
        if !config.enabled || !dir.join("membership").exists() {
            return Ok(None);
        }
        let keystore = Keystore::open(&dir)?;
        let setup = heir_mesh::node::Setup::from_keystore(&keystore)?;
        fn parse(a: &str) -> Result<heir_mesh::node::Multiaddr, Error> {
            a.parse().map_err(|source| Error::Address {
                addr: a.to_owned(),
                source,
            })
        }
        let trust = heir_mesh::trust::Config {
            act_min_hospitals: config.act_min_hospitals.max(1),
            act_min_confidence: config.act_min_confidence,
            ..heir_mesh::trust::Config::default()
        };
        let mut node_config = heir_mesh::Config {
            listen: config
                .listen
                .iter()
                .map(|a| parse(a))
                .collect::<Result<_, _>>()?,
            mdns: config.mdns,
            trust,
            privacy: privacy(config, own),
            ..heir_mesh::Config::default()
        };
        let mut bootstrap: Vec<String> = setup.membership.bootstrap.clone();
        bootstrap.extend(config.bootstrap.iter().cloned());
        let peers = bootstrap.clone();
        node_config.bootstrap = bootstrap
            .iter()
            .map(|a| parse(a))
            .collect::<Result<_, _>>()?;
        let (client, event_loop, mut events) = heir_mesh::node::new(setup, node_config)?;
        tokio::spawn(event_loop.run());

        let received = Arc::new(AtomicU64::new(0));
        let counter = received.clone();
        let keys = client.clone();
        let (act, actionable) = mpsc::channel::<Actionable>(256);
        tokio::spawn(async move {
            // What the knowledge base already holds is matched from the start; it was hunted
            // for when it arrived.
            match keys.indicators().await {
                Ok(entries) => {
                    let now = heir_model::Timestamp::now();
                    for k in entries
                        .iter()
                        .filter_map(|e| crate::intel::from_entry(e, now))
                    {
                        let update = heir_detect::known::Update::Add(k);
                        let _ = learn
                            .send(crate::intel::Learn {
                                update,
                                hunt: false,
                            })
                            .await;
                    }
                }
                Err(e) => tracing::error!("mesh knowledge base: {}", heir_mesh::report(&e)),
            }
            while let Some(ev) = events.recv().await {
                match ev {
                    heir_mesh::Event::Received {
                        hospital, change, ..
                    } => {
                        counter.fetch_add(1, Ordering::Relaxed);
                        tracing::info!("indicator from {hospital}");
                        learned(&keys, &change, &learn).await;
                    }
                    heir_mesh::Event::Actionable(a) => {
                        // Waiting here backs up into the node's bounded event queue, whose
                        // drops it counts and retries with the address's next report.
                        // (A closed receiver means no responder: the rest still runs.)
                        let _ = act.send(a).await;
                    }
                    heir_mesh::Event::GroupKey { .. } => {
                        // Keep rotated group keys across restarts.
                        if let Ok(ring) = keys.keyring().await
                            && let Err(e) = keystore.save_keyring(&ring)
                        {
                            tracing::error!("saving mesh group keys: {}", heir_mesh::report(&e));
                        }
                    }
                    heir_mesh::Event::Rejected { peer, reason, .. } => {
                        tracing::warn!("mesh message from {peer} refused: {reason:?}");
                    }
                    _ => {}
                }
            }
        });

        let (outbox, mut pending) = mpsc::channel::<Alert>(256);
        let publisher = client.clone();
        tokio::spawn(async move {
            while let Some(a) = pending.recv().await {
                if let Err(e) = publisher.publish_alert(a, None, None).await {
                    tracing::debug!("alert not shared: {}", heir_mesh::report(&e));
                }
            }
        });
        Ok(Some((
            Mesh {
                client,
                outbox,
                unshared: Arc::new(AtomicU64::new(0)),
                received,
                bootstrap: peers,
            },
            actionable,
        )))
    }

    /// Offers an alert to the mesh without waiting; a full outbox is counted.
    /// (Known-indicator matches are never offered: see [`Config::shares`].)
    pub fn offer(&self, alert: &Alert) {
        if self.outbox.try_send(alert.clone()).is_err() {
            self.unshared.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Hands what a received item changed to the matcher: a new indicator (hunted for in the
/// stored events), new facts about one, or its end (withdrawn, disputed, expired).
async fn learned(
    client: &heir_mesh::Client,
    change: &heir_mesh::knowledge::Change,
    learn: &mpsc::Sender<crate::intel::Learn>,
) {
    use heir_mesh::knowledge::Change;
    let (id, new) = match change {
        Change::NewIndicator(id) => (id, true),
        Change::Corroborated { id, .. } | Change::Retracted(id) => (id, false),
        _ => return,
    };
    let entry = match client.indicator(*id).await {
        Ok(e) => e,
        Err(e) => {
            tracing::error!("mesh indicator {id}: {}", heir_mesh::report(&e));
            return;
        }
    };
    let update =
        match entry.and_then(|e| crate::intel::from_entry(&e, heir_model::Timestamp::now())) {
            Some(k) => heir_detect::known::Update::Add(k),
            None => heir_detect::known::Update::Remove(crate::intel::mesh_id(id)),
        };
    let _ = learn.send(crate::intel::Learn { update, hunt: new }).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use heir_mesh::indicator::Observable;
    use heir_mesh::privacy::{Filter, Withheld};
    use heir_model::{Category, Timestamp};

    fn beacon(src: &str, dst: &str) -> Alert {
        let mut a = Alert::new(
            Timestamp::from_secs(1000),
            "net.c2_beacon",
            "Periodic contact",
            Category::C2Beacon,
            Severity::High,
            0.9,
        );
        a.src_ip = Some(src.parse().unwrap());
        a.dst_ip = Some(dst.parse().unwrap());
        a
    }

    /// A match of the mesh's own knowledge never goes back to it as a new report.
    #[test]
    fn matches_of_known_indicators_are_not_offered_back() {
        let config = Config::default();
        let mut a = beacon("10.1.0.5", "203.0.113.9");
        assert!(config.shares(&a), "a beacon is offered");
        a.category = Category::KnownIndicator;
        assert!(!config.shares(&a), "its match is not");
    }

    #[test]
    fn the_hospitals_own_addresses_and_words_stay_home() {
        let config: Config = toml::from_str(
            "internal_networks = [\"203.0.113.0/28\"]\nprivate_terms = [\"Saint-Fixture\"]\n",
        )
        .unwrap();
        let own = Own {
            // A registry device with a public address outside the configured prefix.
            addresses: vec!["192.0.2.77".parse().unwrap()],
            terms: vec!["Ward 7 pump".into(), "x".into()],
        };
        let p = privacy(&config, &own);
        assert!(p.private_terms.iter().any(|t| t == "Saint-Fixture"));
        assert!(p.private_terms.iter().any(|t| t == "Ward 7 pump"));
        assert!(
            !p.private_terms.iter().any(|t| t == "x"),
            "too short to match safely"
        );
        let f = Filter::new(p, zeroize::Zeroizing::new([1; 32]));
        // The registry device beacons out: the outside server is named, never the device.
        let ind = f
            .candidate(&beacon("192.0.2.77", "198.51.100.66"), None)
            .unwrap();
        assert_eq!(
            ind.observable,
            Observable::Ip("198.51.100.66".parse().unwrap())
        );
        // Towards the hospital's own public prefix: nothing leaves.
        assert!(matches!(
            f.candidate(&beacon("192.0.2.77", "203.0.113.5"), None),
            Err(Withheld::NothingExternal)
        ));
        // An unknown key is refused by name.
        let err = toml::from_str::<Config>("internal_network = []\n").unwrap_err();
        assert!(err.to_string().contains("internal_network"), "{err}");
    }
}
