//! The privacy filter every outgoing item passes.
//!
//! Only external indicators leave a hospital: attacker addresses, hashes, domains, and public
//! product names with their CVEs. Internal addresses and hostnames become keyed-hash
//! pseudonyms; process names, pids, evidence and free-text titles never leave. Statistics
//! leave only above a k-anonymity threshold and with discrete Laplace noise (ε-differential
//! privacy; see [`noise`] for why it is discrete).
//!
//! The filter has two halves: [`Filter::candidate`] builds an indicator from an alert, keeping
//! only what is shareable; [`Filter::check`] is the final gate, run on every item just before
//! it is signed and sent, whoever built it.

use std::net::IpAddr;
use std::time::Duration;

use heir_model::{Alert, Category, Timestamp};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::indicator::{Aggregate, Indicator, Item, Metric, Observable, Product, Pseudonym};
use crate::tlp::Tlp;

mod cidr;
pub mod noise;

pub use cidr::{BadCidr, Cidr};

pub use noise::discrete_laplace;

/// Privacy settings. The defaults treat every non-global address as internal.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address blocks of the hospital, beyond the private/loopback/link-local ranges that are
    /// always internal.
    pub internal_networks: Vec<Cidr>,
    /// DNS suffixes of the hospital's own names (e.g. `chu-example.local`).
    pub internal_domains: Vec<String>,
    /// Strings that must never leave: device names, locations and other inventory fields
    /// marked private.
    pub private_terms: Vec<String>,
    /// Minimum number of distinct contributors before a statistic is released.
    pub k_anonymity: u32,
    /// Privacy budget ε per released statistic. Each bucket gets discrete Laplace noise of
    /// scale 1/ε (one device or alert changes one bucket by one): ε = 1 gives a standard
    /// deviation of about 1.36 per bucket; smaller is more private and noisier. Used rounded
    /// down to a multiple of 2^-20.
    pub epsilon: f64,
    /// Marking given to indicators made from alerts.
    pub tlp: Tlp,
    /// How long an indicator made from an alert stays valid.
    #[serde(with = "secs")]
    pub validity: Duration,
}

mod secs {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_secs)
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            internal_networks: Vec::new(),
            internal_domains: vec![
                "local".into(),
                "lan".into(),
                "internal".into(),
                "home.arpa".into(),
                "localdomain".into(),
            ],
            private_terms: Vec::new(),
            k_anonymity: 5,
            epsilon: 1.0,
            tlp: Tlp::Green,
            validity: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// Why an alert or statistic is not shared.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Withheld {
    #[error("alert has no external observable to share")]
    NothingExternal,
    #[error("alert matched a mesh indicator; it is not re-published")]
    Echo,
    #[error("statistic has {contributors} contributors, below the k-anonymity threshold {k}")]
    BelowK { contributors: u32, k: u32 },
}

/// An item the final gate refuses to send.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Violation {
    #[error("TLP:RED items never leave the node")]
    Red,
    #[error("{field} holds an internal address")]
    InternalAddress { field: &'static str },
    #[error("{field} names an internal host or a private term")]
    PrivateName { field: &'static str },
    #[error("aggregate has {contributors} contributors, below k = {k}")]
    BelowK { contributors: u32, k: u32 },
    #[error("aggregate was released with ε = {found}, above the configured budget {budget}")]
    Budget { found: f64, budget: f64 },
}

/// Whether `ip` is internal whatever the configuration says: private, loopback, link-local,
/// shared, documentation-free unique-local ranges, and unspecified.
pub fn always_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => {
            a.is_private()
                || a.is_loopback()
                || a.is_link_local()
                || a.is_unspecified()
                || a.is_broadcast()
                || (a.octets()[0] == 100 && (a.octets()[1] & 0xc0) == 64) // 100.64/10 shared
        }
        IpAddr::V6(a) => {
            if let Some(v4) = a.to_ipv4_mapped() {
                return always_internal(IpAddr::V4(v4));
            }
            a.is_loopback()
                || a.is_unspecified()
                || (a.segments()[0] & 0xfe00) == 0xfc00
                || (a.segments()[0] & 0xffc0) == 0xfe80
        }
    }
}

/// Device facts from the inventory that may be shared: product names and CVEs are public.
#[derive(Debug, Clone, Default)]
pub struct DeviceContext {
    pub product: Option<Product>,
    pub cves: Vec<String>,
}

