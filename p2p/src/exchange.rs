//! Export and import: the knowledge base as a STIX 2.1 bundle or a MISP feed event, and
//! either read back (`heir export stix|misp`, `heir import FILE`).
//!
//! Only the subset heir shares is mapped; heir's own category and severity travel as
//! `x_heir_*` custom properties (STIX) or tags (MISP) so a round trip loses nothing.
//! Import yields [`Item`]s: the caller decides whether to watch for them locally or publish
//! them, in which case they pass the privacy filter like anything else.

use heir_model::{Category, Severity, Timestamp};
use serde::{Deserialize, Serialize};

use crate::indicator::{Aggregate, Indicator, Item, Metric, Observable, Product, Vulnerability};
use crate::knowledge::Entry;
use crate::tlp::Tlp;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum Error {
    #[error("not JSON: {0}")]
    Json(String),
    #[error(
        "neither a STIX 2.1 bundle (\"type\": \"bundle\") nor a MISP event ({{\"Event\": ...}})"
    )]
    UnknownFormat,
    #[error("{at}: {reason}")]
    Object { at: String, reason: String },
}

fn ts(t: Timestamp) -> String {
    t.to_rfc3339()
}

fn random_uuid() -> String {
    crate::indicator::IndicatorId(rand::random()).stix("x")[3..].to_owned()
}

// ---------------------------------------------------------------- STIX 2.1

