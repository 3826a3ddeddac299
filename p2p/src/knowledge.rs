//! The knowledge base: what this node knows of the consortium's indicators, and the log of
//! accepted envelopes that peers can backfill from.
//!
//! The log is kept on disk as an append-only file of length-prefixed, checksummed records, so
//! a crash loses at most the record being written and a damaged file is reported with its
//! offset, while every record before the damage is kept.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use heir_model::{Category, Timestamp};
use serde::Serialize;

use crate::indicator::{Aggregate, Indicator, IndicatorId, Item, RetractionReason, Vulnerability};
use crate::trust::{self, Reputation};
use crate::validate::Accepted;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}")]
    Io { path: PathBuf, source: io::Error },
    #[error(transparent)]
    Keystore(#[from] crate::keystore::Error),
    #[error(
        "{path}: damaged record at byte offset {offset}: {reason}; {kept} earlier records kept"
    )]
    Damaged {
        path: PathBuf,
        offset: u64,
        reason: String,
        kept: usize,
    },
}

/// One hospital's report of an indicator.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub hospital: String,
    /// Its confidence, 0..1.
    pub confidence: f64,
    pub at: Timestamp,
}

/// An indicator with everything the consortium said about it.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub indicator: Indicator,
    pub reports: Vec<Report>,
    pub sightings: u64,
    pub false_positive: BTreeSet<String>,
    pub withdrawn: bool,
    /// Corroborated confidence 0..1 (see [`trust::corroborate`]).
    pub confidence: f64,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
}

impl Entry {
    /// Distinct hospitals that reported or sighted it.
    pub fn hospitals(&self) -> usize {
        self.reports
            .iter()
            .map(|r| r.hospital.as_str())
            .collect::<HashSet<_>>()
            .len()
    }

    /// Whether the responder may act on it without asking: corroborated enough, not
    /// withdrawn, not reported as a false positive, still valid. Protected devices are the
    /// responder's to honour: this says nothing about the target.
    pub fn actionable(&self, policy: &trust::Config, now: Timestamp) -> bool {
        !self.withdrawn
            && self.false_positive.is_empty()
            && self.indicator.valid_until.is_none_or(|u| now < u)
            && self.hospitals() >= policy.act_min_hospitals
            && self.confidence >= policy.act_min_confidence
    }
}

/// What a newly accepted message changed.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    NewIndicator(IndicatorId),
    Corroborated {
        id: IndicatorId,
        hospitals: usize,
        confidence: f64,
    },
    Retracted(IndicatorId),
    Vulnerability(String),
    Aggregate,
    /// Stored for relaying and backfill, but not readable here (another sharing group).
    Opaque,
    Nothing,
}

/// A stored envelope.
#[derive(Debug, Clone)]
pub struct Record {
    pub received: Timestamp,
    pub bytes: Vec<u8>,
}

#[derive(Debug, Default)]
pub struct KnowledgeBase {
    entries: HashMap<IndicatorId, Entry>,
    vulnerabilities: BTreeMap<String, (Vulnerability, BTreeSet<String>)>,
    aggregates: Vec<(String, Aggregate)>,
    reputation: Reputation,
    log: VecDeque<Record>,
    log_ids: HashSet<[u8; 32]>,
    capacity: usize,
}

