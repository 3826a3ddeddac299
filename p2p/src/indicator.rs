//! What hospitals share: a STIX 2.1 subset as the project's own types.
//!
//! The types stay close to STIX (indicator with a pattern, sighting, vulnerability, observed
//! aggregate, TLP marking, validity window, confidence 0..=100) so export to a STIX bundle is a
//! mapping, not a translation; on the wire they travel as postcard, which is several times
//! smaller than STIX JSON.

use std::fmt;
use std::net::IpAddr;

use heir_model::{Category, Severity, Timestamp};
use serde::{Deserialize, Serialize};

use crate::tlp::Tlp;

/// Limits a received item must respect; they bound memory per item and keep free text short.
pub const MAX_TEXT: usize = 256;
pub const MAX_LIST: usize = 32;
pub const MAX_BUCKETS: usize = 256;

/// Content-derived id: the same observable in the same category gets the same id at every
/// hospital, which is what corroboration counts on.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IndicatorId(pub [u8; 16]);

/// Fixed-size ids: raw bytes in postcard, hex in JSON.
macro_rules! hex_serde {
    ($t:ident, $n:literal) => {
        impl Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                if s.is_human_readable() {
                    s.serialize_str(&hex::encode(self.0))
                } else {
                    self.0.serialize(s)
                }
            }
        }

        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                if d.is_human_readable() {
                    let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                    let mut out = [0u8; $n];
                    hex::decode_to_slice(s.as_bytes(), &mut out)
                        .map_err(serde::de::Error::custom)?;
                    Ok(Self(out))
                } else {
                    <[u8; $n]>::deserialize(d).map(Self)
                }
            }
        }
    };
}

hex_serde!(IndicatorId, 16);
hex_serde!(Pseudonym, 12);

impl IndicatorId {
    pub fn derive(observable: &Observable, category: Category) -> Self {
        let mut h = blake3::Hasher::new_derive_key("heir-mesh indicator id v1");
        h.update(&postcard::to_allocvec(observable).unwrap_or_default());
        h.update(category.slug().as_bytes());
        let mut id = [0u8; 16];
        id.copy_from_slice(&h.finalize().as_bytes()[..16]);
        Self(id)
    }

    /// As a STIX identifier, e.g. `indicator--xxxxxxxx-xxxx-4xxx-8xxx-xxxxxxxxxxxx`.
    pub fn stix(&self, kind: &str) -> String {
        let mut b = self.0;
        b[6] = (b[6] & 0x0f) | 0x40; // version 4 layout, as STIX ids are UUIDs
        b[8] = (b[8] & 0x3f) | 0x80;
        let h = hex::encode(b);
        format!(
            "{kind}--{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    }
}

impl fmt::Debug for IndicatorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IndicatorId({})", hex::encode(self.0))
    }
}

impl fmt::Display for IndicatorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// A product, as vendors and CVE feeds name it. Public information, never an asset tag.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Product {
    pub vendor: String,
    pub model: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firmware: Option<String>,
}

/// The thing an indicator points at. Only external, shareable observables exist here: the
/// privacy filter decides what may become one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Observable {
    Ip(IpAddr),
    Domain(String),
    Sha256([u8; 32]),
    Url(String),
    /// A vulnerable device model: vendor + model + firmware, with the CVEs it is exposed to.
    Product(Product),
}

impl Observable {
    /// The STIX 2.1 pattern matching this observable.
    pub fn stix_pattern(&self) -> String {
        fn q(s: &str) -> String {
            s.replace('\\', "\\\\").replace('\'', "\\'")
        }
        match self {
            Observable::Ip(IpAddr::V4(a)) => format!("[ipv4-addr:value = '{a}']"),
            Observable::Ip(IpAddr::V6(a)) => format!("[ipv6-addr:value = '{a}']"),
            Observable::Domain(d) => format!("[domain-name:value = '{}']", q(d)),
            Observable::Sha256(h) => format!("[file:hashes.'SHA-256' = '{}']", hex::encode(h)),
            Observable::Url(u) => format!("[url:value = '{}']", q(u)),
            Observable::Product(p) => {
                let mut s = format!(
                    "[software:vendor = '{}' AND software:name = '{}'",
                    q(&p.vendor),
                    q(&p.model)
                );
                if let Some(fw) = &p.firmware {
                    s.push_str(&format!(" AND software:version = '{}'", q(fw)));
                }
                s.push(']');
                s
            }
        }
    }