#[derive(Debug, Serialize, Deserialize)]
struct Bundle {
    #[serde(rename = "type")]
    kind: String,
    id: String,
    objects: Vec<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ExternalReference {
    source_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    external_id: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct StixIndicator {
    #[serde(rename = "type")]
    kind: String,
    spec_version: String,
    id: String,
    created: String,
    modified: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    indicator_types: Vec<String>,
    pattern: String,
    pattern_type: String,
    valid_from: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    valid_until: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    confidence: Option<u8>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    object_marking_refs: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    external_references: Vec<ExternalReference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    x_heir_category: Option<Category>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    x_heir_severity: Option<Severity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    x_heir_rule: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    x_heir_hospitals: Option<usize>,
}

#[derive(Debug, Serialize, Deserialize)]
struct StixSighting {
    #[serde(rename = "type")]
    kind: String,
    spec_version: String,
    id: String,
    created: String,
    modified: String,
    sighting_of_ref: String,
    count: u64,
    first_seen: String,
    last_seen: String,
    object_marking_refs: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct StixVulnerability {
    #[serde(rename = "type")]
    kind: String,
    spec_version: String,
    id: String,
    created: String,
    modified: String,
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    external_references: Vec<ExternalReference>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    object_marking_refs: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    x_heir_product: Option<Product>,
}

/// Custom STIX object for a noised statistic: STIX observed-data must reference observables,
/// which a histogram does not have.
const AGGREGATE_TYPE: &str = "x-heir-aggregate";

#[derive(Debug, Serialize, Deserialize)]
struct StixAggregate {
    #[serde(rename = "type")]
    kind: String,
    spec_version: String,
    id: String,
    created: String,
    modified: String,
    metric: Metric,
    first_observed: String,
    last_observed: String,
    /// Contributors (devices or alerts), at least the k-anonymity threshold.
    number_observed: u32,
    buckets: Vec<f64>,
    epsilon: f64,
    #[serde(default)]
    object_marking_refs: Vec<String>,
}

fn tlp_of(refs: &[String]) -> Tlp {
    refs.iter()
        .find_map(|r| Tlp::from_stix_marking_id(r))
        .unwrap_or(Tlp::Amber)
}

/// The indicators (and what the consortium said about them) as a STIX 2.1 bundle.
pub fn to_stix(
    entries: &[Entry],
    vulnerabilities: &[Vulnerability],
    aggregates: &[Aggregate],
    now: Timestamp,
) -> String {
    let mut objects = Vec::new();
    for e in entries {
        let i = &e.indicator;
        let mut refs: Vec<ExternalReference> = i
            .attack
            .iter()
            .map(|a| ExternalReference {
                source_name: "mitre-attack".into(),
                external_id: Some(a.clone()),
            })
            .collect();
        refs.extend(i.cves.iter().map(|c| ExternalReference {
            source_name: "cve".into(),
            external_id: Some(c.clone()),
        }));
        let id = i.id.stix("indicator");
        let si = StixIndicator {
            kind: "indicator".into(),
            spec_version: "2.1".into(),
            id: id.clone(),
            created: ts(e.first_seen),
            modified: ts(e.last_seen),
            name: Some(format!("{} ({})", i.category, i.severity)),
            indicator_types: vec!["malicious-activity".into()],
            pattern: i.observable.stix_pattern(),
            pattern_type: "stix".into(),
            valid_from: ts(i.valid_from),
            valid_until: i.valid_until.map(ts),
            confidence: Some((e.confidence * 100.0).round().clamp(0.0, 100.0) as u8),
            object_marking_refs: vec![i.tlp.stix_marking_id().into()],
            external_references: refs,
            x_heir_category: Some(i.category),
            x_heir_severity: Some(i.severity),
            x_heir_rule: (!i.rule.is_empty()).then(|| i.rule.clone()),
            x_heir_hospitals: Some(e.hospitals()),
        };
        objects.push(serde_json::to_value(si).expect("serialises"));
        if e.sightings > 0 {
            let s = StixSighting {
                kind: "sighting".into(),
                spec_version: "2.1".into(),
                id: i.id.stix("sighting"),
                created: ts(e.first_seen),
                modified: ts(e.last_seen),
                sighting_of_ref: id,
                count: e.sightings,
                first_seen: ts(e.first_seen),
                last_seen: ts(e.last_seen),
                object_marking_refs: vec![i.tlp.stix_marking_id().into()],
            };
            objects.push(serde_json::to_value(s).expect("serialises"));
        }
    }
    for v in vulnerabilities {
        let id = crate::indicator::IndicatorId::derive(
            &Observable::Product(v.product.clone()),
            Category::Anomaly,
        )
        .stix("vulnerability");
        let sv = StixVulnerability {
            kind: "vulnerability".into(),
            spec_version: "2.1".into(),
            id,
            created: ts(now),
            modified: ts(now),
            name: v.cve.clone(),
            description: v.description.clone(),
            external_references: vec![ExternalReference {
                source_name: "cve".into(),
                external_id: Some(v.cve.clone()),
            }],
            object_marking_refs: vec![v.tlp.stix_marking_id().into()],
            x_heir_product: Some(v.product.clone()),
        };
        objects.push(serde_json::to_value(sv).expect("serialises"));
    }
    for a in aggregates {
        let sa = StixAggregate {
            kind: AGGREGATE_TYPE.into(),
            spec_version: "2.1".into(),
            id: format!("{AGGREGATE_TYPE}--{}", random_uuid()),
            created: ts(now),
            modified: ts(now),
            metric: a.metric,
            first_observed: ts(a.period_start),
            last_observed: ts(a.period_end),
            number_observed: a.contributors,
            buckets: a.buckets.clone(),
            epsilon: a.epsilon,
            object_marking_refs: vec![a.tlp.stix_marking_id().into()],
        };
        objects.push(serde_json::to_value(sa).expect("serialises"));
    }
    let bundle = Bundle {
        kind: "bundle".into(),
        id: format!("bundle--{}", random_uuid()),
        objects,
    };
    serde_json::to_string_pretty(&bundle).expect("serialises")
}

fn parse_ts(at: &str, field: &str, s: &str) -> Result<Timestamp, Error> {
    Timestamp::parse_rfc3339(s).map_err(|e| Error::Object {
        at: format!("{at}.{field}"),
        reason: format!("`{s}`: {e}"),
    })
}

fn from_stix(bundle: Bundle) -> Result<Vec<Item>, Error> {
    let mut items = Vec::new();
    for (n, obj) in bundle.objects.into_iter().enumerate() {
        let at = format!("objects[{n}]");
        let kind = obj
            .get("type")
            .and_then(|t| t.as_str())
            .unwrap_or_default()
            .to_owned();
        let bad = |reason: String| Error::Object {
            at: at.clone(),
            reason,
        };
        match kind.as_str() {
            "indicator" => {
                let si: StixIndicator =
                    serde_json::from_value(obj).map_err(|e| bad(e.to_string()))?;
                if si.pattern_type != "stix" {
                    return Err(bad(format!(
                        "pattern_type `{}` is not supported (only stix)",
                        si.pattern_type
                    )));
                }
                let observable = Observable::from_stix_pattern(&si.pattern).ok_or_else(|| {
                    bad(format!(
                        "pattern `{}` is outside the supported subset",
                        si.pattern
                    ))
                })?;
                let category = si.x_heir_category.unwrap_or(Category::KnownIndicator);
                let mut ind = Indicator::new(
                    observable,
                    category,
                    si.x_heir_severity.unwrap_or(Severity::Medium),
                    parse_ts(&at, "valid_from", &si.valid_from)?,
                );
                ind.valid_until = si
                    .valid_until
                    .as_deref()
                    .map(|v| parse_ts(&at, "valid_until", v))
                    .transpose()?;
                ind.confidence = si.confidence.unwrap_or(50).min(100);
                ind.tlp = tlp_of(&si.object_marking_refs);
                ind.rule = si.x_heir_rule.unwrap_or_default();
                for r in si.external_references {
                    match (r.source_name.as_str(), r.external_id) {
                        ("mitre-attack", Some(id)) => ind.attack = Some(id),
                        ("cve", Some(id)) => ind.cves.push(id),
                        _ => {}
                    }
                }
                let item = Item::Indicator(ind);
                item.check().map_err(|e| bad(e.to_string()))?;
                items.push(item);
            }
            "vulnerability" => {
                let sv: StixVulnerability =
                    serde_json::from_value(obj).map_err(|e| bad(e.to_string()))?;
                let product = sv.x_heir_product.unwrap_or(Product {
                    vendor: String::new(),
                    model: String::new(),
                    firmware: None,
                });
                let item = Item::Vulnerability(Vulnerability {
                    cve: sv.name,
                    product,
                    description: sv.description,
                    tlp: tlp_of(&sv.object_marking_refs),
                });
                item.check().map_err(|e| bad(e.to_string()))?;
                items.push(item);
            }
            AGGREGATE_TYPE => {
                let sa: StixAggregate =
                    serde_json::from_value(obj).map_err(|e| bad(e.to_string()))?;
                let item = Item::Aggregate(Aggregate {
                    metric: sa.metric,
                    period_start: parse_ts(&at, "first_observed", &sa.first_observed)?,
                    period_end: parse_ts(&at, "last_observed", &sa.last_observed)?,
                    buckets: sa.buckets,
                    contributors: sa.number_observed,
                    epsilon: sa.epsilon,
                    tlp: tlp_of(&sa.object_marking_refs),
                });
                item.check().map_err(|e| bad(e.to_string()))?;
                items.push(item);
            }
            // Sightings refer to indicators by STIX id and carry no observable of their own;
            // marking definitions and other objects are outside the subset.
            _ => {}
        }
    }
    Ok(items)
}

// ---------------------------------------------------------------- MISP

#[derive(Debug, Serialize, Deserialize)]
struct MispFeed {
    #[serde(rename = "Event")]
    event: MispEvent,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct MispTag {
    name: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct MispEvent {
    uuid: String,
    info: String,
    date: String,
    timestamp: String,
    #[serde(default)]
    threat_level_id: String,
    #[serde(default)]
    analysis: String,
    #[serde(default)]
    distribution: String,
    #[serde(rename = "Tag", default)]
    tags: Vec<MispTag>,
    #[serde(rename = "Attribute", default)]
    attributes: Vec<MispAttribute>,
}

#[derive(Debug, Serialize, Deserialize)]
struct MispAttribute {
    uuid: String,
    #[serde(rename = "type")]
    kind: String,
    category: String,
    value: String,
    #[serde(default)]
    to_ids: bool,
    timestamp: String,
    #[serde(default)]
    comment: String,
    #[serde(rename = "Tag", default)]
    tags: Vec<MispTag>,
}

fn misp_type(o: &Observable) -> Option<(&'static str, &'static str, String)> {
    Some(match o {
        Observable::Ip(ip) => ("ip-src", "Network activity", ip.to_string()),
        Observable::Domain(d) => ("domain", "Network activity", d.clone()),
        Observable::Url(u) => ("url", "Network activity", u.clone()),
        Observable::Sha256(h) => ("sha256", "Payload delivery", hex::encode(h)),
        Observable::Product(_) => return None,
    })
}

/// The indicators as one MISP feed event (the `<uuid>.json` file of a MISP feed).
pub fn to_misp(entries: &[Entry], vulnerabilities: &[Vulnerability], now: Timestamp) -> String {
    let secs = (now.as_nanos() / 1_000_000_000).to_string();
    let mut attributes = Vec::new();
    let mut tlp_max = Tlp::Clear;
    for e in entries {
        let i = &e.indicator;
        tlp_max = tlp_max.max(i.tlp);
        let mut tags = vec![
            MispTag {
                name: i.tlp.misp_tag(),
            },
            MispTag {
                name: format!("heir:category=\"{}\"", i.category),
            },
            MispTag {
                name: format!("heir:severity=\"{}\"", i.severity),
            },
            MispTag {
                name: format!(
                    "heir:confidence=\"{}\"",
                    (e.confidence * 100.0).round() as u8
                ),
            },
        ];
        if let Some(a) = &i.attack {
            tags.push(MispTag {
                name: format!("mitre-attack:technique=\"{a}\""),
            });
        }
        match misp_type(&i.observable) {
            Some((kind, category, value)) => attributes.push(MispAttribute {
                uuid: i.id.stix("x")[3..].to_owned(),
                kind: kind.into(),
                category: category.into(),
                value,
                to_ids: true,
                timestamp: ((i.valid_from.as_nanos()) / 1_000_000_000).to_string(),
                comment: i.rule.clone(),
                tags,
            }),
            None => {
                for c in &i.cves {
                    attributes.push(MispAttribute {
                        uuid: random_uuid(),
                        kind: "vulnerability".into(),
                        category: "External analysis".into(),
                        value: c.clone(),
                        to_ids: false,
                        timestamp: secs.clone(),
                        comment: i.rule.clone(),
                        tags: tags.clone(),
                    });
                }
            }
        }
    }
    for v in vulnerabilities {
        tlp_max = tlp_max.max(v.tlp);
        attributes.push(MispAttribute {
            uuid: random_uuid(),
            kind: "vulnerability".into(),
            category: "External analysis".into(),
            value: v.cve.clone(),
            to_ids: false,
            timestamp: secs.clone(),
            comment: format!("{} {}", v.product.vendor, v.product.model),
            tags: vec![MispTag {
                name: v.tlp.misp_tag(),
            }],
        });
    }
    let event = MispEvent {
        uuid: random_uuid(),
        info: "heir observatory: indicators shared by the consortium".into(),
        date: now.to_rfc3339()[..10].to_owned(),
        timestamp: secs,
        threat_level_id: "2".into(),
        analysis: "2".into(),
        distribution: "0".into(),
        tags: vec![MispTag {
            name: tlp_max.misp_tag(),
        }],
        attributes,
    };
    serde_json::to_string_pretty(&MispFeed { event }).expect("serialises")
}

fn tag_value<'a>(tags: &'a [MispTag], key: &str) -> Option<&'a str> {
    tags.iter().find_map(|t| {
        t.name
            .strip_prefix(key)?
            .strip_prefix("=\"")?
            .strip_suffix('"')
    })
}

fn from_misp(feed: MispFeed) -> Result<Vec<Item>, Error> {
    let event_tlp = feed
        .event
        .tags
        .iter()
        .find_map(|t| t.name.parse::<Tlp>().ok());
    let mut items = Vec::new();
    for (n, a) in feed.event.attributes.into_iter().enumerate() {
        let at = format!("Event.Attribute[{n}]");
        let bad = |reason: String| Error::Object {
            at: at.clone(),
            reason,
        };
        let observable = match a.kind.as_str() {
            "ip-src" | "ip-dst" => Observable::Ip(
                a.value
                    .parse()
                    .map_err(|_| bad(format!("`{}` is not an IP address", a.value)))?,
            ),
            "domain" | "hostname" => Observable::Domain(a.value.clone()),
            "url" => Observable::Url(a.value.clone()),
            "sha256" => {
                let mut h = [0u8; 32];
                hex::decode_to_slice(&a.value, &mut h)
                    .map_err(|_| bad(format!("`{}` is not a SHA-256 hash", a.value)))?;
                Observable::Sha256(h)
            }
            "vulnerability" => {
                let (vendor, model) = a.comment.split_once(' ').unwrap_or((&a.comment, ""));
                items.push(Item::Vulnerability(Vulnerability {
                    cve: a.value.clone(),
                    product: Product {
                        vendor: vendor.into(),
                        model: model.into(),
                        firmware: None,
                    },
                    description: String::new(),
                    tlp: a
                        .tags
                        .iter()
                        .find_map(|t| t.name.parse().ok())
                        .or(event_tlp)
                        .unwrap_or(Tlp::Amber),
                }));
                continue;
            }
            _ => continue,
        };
        let secs: u64 = a
            .timestamp
            .parse()
            .map_err(|_| bad(format!("timestamp `{}` is not Unix seconds", a.timestamp)))?;
        let category = tag_value(&a.tags, "heir:category")
            .and_then(|c| c.parse().ok())
            .unwrap_or(Category::KnownIndicator);
        let severity = match tag_value(&a.tags, "heir:severity") {
            Some("info") => Severity::Info,
            Some("low") => Severity::Low,
            Some("high") => Severity::High,
            Some("critical") => Severity::Critical,
            _ => Severity::Medium,
        };
        let mut ind = Indicator::new(observable, category, severity, Timestamp::from_secs(secs));
        ind.tlp = a
            .tags
            .iter()
            .find_map(|t| t.name.parse().ok())
            .or(event_tlp)
            .unwrap_or(Tlp::Amber);
        ind.confidence = tag_value(&a.tags, "heir:confidence")
            .and_then(|c| c.parse().ok())
            .unwrap_or(50)
            .min(100);
        ind.attack = tag_value(&a.tags, "mitre-attack:technique").map(str::to_owned);
        ind.rule = a.comment;
        let item = Item::Indicator(ind);
        item.check().map_err(|e| bad(e.to_string()))?;
        items.push(item);
    }
    Ok(items)
}

/// A file that could not be imported.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("{path}")]
    Read {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("{path}")]
    Parse {
        path: std::path::PathBuf,
        source: Error,
    },
}

/// `heir import FILE`: reads a STIX 2.1 bundle or MISP event from `path`.
pub fn import_file(path: &std::path::Path) -> Result<Vec<Item>, FileError> {
    let text = std::fs::read_to_string(path).map_err(|source| FileError::Read {
        path: path.to_owned(),
        source,
    })?;
    import(&text).map_err(|source| FileError::Parse {
        path: path.to_owned(),
        source,
    })
}

/// Reads a STIX 2.1 bundle or a MISP event, whichever `text` is.
pub fn import(text: &str) -> Result<Vec<Item>, Error> {
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| Error::Json(e.to_string()))?;
    if v.get("type").and_then(|t| t.as_str()) == Some("bundle") {
        let b: Bundle = serde_json::from_value(v).map_err(|e| Error::Object {
            at: "bundle".into(),
            reason: e.to_string(),
        })?;
        return from_stix(b);
    }
    if v.get("Event").is_some() {
        let f: MispFeed = serde_json::from_value(v).map_err(|e| Error::Object {
            at: "Event".into(),
            reason: e.to_string(),
        })?;
        return from_misp(f);
    }
    Err(Error::UnknownFormat)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::knowledge::Report;

    fn entry(observable: Observable) -> Entry {
        let mut i = Indicator::new(
            observable,
            Category::Ransomware,
            Severity::Critical,
            Timestamp::from_secs(1_700_000_000),
        );
        i.valid_until = Some(Timestamp::from_secs(1_700_600_000));
        i.confidence = 90;
        i.tlp = Tlp::Green;
        i.rule = "proc.ransomware".into();
        i.attack = Some("T1486".into());
        i.cves = vec!["CVE-2023-1234".into()];
        Entry {
            indicator: i,
            reports: vec![Report {
                hospital: "A".into(),
                confidence: 0.9,
                at: Timestamp::from_secs(1_700_000_000),
            }],
            sightings: 2,
            false_positive: BTreeSet::new(),
            withdrawn: false,
            confidence: 0.9,
            first_seen: Timestamp::from_secs(1_700_000_000),
            last_seen: Timestamp::from_secs(1_700_000_100),
        }
    }

    fn entries() -> Vec<Entry> {
        vec![
            entry(Observable::Ip("203.0.113.5".parse().unwrap())),
            entry(Observable::Domain("locker.example.net".into())),
            entry(Observable::Sha256([0xab; 32])),
            entry(Observable::Url("https://drop.example.net/x".into())),
        ]
    }

    fn vuln() -> Vulnerability {
        Vulnerability {
            cve: "CVE-2024-0001".into(),
            product: Product {
                vendor: "Acme".into(),
                model: "Infuse".into(),
                firmware: Some("1.0".into()),
            },
            description: "hard-coded credentials".into(),
            tlp: Tlp::Green,
        }
    }

    #[test]
    fn stix_round_trip() {
        let now = Timestamp::from_secs(1_700_000_200);
        let agg = Aggregate {
            metric: Metric::RamaScores,
            period_start: Timestamp::from_secs(1_699_000_000),
            period_end: Timestamp::from_secs(1_700_000_000),
            buckets: vec![3.5, 10.25, -0.5],
            contributors: 14,
            epsilon: 1.0,
            tlp: Tlp::Green,
        };
        let text = to_stix(&entries(), &[vuln()], std::slice::from_ref(&agg), now);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["type"], "bundle");
        assert_eq!(v["objects"][0]["spec_version"], "2.1");
        assert_eq!(
            v["objects"][0]["pattern"],
            "[ipv4-addr:value = '203.0.113.5']"
        );
        assert_eq!(
            v["objects"][0]["object_marking_refs"][0],
            Tlp::Green.stix_marking_id()
        );
        let items = import(&text).unwrap();
        let inds: Vec<&Indicator> = items
            .iter()
            .filter_map(|i| {
                if let Item::Indicator(i) = i {
                    Some(i)
                } else {
                    None
                }
            })
            .collect();
        assert_eq!(inds.len(), 4);
        for (got, want) in inds.iter().zip(entries()) {
            assert_eq!(**got, want.indicator);
        }
        assert!(items.contains(&Item::Vulnerability(vuln())));
        assert!(items.contains(&Item::Aggregate(agg)));
    }