pub struct Filter {
    config: Config,
    key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Filter")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Filter {
    /// `key` keys the pseudonyms; keep it secret and stable so pseudonyms stay comparable
    /// over time within the hospital.
    pub fn new(config: Config, key: Zeroizing<[u8; 32]>) -> Self {
        Self { config, key }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn is_internal(&self, ip: IpAddr) -> bool {
        always_internal(ip) || self.config.internal_networks.iter().any(|c| c.contains(ip))
    }

    fn is_internal_name(&self, name: &str) -> bool {
        let host = host_of(name);
        let host = host.trim_end_matches('.');
        if let Ok(ip) = host.parse::<IpAddr>() {
            return self.is_internal(ip);
        }
        !host.contains('.')
            || self.config.internal_domains.iter().any(|d| {
                let d = d.trim_start_matches('.').to_ascii_lowercase();
                host == d || host.ends_with(&format!(".{d}"))
            })
    }

    /// Whether free text mentions an internal address or a private term.
    fn leaks(&self, text: &str) -> Option<&'static str> {
        let lower = text.to_ascii_lowercase();
        if self
            .config
            .private_terms
            .iter()
            .any(|t| !t.is_empty() && lower.contains(&t.to_ascii_lowercase()))
        {
            return Some("private");
        }
        let tokens = text.split(|c: char| !(c.is_ascii_hexdigit() || c == '.' || c == ':'));
        for t in tokens.filter(|t| t.len() >= 3) {
            if t.trim_matches(['.', ':'])
                .parse::<IpAddr>()
                .is_ok_and(|ip| self.is_internal(ip))
            {
                return Some("address");
            }
        }
        None
    }

    pub fn pseudonym(&self, what: &[u8]) -> Pseudonym {
        let mut h = blake3::Hasher::new_keyed(&self.key);
        h.update(b"heir-mesh pseudonym v1\0");
        h.update(what);
        let mut out = [0u8; 12];
        out.copy_from_slice(&h.finalize().as_bytes()[..12]);
        Pseudonym(out)
    }

    /// Builds the shareable indicator for an alert: its external address (or the targeted
    /// product), category, severity, rule id and ATT&CK technique; the internal host as a
    /// pseudonym; nothing else.
    pub fn candidate(
        &self,
        alert: &Alert,
        device: Option<&DeviceContext>,
    ) -> Result<Indicator, Withheld> {
        if alert.category == Category::KnownIndicator {
            return Err(Withheld::Echo);
        }
        let (external, internal) = self.parties(alert);
        let product = device
            .and_then(|d| d.product.clone())
            .filter(|p| self.product_is_public(p));
        let observable = match (external, &product) {
            (Some(ip), _) => Observable::Ip(ip),
            (None, Some(p)) if device.is_some_and(|d| !d.cves.is_empty()) => {
                Observable::Product(p.clone())
            }
            _ => return Err(Withheld::NothingExternal),
        };
        let mut ind = Indicator::new(observable, alert.category, alert.severity, alert.ts);
        ind.confidence = (alert.confidence.clamp(0.0, 1.0) * 100.0).round() as u8;
        ind.valid_until = Some(crate::clock::add(alert.ts, self.config.validity));
        ind.tlp = self.config.tlp;
        ind.rule = if is_identifier(&alert.rule) && self.leaks(&alert.rule).is_none() {
            alert.rule.clone()
        } else {
            String::new()
        };
        ind.attack = alert.taxonomy.attack.clone().filter(|a| is_attack_id(a));
        ind.target = product;
        ind.cves = device
            .map(|d| d.cves.iter().filter(|c| is_cve_id(c)).cloned().collect())
            .unwrap_or_default();
        // The internal host, by address or else by name, as a keyed pseudonym.
        ind.internal = internal
            .map(|ip| self.pseudonym(ip.to_string().as_bytes()))
            .or_else(|| {
                alert
                    .device
                    .as_deref()
                    .map(|d| self.pseudonym(d.as_bytes()))
            });
        Ok(ind)
    }

