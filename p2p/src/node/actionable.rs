//! What the node hands the responder: attacker addresses the consortium corroborated past
//! this node's thresholds, each once per change of corroboration.
//!
//! The node decides this itself, where the knowledge base is, so the application does not
//! have to ask back for the entry behind every received report.

use std::collections::HashMap;
use std::net::IpAddr;

use heir_model::{Category, Timestamp};

use crate::indicator::{IndicatorId, Observable};
use crate::knowledge::{Change, Entry};
use crate::trust;

/// An attacker address the consortium corroborated past this node's thresholds: the
/// responder's input from the mesh.
#[derive(Debug, Clone, PartialEq)]
pub struct Actionable {
    pub id: IndicatorId,
    pub addr: IpAddr,
    pub category: Category,
    /// The rule that reported it, e.g. `net.port_scan`.
    pub rule: String,
    /// Distinct hospitals that reported or sighted it.
    pub hospitals: usize,
    /// Corroborated confidence 0..1.
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
    pub fn from_entry(entry: &Entry, policy: &trust::Config, now: Timestamp) -> Option<Self> {
        let Observable::Ip(addr) = entry.indicator.observable else {
            return None;
        };
        entry.actionable(policy, now).then(|| Actionable {
            id: entry.indicator.id,
            addr,
            category: entry.indicator.category,
            rule: entry.indicator.rule.clone(),
            hospitals: entry.hospitals(),
            confidence: entry.confidence,
        })
    }
}

/// Most indicators remembered as handed over. Forgetting them all at once only means a
/// repeated hand-over, which refreshes the block's expiry.
const REMEMBERED: usize = 65_536;

/// Which indicators were handed over, at which corroboration (number of hospitals).
#[derive(Debug, Default)]
pub(super) struct Handover {
    given: HashMap<IndicatorId, usize>,
}

impl Handover {
    /// The indicator a change touched, when it is newly actionable or was corroborated by
    /// more (or fewer) hospitals since it was last handed over. Call [`Handover::given`]
    /// once it was actually delivered.
    pub(super) fn due<'a>(
        &self,
        change: &Change,
        entry: impl FnOnce(&IndicatorId) -> Option<&'a Entry>,
        policy: &trust::Config,
        now: Timestamp,
    ) -> Option<Actionable> {
        let id = match change {
            Change::NewIndicator(id) | Change::Corroborated { id, .. } => id,
            _ => return None,
        };
        let a = Actionable::from_entry(entry(id)?, policy, now)?;
        (self.given.get(id) != Some(&a.hospitals)).then_some(a)
    }

    /// Records a delivered hand-over.
    pub(super) fn given(&mut self, a: &Actionable) {
        if self.given.len() >= REMEMBERED && !self.given.contains_key(&a.id) {
            self.given.clear();
        }
        self.given.insert(a.id, a.hospitals);
    }
}

#[cfg(test)]
mod tests {
    use heir_model::Severity;

    use super::*;
    use crate::Indicator;
    use crate::knowledge::Report;

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

    fn policy() -> trust::Config {
        trust::Config {
            act_min_hospitals: 2,
            act_min_confidence: 0.9,
            ..trust::Config::default()
        }
    }

    /// The responder hears of an address only once enough hospitals reported it, with
    /// enough confidence, and only for addresses (not domains or products).
    #[test]
    fn only_corroborated_addresses_are_actionable() {
        let policy = policy();
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

    /// An address is handed over once when it becomes actionable, not again for a repeated
    /// report at the same corroboration, and again when a further hospital corroborates it.
    #[test]
    fn handed_over_once_per_corroboration() {
        let (policy, now) = (policy(), Timestamp::from_secs(2_000));
        let scanner = Observable::Ip("203.0.113.66".parse().unwrap());
        let mut handover = Handover::default();
        let two = entry(scanner.clone(), &["alpha", "charlie"], 0.97);
        let change = Change::Corroborated {
            id: two.indicator.id,
            hospitals: 2,
            confidence: 0.97,
        };
        let a = handover
            .due(&change, |_| Some(&two), &policy, now)
            .expect("newly actionable");
        // Not delivered (a full queue): still due.
        assert!(
            handover
                .due(&change, |_| Some(&two), &policy, now)
                .is_some()
        );
        handover.given(&a);
        assert_eq!(handover.due(&change, |_| Some(&two), &policy, now), None);
        let three = entry(scanner, &["alpha", "charlie", "delta"], 0.99);
        let a = handover
            .due(&change, |_| Some(&three), &policy, now)
            .expect("a third hospital");
        assert_eq!(a.hospitals, 3);
        handover.given(&a);
        assert_eq!(handover.due(&change, |_| Some(&three), &policy, now), None);
        assert_eq!(
            handover.due(&Change::Aggregate, |_| Some(&two), &policy, now),
            None
        );
    }
}