    /// Parses the patterns [`Observable::stix_pattern`] writes (a single comparison, or the
    /// software conjunction); anything richer is not part of the subset.
    pub fn from_stix_pattern(p: &str) -> Option<Observable> {
        let inner = p.trim().strip_prefix('[')?.strip_suffix(']')?;
        let mut fields = Vec::new();
        for part in inner.split(" AND ") {
            let (lhs, rhs) = part.split_once('=')?;
            let rhs = rhs.trim();
            let v = rhs.strip_prefix('\'')?.strip_suffix('\'')?;
            fields.push((
                lhs.trim().to_owned(),
                v.replace("\\'", "'").replace("\\\\", "\\"),
            ));
        }
        let get = |k: &str| fields.iter().find(|(f, _)| f == k).map(|(_, v)| v.clone());
        if fields.len() == 1 {
            let (k, v) = &fields[0];
            return match k.as_str() {
                "ipv4-addr:value" | "ipv6-addr:value" => v.parse().ok().map(Observable::Ip),
                "domain-name:value" => Some(Observable::Domain(v.clone())),
                "url:value" => Some(Observable::Url(v.clone())),
                "file:hashes.'SHA-256'" | "file:hashes.SHA-256" => {
                    let mut h = [0u8; 32];
                    hex::decode_to_slice(v, &mut h).ok()?;
                    Some(Observable::Sha256(h))
                }
                _ => None,
            };
        }
        Some(Observable::Product(Product {
            vendor: get("software:vendor")?,
            model: get("software:name")?,
            firmware: get("software:version"),
        }))
    }

    fn texts(&self) -> Vec<&str> {
        match self {
            Observable::Domain(s) | Observable::Url(s) => vec![s],
            Observable::Product(p) => {
                let mut v = vec![p.vendor.as_str(), p.model.as_str()];
                v.extend(p.firmware.as_deref());
                v
            }
            Observable::Ip(_) | Observable::Sha256(_) => vec![],
        }
    }
}

/// A keyed-hash stand-in for an internal host, so a hospital can tell its own reports about
/// the same host apart without the mesh learning which host it is.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Pseudonym(pub [u8; 12]);

impl fmt::Debug for Pseudonym {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pseudonym({})", hex::encode(self.0))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Indicator {
    pub id: IndicatorId,
    pub observable: Observable,
    pub category: Category,
    pub severity: Severity,
    /// STIX confidence, 0..=100, as the publishing hospital judged it.
    pub confidence: u8,
    pub valid_from: Timestamp,
    pub valid_until: Option<Timestamp>,
    pub tlp: Tlp,
    /// The detection rule that produced it (a public rule name, e.g. `net.port_scan`).
    pub rule: String,
    /// MITRE ATT&CK technique id.
    pub attack: Option<String>,
    /// Product of the targeted device, when known; never its name or address.
    pub target: Option<Product>,
    pub cves: Vec<String>,
    /// Pseudonym of the internal host involved, if any.
    pub internal: Option<Pseudonym>,
}

impl Indicator {
    pub fn new(
        observable: Observable,
        category: Category,
        severity: Severity,
        valid_from: Timestamp,
    ) -> Self {
        Self {
            id: IndicatorId::derive(&observable, category),
            observable,
            category,
            severity,
            confidence: 50,
            valid_from,
            valid_until: None,
            tlp: Tlp::Green,
            rule: String::new(),
            attack: None,
            target: None,
            cves: Vec::new(),
            internal: None,
        }
    }
}