    /// The outside party of an alert, by direction, and the hospital's own side. Who started
    /// it decides: a beacon, an exfiltration, a miner's pool or a reverse shell goes from the
    /// device to the outside, so the outside party is the destination; a scan, a guesser or a
    /// flood comes in, so it is the source. The other side is never taken instead, so a
    /// device with a public address is never published as the attacker; and an address of the
    /// hospital's own (`internal_networks`, which holds its public prefixes too) never leaves.
    fn parties(&self, alert: &Alert) -> (Option<IpAddr>, Option<IpAddr>) {
        let outside = |ip: Option<IpAddr>| ip.filter(|ip| !self.is_internal(*ip));
        let (out_side, own_side) = match alert.category {
            Category::C2Beacon
            | Category::Exfiltration
            | Category::Cryptomining
            | Category::ReverseShell => (alert.dst_ip, alert.src_ip),
            Category::PortScan
            | Category::BruteForce
            | Category::DefaultCredentials
            | Category::DosFlood => (alert.src_ip, alert.dst_ip),
            _ => {
                let ips = [alert.src_ip, alert.dst_ip];
                let external = ips
                    .iter()
                    .flatten()
                    .copied()
                    .find(|ip| !self.is_internal(*ip));
                let internal = ips
                    .iter()
                    .flatten()
                    .copied()
                    .find(|ip| self.is_internal(*ip));
                return (external, internal);
            }
        };
        (outside(out_side), own_side)
    }

    fn product_is_public(&self, p: &Product) -> bool {
        [
            Some(p.vendor.as_str()),
            Some(p.model.as_str()),
            p.firmware.as_deref(),
        ]
        .into_iter()
        .flatten()
        .all(|t| self.leaks(t).is_none())
    }

    /// Releases a histogram as a noised aggregate, or withholds it below k contributors.
    /// Every bucket is its count plus exact discrete Laplace noise, so it is an integer
    /// (carried as a float on the wire, exactly below 2^53). `rng` must be a
    /// cryptographically secure generator: noise that can be predicted can be subtracted.
    pub fn release(
        &self,
        metric: Metric,
        counts: &[u64],
        contributors: u32,
        period: (Timestamp, Timestamp),
        rng: &mut (impl rand::Rng + rand::CryptoRng),
    ) -> Result<Aggregate, Withheld> {
        let k = self.config.k_anonymity;
        if contributors < k {
            return Err(Withheld::BelowK { contributors, k });
        }
        let buckets = counts
            .iter()
            .map(|&c| {
                let c = i64::try_from(c).unwrap_or(i64::MAX);
                c.saturating_add(discrete_laplace(self.config.epsilon, rng)) as f64
            })
            .collect();
        Ok(Aggregate {
            metric,
            period_start: period.0,
            period_end: period.1,
            buckets,
            contributors,
            epsilon: self.config.epsilon,
            tlp: self.config.tlp.max(Tlp::Green),
        })
    }

    /// The final gate: refuses anything that would leak, whoever built the item.
    pub fn check(&self, item: &Item) -> Result<(), Violation> {
        if item.tlp() == Tlp::Red {
            return Err(Violation::Red);
        }
        let text = |field: &'static str, s: &str| -> Result<(), Violation> {
            match self.leaks(s) {
                Some("address") => Err(Violation::InternalAddress { field }),
                Some(_) => Err(Violation::PrivateName { field }),
                None => Ok(()),
            }
        };
        let product = |p: &Product| -> Result<(), Violation> {
            text("vendor", &p.vendor)?;
            text("model", &p.model)?;
            p.firmware
                .as_deref()
                .map_or(Ok(()), |f| text("firmware", f))
        };
        match item {
            Item::Indicator(i) => {
                match &i.observable {
                    Observable::Ip(ip) if self.is_internal(*ip) => {
                        return Err(Violation::InternalAddress {
                            field: "observable",
                        });
                    }
                    Observable::Domain(d) | Observable::Url(d) => {
                        if self.is_internal_name(d) {
                            return Err(Violation::PrivateName {
                                field: "observable",
                            });
                        }
                        text("observable", d)?;
                    }
                    Observable::Product(p) => product(p)?,
                    Observable::Ip(_) | Observable::Sha256(_) => {}
                }
                text("rule", &i.rule)?;
                if let Some(a) = &i.attack {
                    text("attack", a)?;
                }
                if let Some(p) = &i.target {
                    product(p)?;
                }
                for c in &i.cves {
                    text("cves", c)?;
                }
                Ok(())
            }
            Item::Vulnerability(v) => {
                text("cve", &v.cve)?;
                text("description", &v.description)?;
                product(&v.product)
            }
            Item::Aggregate(a) => {
                let k = self.config.k_anonymity;
                if a.contributors < k {
                    return Err(Violation::BelowK {
                        contributors: a.contributors,
                        k,
                    });
                }
                if a.epsilon > self.config.epsilon {
                    return Err(Violation::Budget {
                        found: a.epsilon,
                        budget: self.config.epsilon,
                    });
                }
                Ok(())
            }
            Item::Sighting(_) | Item::Retraction(_) => Ok(()),
        }
    }
}