impl KnowledgeBase {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            ..Self::default()
        }
    }

    pub fn insert(&mut self, acc: &Accepted, received: Timestamp) -> Change {
        let key = *blake3::hash(&acc.bytes).as_bytes();
        if !self.log_ids.insert(key) {
            return Change::Nothing;
        }
        self.log.push_back(Record {
            received,
            bytes: acc.bytes.clone(),
        });
        while self.log.len() > self.capacity {
            if let Some(old) = self.log.pop_front() {
                self.log_ids.remove(blake3::hash(&old.bytes).as_bytes());
            }
        }
        let Some(item) = &acc.item else {
            return Change::Opaque;
        };
        let hospital = acc.hospital.clone();
        let at = acc.envelope.issued;
        match item {
            Item::Indicator(ind) => {
                let report = Report {
                    hospital: hospital.clone(),
                    confidence: f64::from(ind.confidence) / 100.0,
                    at,
                };
                self.add_report(ind.id, Some(ind), report)
            }
            Item::Sighting(s) => {
                let known = self.entries.contains_key(&s.indicator);
                if !known {
                    return Change::Nothing;
                }
                let confidence = self.entries[&s.indicator].indicator.confidence;
                if let Some(e) = self.entries.get_mut(&s.indicator) {
                    e.sightings += u64::from(s.count);
                }
                let report = Report {
                    hospital,
                    confidence: f64::from(confidence) / 100.0,
                    at: s.last_seen,
                };
                self.add_report(s.indicator, None, report)
            }
            Item::Retraction(r) => {
                let Some(e) = self.entries.get_mut(&r.indicator) else {
                    return Change::Nothing;
                };
                let publishers: Vec<String> =
                    e.reports.iter().map(|r| r.hospital.clone()).collect();
                let own = publishers.contains(&hospital);
                match (r.reason, own) {
                    (RetractionReason::Withdrawn, true) => {
                        e.reports.retain(|p| p.hospital != hospital);
                        e.withdrawn = e.reports.is_empty();
                        self.reputation.retracted(&hospital);
                    }
                    (RetractionReason::FalsePositive, _) => {
                        e.false_positive.insert(hospital.clone());
                        for p in publishers.iter().filter(|p| **p != hospital) {
                            self.reputation.false_positive(p);
                        }
                        if own {
                            e.reports.retain(|p| p.hospital != hospital);
                        }
                    }
                    (RetractionReason::Withdrawn, false) => return Change::Nothing,
                }
                self.recompute(r.indicator);
                Change::Retracted(r.indicator)
            }
            Item::Vulnerability(v) => {
                let e = self
                    .vulnerabilities
                    .entry(v.cve.clone())
                    .or_insert_with(|| (v.clone(), BTreeSet::new()));
                e.1.insert(hospital);
                Change::Vulnerability(v.cve.clone())
            }
            Item::Aggregate(a) => {
                // One release per hospital, metric and period: a newer one replaces it.
                self.aggregates.retain(|(h, old)| {
                    !(h == &hospital
                        && old.metric == a.metric
                        && old.period_start == a.period_start)
                });
                self.aggregates.push((hospital, a.clone()));
                Change::Aggregate
            }
        }
    }

    fn add_report(&mut self, id: IndicatorId, ind: Option<&Indicator>, report: Report) -> Change {
        let is_new = !self.entries.contains_key(&id);
        if is_new {
            let Some(ind) = ind else {
                return Change::Nothing;
            };
            self.entries.insert(
                id,
                Entry {
                    indicator: ind.clone(),
                    reports: Vec::new(),
                    sightings: 0,
                    false_positive: BTreeSet::new(),
                    withdrawn: false,
                    confidence: 0.0,
                    first_seen: report.at,
                    last_seen: report.at,
                },
            );
        }
        let e = self.entries.get_mut(&id).expect("inserted above");
        let newcomer = !e.reports.iter().any(|r| r.hospital == report.hospital);
        if newcomer && !is_new {
            for h in e
                .reports
                .iter()
                .map(|r| r.hospital.clone())
                .collect::<HashSet<_>>()
            {
                self.reputation.corroborated(&h);
            }
        }
        let e = self.entries.get_mut(&id).expect("inserted above");
        e.withdrawn = false;
        e.first_seen = e.first_seen.min(report.at);
        e.last_seen = e.last_seen.max(report.at);
        if let Some(ind) = ind
            && ind.valid_until > e.indicator.valid_until
        {
            e.indicator.valid_until = ind.valid_until;
        }
        e.reports.push(report);
        self.recompute(id);
        let e = &self.entries[&id];
        if is_new {
            Change::NewIndicator(id)
        } else {
            Change::Corroborated {
                id,
                hospitals: e.hospitals(),
                confidence: e.confidence,
            }
        }
    }

    fn recompute(&mut self, id: IndicatorId) {
        if let Some(e) = self.entries.get_mut(&id) {
            e.confidence = trust::corroborate(
                e.reports
                    .iter()
                    .map(|r| (r.hospital.as_str(), r.confidence)),
                &self.reputation,
            );
        }
    }

    pub fn get(&self, id: &IndicatorId) -> Option<&Entry> {
        self.entries.get(id)
    }

    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn log_len(&self) -> usize {
        self.log.len()
    }

    pub fn vulnerabilities(&self) -> impl Iterator<Item = (&Vulnerability, usize)> {
        self.vulnerabilities.values().map(|(v, h)| (v, h.len()))
    }

    pub fn aggregates(&self) -> &[(String, Aggregate)] {
        &self.aggregates
    }

    pub fn reputation(&self) -> &Reputation {
        &self.reputation
    }

    /// Envelopes received at or after `since`, oldest first, at most `limit`: what a peer that
    /// was away asks for.
    pub fn since(&self, since: Timestamp, limit: usize) -> Vec<Vec<u8>> {
        self.log
            .iter()
            .filter(|r| r.received >= since)
            .take(limit)
            .map(|r| r.bytes.clone())
            .collect()
    }

    pub fn latest_received(&self) -> Option<Timestamp> {
        self.log.back().map(|r| r.received)
    }

    /// Indicators per category.
    pub fn by_category(&self) -> BTreeMap<Category, usize> {
        let mut m = BTreeMap::new();
        for e in self.entries.values() {
            *m.entry(e.indicator.category).or_default() += 1;
        }
        m
    }
}

