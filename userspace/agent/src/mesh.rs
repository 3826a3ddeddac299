//! The agent's place in the hospitals' mesh: which alerts it shares, and the node it runs
//! when this hospital is a member (after `heir mesh init` or `heir mesh join`).

use std::collections::HashSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use heir_mesh::Observable;
use heir_mesh::indicator::IndicatorId;
use heir_mesh::keystore::Keystore;
use heir_mesh::knowledge::{Change, Entry};
use heir_model::{Alert, Category, Severity, Timestamp};
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
        }
    }
}

impl Config {
    /// Whether an alert is worth offering to the other hospitals. What actually leaves is
    /// decided again by the mesh's privacy filter: only external indicators ever do.
    pub fn shares(&self, a: &Alert) -> bool {
        a.severity >= self.share_min_severity && a.confidence >= self.share_min_confidence
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("mesh keystore: {0}")]
    Keystore(#[from] heir_mesh::keystore::Error),
    #[error("mesh address `{addr}`: {reason}")]
    Address { addr: String, reason: String },
    #[error("mesh node: {0}")]
    Node(String),
}

/// Where this node's mesh keys and knowledge base live.
pub fn keystore_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("mesh")
}

/// An attacker address the consortium corroborated past this node's thresholds: the
/// responder's input from the mesh.
#[derive(Debug, Clone, PartialEq)]
pub struct Actionable {
    pub addr: IpAddr,
    pub category: Category,
    /// The rule that reported it, e.g. `net.port_scan`.
    pub rule: String,
    pub hospitals: usize,
    pub confidence: f64,
}

impl Actionable {
    /// What the audit log and the block table record as the reason.
    pub fn reason(&self) -> String {
        format!(
            "mesh: {} by {} hospitals ({:.2})",
            self.rule, self.hospitals, self.confidence
        )
    }

    /// The actionable address an entry names, if it names one and is corroborated enough.
    pub fn from_entry(
        entry: &Entry,
        policy: &heir_mesh::trust::Config,
        now: Timestamp,
    ) -> Option<Self> {
        let Observable::Ip(addr) = entry.indicator.observable else {
            return None;
        };
        entry.actionable(policy, now).then(|| Actionable {
            addr,
            category: entry.indicator.category,
            rule: entry.indicator.rule.clone(),
            hospitals: entry.hospitals(),
            confidence: entry.confidence,
        })
    }
}

/// A running mesh node, as the agent uses it.
pub struct Mesh {
    pub client: heir_mesh::Client,
    outbox: mpsc::Sender<Alert>,
    pub unshared: Arc<AtomicU64>,
    pub received: Arc<AtomicU64>,
}

