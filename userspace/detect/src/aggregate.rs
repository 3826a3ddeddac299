//! One alert per incident: repeats of the same finding within a quiet period fold into the first
//! alert's count instead of flooding the sysadmin.
//!
//! The first alert of an incident goes out at once (latency matters more than tidiness). While
//! the incident goes on, an update copy with the same `id`, the new `count` and the latest
//! evidence follows at most once per `update_secs`, so a sysadmin or SIEM reading the stream
//! sees a known attacker's next move without being flooded; when the incident has been quiet
//! for the window, one closing copy with the total follows. A store keyed on `id` upserts them.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::net::IpAddr;

use heir_model::{Alert, Timestamp};
use serde::Deserialize;

/// Aggregation settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Seconds of quiet after which an incident closes and a repeat opens a new one.
    pub window_secs: u64,
    /// Seconds between update lines of an incident that goes on.
    pub update_secs: u64,
    /// Evidence lines kept per incident: the first half, and the latest in the rest.
    pub max_evidence: usize,
    /// Open incidents tracked at most; beyond that the oldest quiet ones close early.
    pub max_incidents: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            window_secs: 300,
            update_secs: 30,
            max_evidence: 16,
            max_incidents: 50_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    rule: String,
    device: Option<String>,
    src_ip: Option<IpAddr>,
    dst_ip: Option<IpAddr>,
    /// The service: DICOM and HL7 between the same two hosts are two findings, not one.
    dst_port: Option<u16>,
    comm: Option<String>,
    /// The technique: a cron job and a systemd timer dropped by one shell are two findings.
    attack: Option<String>,
}

struct Incident {
    alert: Alert,
    last: Timestamp,
    /// When a copy last went out, and the count it carried.
    emitted_at: Timestamp,
    emitted_count: u64,
}

/// Folds repeated alerts into incidents.
pub struct Aggregator {
    cfg: Config,
    open: HashMap<Key, Incident>,
}

impl Aggregator {
    pub fn new(cfg: Config) -> Self {
        Self {
            cfg,
            open: HashMap::new(),
        }
    }

    /// Takes one raw alert; appends to `out` what should be published now.
    pub fn push(&mut self, alert: Alert, out: &mut Vec<Alert>) {
        let window = self.cfg.window_secs.saturating_mul(1_000_000_000);
        let key = Key {
            rule: alert.rule.clone(),
            device: alert.device.clone(),
            src_ip: alert.src_ip,
            dst_ip: alert.dst_ip,
            dst_port: alert.dst_port,
            comm: alert.comm.clone(),
            attack: alert.taxonomy.attack.clone(),
        };
        if self.open.len() >= self.cfg.max_incidents && !self.open.contains_key(&key) {
            self.flush(alert.ts, out);
            if self.open.len() >= self.cfg.max_incidents {
                let closing: Vec<Key> = self.open.keys().cloned().collect();
                for k in closing {
                    if let Some(inc) = self.open.remove(&k) {
                        close(inc, out);
                    }
                }
            }
        }
        match self.open.entry(key) {
            Entry::Occupied(mut o) => {
                let inc = o.get_mut();
                if alert.ts.as_nanos().saturating_sub(inc.last.as_nanos()) <= window {
                    // A worse turn (an attach that goes on to write memory) is news now, not
                    // at the next update: the incident takes its severity and title at once.
                    let escalated = alert.severity > inc.alert.severity;
                    if escalated {
                        inc.alert.title = alert.title.clone();
                    }
                    inc.last = inc.last.max(alert.ts);
                    inc.alert.count = inc.alert.count.saturating_add(alert.count);
                    inc.alert.confidence = inc.alert.confidence.max(alert.confidence);
                    inc.alert.severity = inc.alert.severity.max(alert.severity);
                    let max = self.cfg.max_evidence;
                    for e in alert.evidence {
                        if max == 0 || inc.alert.evidence.contains(&e) {
                            continue;
                        }
                        if inc.alert.evidence.len() >= max {
                            // Keep how it began and what it does now.
                            inc.alert.evidence.remove(max / 2);
                        }
                        inc.alert.evidence.push(e);
                    }
                    let update = self.cfg.update_secs.saturating_mul(1_000_000_000);
                    if escalated
                        || inc.alert.count > inc.emitted_count
                            && alert
                                .ts
                                .as_nanos()
                                .saturating_sub(inc.emitted_at.as_nanos())
                                >= update
                    {
                        inc.emitted_at = alert.ts;
                        inc.emitted_count = inc.alert.count;
                        let mut copy = inc.alert.clone();
                        copy.ts = alert.ts;
                        out.push(copy);
                    }
                    return;
                }
                let old = std::mem::replace(
                    inc,
                    Incident {
                        last: alert.ts,
                        emitted_at: alert.ts,
                        emitted_count: alert.count,
                        alert: alert.clone(),
                    },
                );
                close(old, out);
                out.push(alert);
            }
            Entry::Vacant(v) => {
                v.insert(Incident {
                    last: alert.ts,
                    emitted_at: alert.ts,
                    emitted_count: alert.count,
                    alert: alert.clone(),
                });
                out.push(alert);
            }
        }
    }