    #[test]
    fn misp_round_trip() {
        let text = to_misp(&entries(), &[vuln()], Timestamp::from_secs(1_700_000_200));
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["Event"]["Attribute"][0]["type"], "ip-src");
        let items = import(&text).unwrap();
        let inds: Vec<&Indicator> = items
            .iter()
            .filter_map(|i| {
                if let Item::Indicator(i) = i {
                    Some(i)
                } else {
                    None
                }
            })
            .collect();
        assert_eq!(inds.len(), 4);
        for (got, want) in inds.iter().zip(entries()) {
            assert_eq!(got.observable, want.indicator.observable);
            assert_eq!(got.category, Category::Ransomware);
            assert_eq!(got.severity, Severity::Critical);
            assert_eq!(got.tlp, Tlp::Green);
            assert_eq!(got.attack.as_deref(), Some("T1486"));
            assert_eq!(got.confidence, 90);
        }
        assert!(
            items
                .iter()
                .any(|i| matches!(i, Item::Vulnerability(v) if v.cve == "CVE-2024-0001"))
        );
    }

    #[test]
    fn files_are_named_in_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("feed.json");
        std::fs::write(
            &p,
            to_stix(&entries(), &[], &[], Timestamp::from_secs(1_700_000_000)),
        )
        .unwrap();
        assert_eq!(import_file(&p).unwrap().len(), 4);
        std::fs::write(
            &p,
            "{\"type\":\"bundle\",\"id\":\"b\",\"objects\":[{\"type\":\"indicator\"}]}",
        )
        .unwrap();
        let e = crate::report(&import_file(&p).unwrap_err());
        assert!(e.contains("feed.json") && e.contains("objects[0]"), "{e}");
        assert_eq!(e.matches("objects[0]").count(), 1, "the cause once: {e}");
        let e = crate::report(&import_file(&dir.path().join("missing.json")).unwrap_err());
        assert!(e.contains("missing.json"), "{e}");
    }

    #[test]
    fn bad_input_is_named() {
        assert!(matches!(import("{"), Err(Error::Json(_))));
        assert_eq!(import("{\"a\": 1}"), Err(Error::UnknownFormat));
        let bad = r#"{"type":"bundle","id":"bundle--1","objects":[{"type":"marking-definition"},{"type":"indicator","spec_version":"2.1","id":"indicator--1","created":"x","modified":"x","pattern":"[process:name = 'x']","pattern_type":"stix","valid_from":"2024-01-01T00:00:00Z"}]}"#;
        let e = import(bad).unwrap_err().to_string();
        assert!(e.starts_with("objects[1]") && e.contains("subset"), "{e}");
        let bad_ts = bad
            .replace("[process:name = 'x']", "[domain-name:value = 'a.example']")
            .replace("2024-01-01T00:00:00Z", "yesterday");
        let e = import(&bad_ts).unwrap_err().to_string();
        assert!(e.contains("objects[1].valid_from"), "{e}");
        let misp = r#"{"Event":{"uuid":"u","info":"i","date":"d","timestamp":"1","Attribute":[{"uuid":"a","type":"ip-dst","category":"c","value":"not-an-ip","timestamp":"1"}]}}"#;
        let e = import(misp).unwrap_err().to_string();
        assert!(
            e.contains("Event.Attribute[0]") && e.contains("not-an-ip"),
            "{e}"
        );
    }
}