/// The host part of a domain or URL, lower-cased.
fn host_of(name: &str) -> String {
    let n = name.trim().to_ascii_lowercase();
    let rest = n.split_once("://").map_or(n.as_str(), |(_, r)| r);
    let rest = rest.split(['/', '?', '#']).next().unwrap_or("");
    let rest = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    if let Some(v6) = rest.strip_prefix('[') {
        return v6.split(']').next().unwrap_or("").to_owned();
    }
    if rest.matches(':').count() == 1 {
        rest.split(':').next().unwrap_or("").to_owned()
    } else {
        rest.to_owned()
    }
}

fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

fn is_attack_id(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: &[u8]| r.iter().all(u8::is_ascii_digit);
    match b.len() {
        5 => b[0] == b'T' && digits(&b[1..]),
        9 => b[0] == b'T' && digits(&b[1..5]) && b[5] == b'.' && digits(&b[6..]),
        _ => false,
    }
}

fn is_cve_id(s: &str) -> bool {
    let mut parts = s.splitn(3, '-');
    parts.next() == Some("CVE")
        && parts
            .next()
            .is_some_and(|y| y.len() == 4 && y.bytes().all(|b| b.is_ascii_digit()))
        && parts
            .next()
            .is_some_and(|n| (4..=7).contains(&n.len()) && n.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use heir_model::Severity;

    fn filter() -> Filter {
        let cfg = Config {
            internal_networks: vec!["198.18.0.0/15".parse().unwrap()],
            private_terms: vec!["ward-7".into()],
            ..Config::default()
        };
        Filter::new(cfg, Zeroizing::new([9; 32]))
    }

    fn alert(src: &str, dst: &str) -> Alert {
        let mut a = Alert::new(
            Timestamp::from_secs(1000),
            "net.port_scan",
            "Scan of pump ward-7 from 10.1.2.3",
            Category::PortScan,
            Severity::High,
            0.87,
        );
        a.src_ip = Some(src.parse().unwrap());
        a.dst_ip = Some(dst.parse().unwrap());
        a.device = Some("pump-ward-7".into());
        a.comm = Some("sshd".into());
        a.pid = Some(4242);
        a.taxonomy.attack = Some("T1046".into());
        a
    }

    #[test]
    fn the_outside_party_is_chosen_by_direction_and_never_the_hospitals_own_address() {
        let f = filter();
        // A pump with a public address beacons to a C2 server: the server is published.
        let mut beacon = alert("203.0.113.10", "198.51.100.66");
        beacon.category = Category::C2Beacon;
        let ind = f.candidate(&beacon, None).unwrap();
        assert_eq!(
            ind.observable,
            Observable::Ip("198.51.100.66".parse().unwrap())
        );
        // The same beacon to an address inside the hospital's public prefix: nothing leaves,
        // rather than the device itself.
        let mut own = alert("203.0.113.10", "198.18.0.9");
        own.category = Category::Exfiltration;
        assert!(matches!(
            f.candidate(&own, None),
            Err(Withheld::NothingExternal)
        ));
        // A scan comes in: its source is the outside party, even when the target is public.
        let scan = alert("198.51.100.77", "203.0.113.10");
        let ind = f.candidate(&scan, None).unwrap();
        assert_eq!(
            ind.observable,
            Observable::Ip("198.51.100.77".parse().unwrap())
        );
        // An outbound scan by the hospital's own public host is not an indicator of it.
        let outbound = alert("198.18.0.5", "198.51.100.77");
        assert!(matches!(
            f.candidate(&outbound, None),
            Err(Withheld::NothingExternal)
        ));
    }

    #[test]
    fn cidr_parsing_and_matching() {
        let c: Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(c.contains("10.9.8.7".parse().unwrap()));
        assert!(!c.contains("11.0.0.1".parse().unwrap()));
        assert!(c.contains("::ffff:10.0.0.1".parse().unwrap()));
        let c6: Cidr = "fd00::/8".parse().unwrap();
        assert!(c6.contains("fd12::1".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("nonsense".parse::<Cidr>().is_err());
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()));
    }

    #[test]
    fn alert_keeps_only_the_external_side() {
        let f = filter();
        let ind = f
            .candidate(&alert("203.0.113.9", "10.1.2.3"), None)
            .unwrap();
        assert_eq!(
            ind.observable,
            Observable::Ip("203.0.113.9".parse().unwrap())
        );
        assert_eq!(ind.confidence, 87);
        assert_eq!(ind.rule, "net.port_scan");
        assert_eq!(ind.attack.as_deref(), Some("T1046"));
        assert_eq!(ind.internal, Some(f.pseudonym(b"10.1.2.3")));
        assert_eq!(f.check(&Item::Indicator(ind)), Ok(()));
        // Without an internal address, the device name is what gets pseudonymised.
        let mut by_name = alert("203.0.113.9", "203.0.113.10");
        by_name.dst_ip = None;
        let ind = f.candidate(&by_name, None).unwrap();
        assert_eq!(ind.internal, Some(f.pseudonym(b"pump-ward-7")));
        // Configured internal block: both sides internal, nothing to share.
        assert_eq!(
            f.candidate(&alert("198.18.0.1", "10.1.2.3"), None),
            Err(Withheld::NothingExternal)
        );
    }

    #[test]
    fn product_indicator_needs_cves_and_public_names() {
        let f = filter();
        let dev = DeviceContext {
            product: Some(Product {
                vendor: "Acme".into(),
                model: "Infuse 3".into(),
                firmware: Some("2.1".into()),
            }),
            cves: vec!["CVE-2024-12345".into(), "not-a-cve".into()],
        };
        let ind = f
            .candidate(&alert("10.0.0.1", "10.0.0.2"), Some(&dev))
            .unwrap();
        assert!(matches!(ind.observable, Observable::Product(_)));
        assert_eq!(ind.cves, vec!["CVE-2024-12345".to_string()]);
        let leaky = DeviceContext {
            product: Some(Product {
                vendor: "Acme".into(),
                model: "Ward-7 pump".into(),
                firmware: None,
            }),
            cves: vec!["CVE-2024-1111".into()],
        };
        assert_eq!(
            f.candidate(&alert("10.0.0.1", "10.0.0.2"), Some(&leaky)),
            Err(Withheld::NothingExternal)
        );
    }

    #[test]
    fn gate_refuses_leaks() {
        let f = filter();
        let mut ind = f
            .candidate(&alert("203.0.113.9", "10.1.2.3"), None)
            .unwrap();
        ind.tlp = Tlp::Red;
        assert_eq!(f.check(&Item::Indicator(ind.clone())), Err(Violation::Red));
        ind.tlp = Tlp::Green;
        ind.observable = Observable::Ip("192.168.1.1".parse().unwrap());
        assert!(matches!(
            f.check(&Item::Indicator(ind.clone())),
            Err(Violation::InternalAddress { .. })
        ));
        ind.observable = Observable::Domain("pacs.chu.local".into());
        assert!(matches!(
            f.check(&Item::Indicator(ind.clone())),
            Err(Violation::PrivateName { .. })
        ));
        ind.observable = Observable::Url("http://10.0.0.5/upload".into());
        assert!(f.check(&Item::Indicator(ind.clone())).is_err());
        ind.observable = Observable::Domain("c2.example.com".into());
        ind.rule = "exfil-to-10.2.3.4".into();
        assert!(matches!(
            f.check(&Item::Indicator(ind.clone())),
            Err(Violation::InternalAddress { field: "rule" })
        ));
        ind.rule = "ward-7".into();
        assert!(matches!(
            f.check(&Item::Indicator(ind)),
            Err(Violation::PrivateName { field: "rule" })
        ));
    }

    #[test]
    fn statistics_need_k_and_get_noise() {
        let f = filter();
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let p = (Timestamp::from_secs(0), Timestamp::from_secs(1));
        assert_eq!(
            f.release(Metric::RamaScores, &[1, 2], 4, p, &mut rng),
            Err(Withheld::BelowK {
                contributors: 4,
                k: 5
            })
        );
        let a = f
            .release(Metric::RamaScores, &[100; 10], 1000, p, &mut rng)
            .unwrap();
        assert!(a.buckets.iter().any(|b| *b != 100.0), "noise was added");
        assert!(a.buckets.iter().all(|b| (b - 100.0).abs() < 30.0));
        assert!(
            a.buckets.iter().all(|b| b.fract() == 0.0),
            "counts stay integers: {:?}",
            a.buckets
        );
        assert_eq!(f.check(&Item::Aggregate(a)), Ok(()));
    }

    use rand::SeedableRng;
}
