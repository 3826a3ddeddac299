//! A loaded rule set at run time: dispatch by event kind, threshold windows per group, and the
//! hot swap that keeps those windows when a reload leaves a rule unchanged.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use heir_model::{Alert, Event, EventKind, Taxonomy};

use super::field::{Field, Val};
use super::file::{Rule, Threshold};
use crate::Kind;
use crate::util::bound;

/// Most groups one threshold rule tracks; beyond that, groups with nothing in the window go.
const MAX_GROUPS: usize = 65_536;

/// Checked rules, immutable once loaded; cheap to share between reload and run time.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    pub rules: Vec<Arc<Rule>>,
    /// Built-in rules that a local rule of the same id replaced (`heir rules list` shows them).
    pub overridden: Vec<Arc<Rule>>,
}

impl RuleSet {
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    pub fn get(&self, id: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.id == id).map(|r| &**r)
    }
}

#[derive(Default)]
struct Windows {
    /// Per group: event times in the window, or per distinct value its last time.
    counts: HashMap<String, VecDeque<u64>>,
    distinct: HashMap<String, HashMap<String, u64>>,
}

struct Slot {
    rule: Arc<Rule>,
    windows: Windows,
}

/// Evaluates a [`RuleSet`] over events.
pub struct Runtime {
    slots: Vec<Slot>,
    by_kind: Vec<Vec<usize>>,
}

impl Default for Runtime {
    fn default() -> Self {
        Self {
            slots: Vec::new(),
            by_kind: vec![Vec::new(); Kind::COUNT],
        }
    }
}

impl Runtime {
    pub fn new(set: &RuleSet) -> Self {
        let mut r = Runtime::default();
        r.replace(set);
        r
    }

    /// Swaps in a new rule set. Rules whose id, kinds, condition and threshold are unchanged
    /// keep their windows, so a reload in the middle of a brute-force attempt misses nothing.
    pub fn replace(&mut self, set: &RuleSet) {
        let mut old: HashMap<String, Slot> = self
            .slots
            .drain(..)
            .map(|s| (s.rule.id.clone(), s))
            .collect();
        self.slots = set
            .rules
            .iter()
            .map(|rule| {
                let windows = match old.remove(&rule.id) {
                    Some(s) if s.rule.fingerprint() == rule.fingerprint() => s.windows,
                    _ => Windows::default(),
                };
                Slot {
                    rule: rule.clone(),
                    windows,
                }
            })
            .collect();
        self.by_kind = vec![Vec::new(); Kind::COUNT];
        for (i, s) in self.slots.iter().enumerate() {
            for k in &s.rule.kinds {
                self.by_kind[k.index()].push(i);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    pub fn inspect(&mut self, ev: &Event, out: &mut Vec<Alert>) {
        let k = Kind::of(&ev.kind).index();
        for &i in &self.by_kind[k] {
            let slot = &mut self.slots[i];
            if !slot.rule.condition.eval(ev) {
                continue;
            }
            match &slot.rule.threshold {
                None => out.push(alert(&slot.rule, ev, None)),
                Some(t) => {
                    if let Some(n) = slot.windows.hit(t, ev) {
                        let note = format!(
                            "{n} {} within {}s{}",
                            if t.distinct.is_some() {
                                "distinct values"
                            } else {
                                "matching events"
                            },
                            t.window_ns / 1_000_000_000,
                            group_note(t, ev)
                        );
                        out.push(alert(&slot.rule, ev, Some(note)));
                    }
                }
            }
        }
    }
}

fn group_note(t: &Threshold, ev: &Event) -> String {
    if t.group_by.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = t
        .group_by
        .iter()
        .map(|f| {
            format!(
                "{}={}",
                f.name(),
                f.get(ev).map_or_else(|| "-".into(), |v| v.render())
            )
        })
        .collect();
    format!(" for {}", parts.join(" "))
}

impl Windows {
    /// Records a matching event; returns the count when the threshold is reached.
    fn hit(&mut self, t: &Threshold, ev: &Event) -> Option<usize> {
        let now = ev.ts.as_nanos();
        let horizon = now.saturating_sub(t.window_ns);
        let mut key = String::new();
        for f in &t.group_by {
            if let Some(v) = f.get(ev) {
                key.push_str(&v.render());
            }
            key.push('\u{1f}');
        }
        match t.distinct {
            None => {
                bound(&mut self.counts, MAX_GROUPS, |_, q| {
                    q.back().is_some_and(|b| *b >= horizon)
                });
                let q = self.counts.entry(key).or_default();
                while q.front().is_some_and(|f| *f < horizon) {
                    q.pop_front();
                }
                q.push_back(now);
                if q.len() >= t.count as usize {
                    let n = q.len();
                    q.clear();
                    return Some(n);
                }
            }
            Some(f) => {
                let value = f.get(ev).map(|v| v.render()).unwrap_or_default();
                bound(&mut self.distinct, MAX_GROUPS, |_, m| {
                    m.values().any(|t| *t >= horizon)
                });
                let m = self.distinct.entry(key).or_default();
                m.retain(|_, t| *t >= horizon);
                m.insert(value, now);
                if m.len() >= t.count as usize {
                    let n = m.len();
                    m.clear();
                    return Some(n);
                }
            }
        }
        None
    }
}

fn alert(rule: &Rule, ev: &Event, note: Option<String>) -> Alert {
    let mut a = Alert::new(
        ev.ts,
        rule.id.clone(),
        rule.title.clone(),
        rule.category,
        rule.severity,
        rule.confidence,
    );
    a.taxonomy = Taxonomy {
        owasp_iot: Some(rule.owasp_iot.clone()),
        enisa: Some(rule.enisa.clone()),
        attack: Some(rule.attack.clone()),
    };
    match &ev.kind {
        EventKind::Flow {
            src,
            src_port,
            dst,
            dst_port,
            ..
        }
        | EventKind::Protocol {
            src,
            src_port,
            dst,
            dst_port,
            ..
        } => {
            a.src_ip = Some(*src);
            a.dst_ip = Some(*dst);
            a.dst_port = Some(*dst_port);
            let what = match &ev.kind {
                EventKind::Protocol { observation, .. } => observation.name(),
                _ => "flow",
            };
            a.evidence
                .push(format!("{what} {src}:{src_port} → {dst}:{dst_port}"));
        }
        _ => {
            a.pid = Some(ev.process.pid);
            a.comm = Some(ev.process.comm.clone());
            if let EventKind::Connect { addr, .. } = &ev.kind {
                a.dst_ip = addr.ip();
                a.dst_port = addr.port();
            }
            a.evidence.push(format!(
                "{} by pid {} ({}) uid {}",
                ev.kind.name(),
                ev.process.pid,
                crate::util::exe(&ev.process),
                ev.process.uid
            ));
        }
    }
    // A threshold over distinct ports (or peers) is about many of them: the one of the event
    // that crossed it does not describe the incident, and would split one scan into one
    // incident per port.
    match rule.threshold.as_ref().and_then(|t| t.distinct) {
        Some(Field::Port | Field::DstPort) => a.dst_port = None,
        Some(Field::Ip | Field::DstIp) => a.dst_ip = None,
        _ => {}
    }
    for f in &rule.evidence {
        if let Some(v) = f.get(ev) {
            let shown = match v {
                Val::Str(s) if s.len() > 256 => format!("{}…", &s[..s.floor_char_boundary(256)]),
                v => v.render(),
            };
            a.evidence.push(format!("{}={shown}", f.name()));
        }
    }
    if let Some(n) = note {
        a.evidence.push(n);
    }
    a.evidence.push(format!("matched: {}", rule.when.trim()));
    a
}