/// "We saw it too": the cheapest corroboration a hospital can send.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sighting {
    pub indicator: IndicatorId,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    pub count: u32,
    pub tlp: Tlp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Vulnerability {
    pub cve: String,
    pub product: Product,
    pub description: String,
    pub tlp: Tlp,
}

/// What a noised statistic describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Histogram of RAMA risk scores over a hospital's devices, buckets of equal width on 0..=100.
    RamaScores,
    /// Alerts per category over the period, in [`Category::ALL`] order.
    AlertsByCategory,
}

/// An observed aggregate (STIX observed-data): a statistic that already went through
/// k-anonymity and discrete Laplace noise before it left its hospital.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Aggregate {
    pub metric: Metric,
    pub period_start: Timestamp,
    pub period_end: Timestamp,
    pub buckets: Vec<f64>,
    /// How many distinct subjects (devices, alerts) contributed; at least the k threshold.
    pub contributors: u32,
    /// The privacy budget spent on this release.
    pub epsilon: f64,
    pub tlp: Tlp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RetractionReason {
    FalsePositive,
    Withdrawn,
}

/// The publisher takes an indicator back, or a hospital reports it as a false positive. Both
/// feed reputation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Retraction {
    pub indicator: IndicatorId,
    pub reason: RetractionReason,
    pub tlp: Tlp,
}

/// One shareable item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Item {
    Indicator(Indicator),
    Sighting(Sighting),
    Vulnerability(Vulnerability),
    Aggregate(Aggregate),
    Retraction(Retraction),
}