/// Re-validates stored records (signatures and membership, as of when they were issued) into
/// `kb`; returns a line for each record skipped.
pub(crate) fn restore(
    records: Vec<Record>,
    validator: &mut crate::validate::Validator,
    keys: &crate::group::Keyring,
    kb: &mut KnowledgeBase,
    path: &Path,
) -> Vec<String> {
    let mut skipped = Vec::new();
    for r in records {
        match validator.validate(&r.bytes, crate::validate::Origin::Store, keys) {
            Ok(acc) => {
                kb.insert(&acc, r.received);
            }
            Err(e) => skipped.push(format!(
                "{}: stored envelope skipped: {}",
                path.display(),
                crate::report(&e)
            )),
        }
    }
    skipped
}

/// A node's knowledge base read from its directory without starting the node, for
/// `heir indicators` and `heir export` while the agent is stopped. Records are checked again
/// as at start-up; warnings name anything skipped or damaged.
pub fn load(
    store: &crate::keystore::Keystore,
    capacity: usize,
) -> Result<(KnowledgeBase, Vec<String>), Error> {
    let membership = store.membership()?;
    let keys = store.keyring()?;
    let mut validator = crate::validate::Validator::new(
        membership.consortium,
        store.revocations()?,
        &trust::Config::default(),
        std::sync::Arc::new(crate::clock::SystemClock),
    );
    let path = store.path("knowledge.log");
    let mut warnings = Vec::new();
    let mut kb = KnowledgeBase::new(capacity);
    if !path.exists() {
        return Ok((kb, warnings));
    }
    let (_, records, damage) = Log::open(&path)?;
    warnings.extend(damage.map(|d| d.to_string()));
    warnings.extend(restore(records, &mut validator, &keys, &mut kb, &path));
    Ok((kb, warnings))
}

const MAGIC: &[u8; 8] = b"HEIRKB1\n";

/// The append-only on-disk log of accepted envelopes.
#[derive(Debug)]
pub struct Log {
    path: PathBuf,
    file: File,
}