    /// Closes incidents quiet for the window, publishing their final count if it grew.
    pub fn flush(&mut self, now: Timestamp, out: &mut Vec<Alert>) {
        let window = self.cfg.window_secs.saturating_mul(1_000_000_000);
        let done: Vec<Key> = self
            .open
            .iter()
            .filter(|(_, i)| now.as_nanos().saturating_sub(i.last.as_nanos()) > window)
            .map(|(k, _)| k.clone())
            .collect();
        for k in done {
            if let Some(inc) = self.open.remove(&k) {
                close(inc, out);
            }
        }
    }

    pub fn open_incidents(&self) -> usize {
        self.open.len()
    }
}

fn close(inc: Incident, out: &mut Vec<Alert>) {
    if inc.alert.count > inc.emitted_count {
        out.push(inc.alert);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use heir_model::{Category, Severity};

    fn alert(s: u64, src: &str) -> Alert {
        let mut a = Alert::new(
            Timestamp::from_secs(s),
            "net.port_scan",
            "scan",
            Category::PortScan,
            Severity::High,
            0.9,
        );
        a.src_ip = Some(src.parse().unwrap());
        a.evidence.push(format!("at {s}"));
        a
    }

    #[test]
    fn repeats_fold_into_one_incident_with_a_count() {
        let mut agg = Aggregator::new(Config {
            window_secs: 60,
            ..Config::default()
        });
        let mut out = Vec::new();
        for s in 0..1000 {
            agg.push(alert(1000 + s / 20, "10.0.0.9"), &mut out);
        }
        assert_eq!(
            out.len(),
            2,
            "the first goes out live, then one update 30 s in, not 999"
        );
        assert_eq!(out[1].id, out[0].id, "the update is the same incident");
        assert_eq!(out[1].count, 601, "the update carries the count so far");
        assert_eq!(out[1].ts, Timestamp::from_secs(1030));
        agg.push(alert(1010, "10.0.0.10"), &mut out);
        assert_eq!(out.len(), 3, "another source is another incident");
        agg.flush(Timestamp::from_secs(1200), &mut out);
        assert_eq!(out.len(), 4, "one closing update for the big incident only");
        let last = &out[3];
        assert_eq!(last.count, 1000);
        assert_eq!(last.id, out[0].id);
        assert_eq!(last.evidence.len(), 16);
        assert_eq!(last.evidence[0], "at 1000", "how it began");
        assert_eq!(
            last.evidence.last().map(String::as_str),
            Some("at 1049"),
            "what it does now"
        );
        assert_eq!(agg.open_incidents(), 0);
    }

    #[test]
    fn another_service_between_the_same_hosts_is_another_incident() {
        let mut agg = Aggregator::new(Config::default());
        let mut out = Vec::new();
        let mut dicom = alert(0, "10.0.0.9");
        dicom.dst_port = Some(104);
        let mut hl7 = alert(1, "10.0.0.9");
        hl7.dst_port = Some(2575);
        agg.push(dicom, &mut out);
        agg.push(hl7, &mut out);
        assert_eq!(out.len(), 2);
        assert_ne!(out[0].id, out[1].id);
    }

    #[test]
    fn a_more_severe_turn_updates_the_incident_at_once() {
        let mut agg = Aggregator::new(Config::default());
        let mut out = Vec::new();
        let attach = alert(0, "10.0.0.9");
        let mut write = alert(1, "10.0.0.9");
        write.severity = Severity::Critical;
        write.title = "wrote into the memory".into();
        let again = alert(2, "10.0.0.9");
        agg.push(attach, &mut out);
        agg.push(write, &mut out);
        agg.push(again, &mut out);
        assert_eq!(
            out.len(),
            2,
            "the escalation goes out at once, the repeat waits"
        );
        assert_eq!(out[1].id, out[0].id);
        assert_eq!(out[1].severity, Severity::Critical);
        assert_eq!(out[1].title, "wrote into the memory");
        assert_eq!(out[1].count, 2);
    }

    #[test]
    fn another_technique_by_the_same_process_is_another_incident() {
        let mut agg = Aggregator::new(Config::default());
        let mut out = Vec::new();
        let mut cron = alert(0, "10.0.0.9");
        cron.taxonomy.attack = Some("T1053.003".into());
        let mut timer = alert(1, "10.0.0.9");
        timer.taxonomy.attack = Some("T1053.006".into());
        let again = cron.clone();
        agg.push(cron, &mut out);
        agg.push(timer, &mut out);
        agg.push(again, &mut out);
        assert_eq!(out.len(), 2, "two techniques, one repeat folded");
        assert_ne!(out[0].id, out[1].id);
    }

    #[test]
    fn a_repeat_after_the_quiet_window_is_a_new_incident() {
        let mut agg = Aggregator::new(Config {
            window_secs: 60,
            ..Config::default()
        });
        let mut out = Vec::new();
        agg.push(alert(0, "10.0.0.9"), &mut out);
        agg.push(alert(500, "10.0.0.9"), &mut out);
        assert_eq!(out.len(), 2);
        assert_ne!(out[0].id, out[1].id);
    }
}