/// A received item broke the schema's limits.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Invalid {
    #[error("field `{0}` is longer than {MAX_TEXT} bytes")]
    TextTooLong(&'static str),
    #[error("field `{0}` has more than {1} entries")]
    ListTooLong(&'static str, usize),
    #[error("confidence {0} is above 100")]
    Confidence(u8),
    #[error("valid_until is before valid_from")]
    ValidityWindow,
    #[error("aggregate value {0} is not a finite number")]
    NotFinite(f64),
    #[error("indicator id does not match its observable and category")]
    IdMismatch,
    #[error("epsilon {0} is not a positive finite number")]
    Epsilon(f64),
}

impl Item {
    pub fn tlp(&self) -> Tlp {
        match self {
            Item::Indicator(i) => i.tlp,
            Item::Sighting(s) => s.tlp,
            Item::Vulnerability(v) => v.tlp,
            Item::Aggregate(a) => a.tlp,
            Item::Retraction(r) => r.tlp,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Item::Indicator(_) => "indicator",
            Item::Sighting(_) => "sighting",
            Item::Vulnerability(_) => "vulnerability",
            Item::Aggregate(_) => "aggregate",
            Item::Retraction(_) => "retraction",
        }
    }

    /// Schema limits every received item must meet before it is stored.
    pub fn check(&self) -> Result<(), Invalid> {
        fn text(name: &'static str, s: &str) -> Result<(), Invalid> {
            if s.len() > MAX_TEXT {
                Err(Invalid::TextTooLong(name))
            } else {
                Ok(())
            }
        }
        fn product(p: &Product) -> Result<(), Invalid> {
            text("vendor", &p.vendor)?;
            text("model", &p.model)?;
            p.firmware
                .as_deref()
                .map_or(Ok(()), |f| text("firmware", f))
        }
        match self {
            Item::Indicator(i) => {
                for t in i.observable.texts() {
                    text("observable", t)?;
                }
                text("rule", &i.rule)?;
                if let Some(a) = &i.attack {
                    text("attack", a)?;
                }
                if let Some(p) = &i.target {
                    product(p)?;
                }
                if i.cves.len() > MAX_LIST {
                    return Err(Invalid::ListTooLong("cves", MAX_LIST));
                }
                for c in &i.cves {
                    text("cves", c)?;
                }
                if i.confidence > 100 {
                    return Err(Invalid::Confidence(i.confidence));
                }
                if i.valid_until.is_some_and(|u| u < i.valid_from) {
                    return Err(Invalid::ValidityWindow);
                }
                if IndicatorId::derive(&i.observable, i.category) != i.id {
                    return Err(Invalid::IdMismatch);
                }
                Ok(())
            }
            Item::Sighting(_) | Item::Retraction(_) => Ok(()),
            Item::Vulnerability(v) => {
                text("cve", &v.cve)?;
                text("description", &v.description)?;
                product(&v.product)
            }
            Item::Aggregate(a) => {
                if a.buckets.len() > MAX_BUCKETS {
                    return Err(Invalid::ListTooLong("buckets", MAX_BUCKETS));
                }
                if let Some(x) = a.buckets.iter().find(|x| !x.is_finite()) {
                    return Err(Invalid::NotFinite(*x));
                }
                if !(a.epsilon.is_finite() && a.epsilon > 0.0) {
                    return Err(Invalid::Epsilon(a.epsilon));
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_round_trip() {
        let obs = [
            Observable::Ip("203.0.113.7".parse().unwrap()),
            Observable::Ip("2001:db8::1".parse().unwrap()),
            Observable::Domain("evil.example".into()),
            Observable::Url("http://evil.example/a'b".into()),
            Observable::Sha256([7; 32]),
            Observable::Product(Product {
                vendor: "Acme".into(),
                model: "Pump 3".into(),
                firmware: Some("1.2".into()),
            }),
        ];
        for o in obs {
            let p = o.stix_pattern();
            assert_eq!(Observable::from_stix_pattern(&p), Some(o), "{p}");
        }
        assert_eq!(Observable::from_stix_pattern("[process:name = 'x']"), None);
        assert_eq!(
            Observable::from_stix_pattern("ipv4-addr:value = '1.2.3.4'"),
            None
        );
    }

    #[test]
    fn ids_depend_on_content_only() {
        let o = Observable::Domain("c2.example".into());
        let a = Indicator::new(
            o.clone(),
            Category::C2Beacon,
            Severity::High,
            Timestamp::from_secs(1),
        );
        let b = Indicator::new(
            o,
            Category::C2Beacon,
            Severity::Low,
            Timestamp::from_secs(99),
        );
        assert_eq!(a.id, b.id);
        let c = Indicator::new(
            Observable::Domain("c2.example".into()),
            Category::Exfiltration,
            Severity::High,
            Timestamp::from_secs(1),
        );
        assert_ne!(a.id, c.id);
        assert!(a.id.stix("indicator").starts_with("indicator--"));
    }

    #[test]
    fn ids_are_hex_in_json_and_bytes_in_postcard() {
        let id = IndicatorId([0xab; 16]);
        assert_eq!(
            serde_json::to_string(&id).unwrap(),
            format!("\"{}\"", "ab".repeat(16))
        );
        assert_eq!(
            serde_json::from_str::<IndicatorId>(&serde_json::to_string(&id).unwrap()).unwrap(),
            id
        );
        assert_eq!(postcard::to_allocvec(&id).unwrap().len(), 16);
        assert!(serde_json::from_str::<IndicatorId>("\"zz\"").is_err());
    }

    #[test]
    fn check_enforces_limits() {
        let mut i = Indicator::new(
            Observable::Domain("x.example".into()),
            Category::C2Beacon,
            Severity::High,
            Timestamp::from_secs(10),
        );
        assert_eq!(Item::Indicator(i.clone()).check(), Ok(()));
        i.confidence = 101;
        assert_eq!(
            Item::Indicator(i.clone()).check(),
            Err(Invalid::Confidence(101))
        );
        i.confidence = 50;
        i.rule = "r".repeat(MAX_TEXT + 1);
        assert_eq!(
            Item::Indicator(i.clone()).check(),
            Err(Invalid::TextTooLong("rule"))
        );
        i.rule.clear();
        i.category = Category::Ransomware;
        assert_eq!(Item::Indicator(i).check(), Err(Invalid::IdMismatch));
    }
}