impl Log {
    /// Opens (or creates) the log and returns the records it holds. A damaged tail is moved
    /// aside to `<file>.damaged` and reported; the good records are rewritten and kept.
    pub fn open(path: &Path) -> Result<(Self, Vec<Record>, Option<Error>), Error> {
        let io = |source| Error::Io {
            path: path.to_owned(),
            source,
        };
        let mut data = Vec::new();
        match File::open(path) {
            Ok(mut f) => {
                f.read_to_end(&mut data).map_err(io)?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(e)),
        }
        let (records, damage) = Self::parse(path, &data);
        if damage.is_some() {
            let aside = path.with_extension("damaged");
            std::fs::write(&aside, &data).map_err(io)?;
            let mut fresh = MAGIC.to_vec();
            for r in &records {
                fresh.extend(Self::frame(r));
            }
            crate::keystore::write_private(path, &fresh)?;
        } else if data.is_empty() {
            crate::keystore::write_private(path, MAGIC)?;
        }
        let file = OpenOptions::new().append(true).open(path).map_err(io)?;
        Ok((
            Self {
                path: path.to_owned(),
                file,
            },
            records,
            damage,
        ))
    }

    fn frame(r: &Record) -> Vec<u8> {
        let mut out = Vec::with_capacity(r.bytes.len() + 28);
        out.extend_from_slice(&(r.bytes.len() as u32).to_le_bytes());
        out.extend_from_slice(&r.received.as_nanos().to_le_bytes());
        out.extend_from_slice(&blake3::hash(&r.bytes).as_bytes()[..16]);
        out.extend_from_slice(&r.bytes);
        out
    }

    fn parse(path: &Path, data: &[u8]) -> (Vec<Record>, Option<Error>) {
        let mut records = Vec::new();
        if data.is_empty() {
            return (records, None);
        }
        let damaged = |offset: usize, reason: &str, kept: usize| Error::Damaged {
            path: path.to_owned(),
            offset: offset as u64,
            reason: reason.to_owned(),
            kept,
        };
        if !data.starts_with(MAGIC) {
            return (
                records,
                Some(damaged(0, "not a heir knowledge-base log (bad header)", 0)),
            );
        }
        let mut at = MAGIC.len();
        while at < data.len() {
            let Some(head) = data.get(at..at + 28) else {
                return (
                    records.clone(),
                    Some(damaged(at, "truncated record header", records.len())),
                );
            };
            let len = u32::from_le_bytes(head[0..4].try_into().expect("4 bytes")) as usize;
            let received =
                Timestamp::from_nanos(u64::from_le_bytes(head[4..12].try_into().expect("8 bytes")));
            let Some(body) = data.get(at + 28..at + 28 + len) else {
                return (
                    records.clone(),
                    Some(damaged(at, "truncated record", records.len())),
                );
            };
            if blake3::hash(body).as_bytes()[..16] != head[12..28] {
                return (
                    records.clone(),
                    Some(damaged(at, "checksum mismatch", records.len())),
                );
            }
            records.push(Record {
                received,
                bytes: body.to_vec(),
            });
            at += 28 + len;
        }
        (records, None)
    }

    pub fn append(&mut self, r: &Record) -> Result<(), Error> {
        self.file
            .write_all(&Self::frame(r))
            .and_then(|()| self.file.flush())
            .map_err(|source| Error::Io {
                path: self.path.clone(),
                source,
            })
    }
}

#[cfg(test)]
mod tests {
    use heir_model::Severity;

    use super::*;
    use crate::identity::Identity;
    use crate::indicator::{Observable, Retraction};
    use crate::membership::{ConsortiumKey, Terms};
    use crate::tlp::Tlp;
    use crate::wire::Envelope;

    fn accepted(ck: &ConsortiumKey, hospital: &str, item: Item) -> Accepted {
        let id = Identity::generate();
        let cred = ck.issue(
            &id.join_request(),
            Terms {
                hospital: hospital.into(),
                groups: vec![],
                serial: 1,
                issued: Timestamp::from_secs(0),
                expires: Timestamp::from_secs(u64::MAX / 2_000_000_000),
            },
        );
        let env = Envelope::clear(&id, &cred, Timestamp::from_secs(100), item.clone());
        Accepted {
            bytes: env.encode(),
            envelope: env,
            item: Some(item),
            hospital: hospital.into(),
            author: id.peer_id(),
        }
    }