impl Mesh {
    /// Starts the node when the configuration allows it and this node is a member;
    /// `Ok(None)` otherwise. The receiver yields each corroborated attacker address once.
    pub fn start(
        config: &Config,
        data_dir: &Path,
    ) -> Result<Option<(Mesh, mpsc::Receiver<Actionable>)>, Error> {
        let dir = keystore_dir(data_dir);
        if !config.enabled || !dir.join("membership").exists() {
            return Ok(None);
        }
        let keystore = Keystore::open(&dir)?;
        let setup = heir_mesh::node::Setup::from_keystore(&keystore)?;
        fn parse(a: &str) -> Result<heir_mesh::node::Multiaddr, Error> {
            a.parse()
                .map_err(|e: heir_mesh::node::MultiaddrError| Error::Address {
                    addr: a.to_owned(),
                    reason: e.to_string(),
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
            trust: trust.clone(),
            ..heir_mesh::Config::default()
        };
        let mut bootstrap: Vec<String> = setup.membership.bootstrap.clone();
        bootstrap.extend(config.bootstrap.iter().cloned());
        node_config.bootstrap = bootstrap
            .iter()
            .map(|a| parse(a))
            .collect::<Result<_, _>>()?;
        let (client, event_loop, mut events) =
            heir_mesh::node::new(setup, node_config).map_err(|e| Error::Node(e.to_string()))?;
        tokio::spawn(event_loop.run());

        let received = Arc::new(AtomicU64::new(0));
        let counter = received.clone();
        let keys = client.clone();
        let (act, actionable) = mpsc::channel::<Actionable>(256);
        tokio::spawn(async move {
            let mut acted: HashSet<IndicatorId> = HashSet::new();
            while let Some(ev) = events.recv().await {
                match ev {
                    heir_mesh::Event::Received {
                        hospital, change, ..
                    } => {
                        counter.fetch_add(1, Ordering::Relaxed);
                        tracing::info!("indicator from {hospital}");
                        let id = match change {
                            Change::NewIndicator(id) | Change::Corroborated { id, .. } => id,
                            _ => continue,
                        };
                        if acted.contains(&id) {
                            continue;
                        }
                        let Ok(Some(entry)) = keys.indicator(id).await else {
                            continue;
                        };
                        if let Some(a) = Actionable::from_entry(&entry, &trust, Timestamp::now()) {
                            // Bounded: forgetting old ids only means a repeated block, which
                            // refreshes its expiry.
                            if acted.len() >= 65_536 {
                                acted.clear();
                            }
                            acted.insert(id);
                            if act.try_send(a).is_err() {
                                tracing::warn!(
                                    "responder busy: a corroborated indicator waits for the next report"
                                );
                                acted.remove(&id);
                            }
                        }
                    }
                    heir_mesh::Event::GroupKey { .. } => {
                        // Keep rotated group keys across restarts.
                        if let Ok(ring) = keys.keyring().await
                            && let Err(e) = keystore.save_keyring(&ring)
                        {
                            tracing::error!("saving mesh group keys: {e}");
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
                    tracing::debug!("alert not shared: {e}");
                }
            }
        });
        Ok(Some((
            Mesh {
                client,
                outbox,
                unshared: Arc::new(AtomicU64::new(0)),
                received,
            },
            actionable,
        )))
    }

    /// Offers an alert to the mesh without waiting; a full outbox is counted.
    pub fn offer(&self, alert: &Alert) {
        if self.outbox.try_send(alert.clone()).is_err() {
            self.unshared.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use heir_mesh::knowledge::Report;
    use heir_mesh::{Indicator, trust};

    use super::*;

    fn entry(observable: Observable, hospitals: &[&str], confidence: f64) -> Entry {
        let at = Timestamp::from_secs(1_000);
        let mut indicator = Indicator::new(observable, Category::PortScan, Severity::High, at);
        indicator.rule = "net.port_scan".into();
        Entry {
            indicator,
            reports: hospitals
                .iter()
                .map(|h| Report {
                    hospital: (*h).into(),
                    confidence,
                    at,
                })
                .collect(),
            sightings: 0,
            false_positive: Default::default(),
            withdrawn: false,
            confidence,
            first_seen: at,
            last_seen: at,
        }
    }

    /// The responder hears of an address only once enough hospitals reported it, with
    /// enough confidence, and only for addresses (not domains or products).
    #[test]
    fn only_corroborated_addresses_are_actionable() {
        let policy = trust::Config {
            act_min_hospitals: 2,
            act_min_confidence: 0.9,
            ..trust::Config::default()
        };
        let now = Timestamp::from_secs(2_000);
        let scanner = Observable::Ip("203.0.113.66".parse().unwrap());
        assert_eq!(
            Actionable::from_entry(&entry(scanner.clone(), &["alpha"], 0.95), &policy, now),
            None
        );
        assert_eq!(
            Actionable::from_entry(
                &entry(scanner.clone(), &["alpha", "charlie"], 0.8),
                &policy,
                now
            ),
            None
        );
        let a = Actionable::from_entry(&entry(scanner, &["alpha", "charlie"], 0.97), &policy, now)
            .expect("two hospitals, 0.97");
        assert_eq!(a.addr, "203.0.113.66".parse::<IpAddr>().unwrap());
        assert_eq!(a.hospitals, 2);
        assert!(a.reason().contains("net.port_scan"), "{}", a.reason());
        let domain = Observable::Domain("c2.example".into());
        assert_eq!(
            Actionable::from_entry(&entry(domain, &["alpha", "charlie"], 0.99), &policy, now),
            None
        );
    }
}