    fn ind(conf: u8) -> Indicator {
        let mut i = Indicator::new(
            Observable::Domain("c2.example.org".into()),
            Category::C2Beacon,
            Severity::High,
            Timestamp::from_secs(100),
        );
        i.confidence = conf;
        i
    }

    #[test]
    fn corroboration_retraction_and_false_positives() {
        let ck = ConsortiumKey::generate();
        let mut kb = KnowledgeBase::new(100);
        let id = ind(60).id;
        assert_eq!(
            kb.insert(
                &accepted(&ck, "A", Item::Indicator(ind(60))),
                Timestamp::from_secs(1)
            ),
            Change::NewIndicator(id)
        );
        let one = kb.get(&id).unwrap().confidence;
        let Change::Corroborated {
            hospitals,
            confidence,
            ..
        } = kb.insert(
            &accepted(&ck, "B", Item::Indicator(ind(60))),
            Timestamp::from_secs(2),
        )
        else {
            panic!("expected corroboration")
        };
        assert_eq!(hospitals, 2);
        assert!(confidence > one);
        kb.insert(
            &accepted(&ck, "C", Item::Indicator(ind(60))),
            Timestamp::from_secs(3),
        );
        let policy = trust::Config {
            act_min_hospitals: 3,
            act_min_confidence: 0.9,
            ..trust::Config::default()
        };
        assert!(
            kb.get(&id)
                .unwrap()
                .actionable(&policy, Timestamp::from_secs(200))
        );
        let before = kb.reputation().get("A");
        kb.insert(
            &accepted(
                &ck,
                "D",
                Item::Retraction(Retraction {
                    indicator: id,
                    reason: RetractionReason::FalsePositive,
                    tlp: Tlp::Green,
                }),
            ),
            Timestamp::from_secs(4),
        );
        assert!(
            kb.reputation().get("A") < before,
            "false positive lowers the publishers' reputation"
        );
        assert!(
            !kb.get(&id)
                .unwrap()
                .actionable(&policy, Timestamp::from_secs(200))
        );
        assert_eq!(kb.since(Timestamp::from_secs(2), 10).len(), 3);
        assert_eq!(kb.by_category()[&Category::C2Beacon], 1);
    }

    #[test]
    fn log_round_trips_and_survives_damage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("knowledge.log");
        let (mut log, recs, damage) = Log::open(&path).unwrap();
        assert!(recs.is_empty() && damage.is_none());
        for n in 0..3u8 {
            log.append(&Record {
                received: Timestamp::from_secs(u64::from(n)),
                bytes: vec![n; 10 + usize::from(n)],
            })
            .unwrap();
        }
        drop(log);
        let (_, recs, damage) = Log::open(&path).unwrap();
        assert_eq!(recs.len(), 3);
        assert!(damage.is_none());
        assert_eq!(recs[2].bytes, vec![2; 12]);
        // Corrupt the last record: the first two are kept and the damage named with its offset.
        let mut data = std::fs::read(&path).unwrap();
        let last = data.len() - 1;
        data[last] ^= 0xff;
        std::fs::write(&path, &data).unwrap();
        let (mut log, recs, damage) = Log::open(&path).unwrap();
        assert_eq!(recs.len(), 2);
        let msg = damage.unwrap().to_string();
        assert!(
            msg.contains("knowledge.log") && msg.contains("offset") && msg.contains("checksum"),
            "{msg}"
        );
        assert!(path.with_extension("damaged").exists());
        log.append(&Record {
            received: Timestamp::from_secs(9),
            bytes: vec![9; 4],
        })
        .unwrap();
        drop(log);
        let (_, recs, damage) = Log::open(&path).unwrap();
        assert_eq!(recs.len(), 3, "appends after a repair are readable");
        assert!(damage.is_none());
        std::fs::write(&path, b"something else").unwrap();
        let (_, recs, damage) = Log::open(&path).unwrap();
        assert!(recs.is_empty());
        assert!(damage.unwrap().to_string().contains("bad header"));
    }
}
