//! SYN floods and connection exhaustion: half-open handshakes piling up against one service.
//! The packet sensor counts unanswered SYNs per flow in the kernel, so a flood arrives here as
//! a few records with large counts (or, with spoofed sources, many records with small ones).

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use heir_model::{Alert, Category, Event, EventKind, Severity};
use serde::{Deserialize, Serialize};

use crate::util::{bound, secs_to_ns};
use crate::{Detector, Kind, Spec};

const SPEC: Spec = Spec {
    rule: "net.syn_flood",
    category: Category::DosFlood,
    owasp_iot: "I9",
    enisa: "Nefarious activity/abuse: denial of service",
    attack: "T1498.001",
};

/// SYN-flood settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub enabled: bool,
    pub window_secs: u64,
    /// Unanswered SYNs against one host and port within the window that make a flood.
    pub syn_threshold: u64,
    pub max_tracked: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            enabled: true,
            window_secs: 10,
            syn_threshold: 2_000,
            max_tracked: 10_000,
        }
    }
}

#[derive(Default)]
struct Target {
    window_start: u64,
    syns: u64,
    sources: HashSet<IpAddr>,
    alerted: bool,
}

pub struct SynFlood {
    cfg: Config,
    targets: HashMap<(IpAddr, u16), Target>,
}

impl SynFlood {
    pub fn new(cfg: Config) -> Self {
        Self {
            cfg,
            targets: HashMap::new(),
        }
    }
}

impl Detector for SynFlood {
    fn name(&self) -> &'static str {
        "syn_flood"
    }

    fn kinds(&self) -> &'static [Kind] {
        &[Kind::Flow]
    }

    fn inspect(&mut self, ev: &Event, out: &mut Vec<Alert>) {
        let EventKind::Flow {
            src,
            dst,
            dst_port,
            syn_unanswered,
            ..
        } = &ev.kind
        else {
            return;
        };
        if *syn_unanswered == 0 {
            return;
        }
        let now = ev.ts.as_nanos();
        let window = secs_to_ns(self.cfg.window_secs);
        bound(&mut self.targets, self.cfg.max_tracked, |_, t| {
            now.saturating_sub(t.window_start) < window
        });
        let t = self.targets.entry((*dst, *dst_port)).or_default();
        if now.saturating_sub(t.window_start) >= window {
            *t = Target {
                window_start: now,
                ..Target::default()
            };
        }
        t.syns += u64::from(*syn_unanswered);
        if t.sources.len() < 100_000 {
            t.sources.insert(*src);
        }
        if t.syns >= self.cfg.syn_threshold && !t.alerted {
            t.alerted = true;
            let secs = (now.saturating_sub(t.window_start) as f64 / 1e9).max(1.0);
            let spoofed = t.sources.len() > 50;
            let mut a = SPEC.alert(
                ev.ts,
                format!("SYN flood against {dst}:{dst_port}"),
                Severity::High,
                if spoofed { 0.95 } else { 0.85 },
            );
            a.device = Some(dst.to_string());
            a.dst_ip = Some(*dst);
            a.dst_port = Some(*dst_port);
            if !spoofed && t.sources.len() == 1 {
                a.src_ip = Some(*src);
            }
            a.count = t.syns;
            a.evidence.push(format!(
                "{} half-open handshakes in {secs:.1}s (~{:.0}/s)",
                t.syns,
                t.syns as f64 / secs
            ));
            a.evidence.push(format!(
                "{} distinct sources{}",
                t.sources.len(),
                if spoofed { " (likely spoofed)" } else { "" }
            ));
            out.push(a);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detectors::fixtures::*;
    use heir_model::event::TcpFlags;

    #[test]
    fn single_source_flood_names_the_source() {
        let mut d = SynFlood::new(Config::default());
        // hping3 -S -p 443 --flood from one host, exported once a second by the sensor.
        let events: Vec<_> = (0..5u64)
            .map(|i| {
                flow(
                    i * 1000,
                    "10.9.0.66",
                    2000,
                    "10.9.0.50",
                    443,
                    FlowSpec {
                        flags_out: TcpFlags::SYN,
                        syn_unanswered: 900,
                        packets_out: 900,
                        ..FlowSpec::default()
                    },
                )
            })
            .collect();
        let alerts = run(&mut d, &events);
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].src_ip, Some(ip("10.9.0.66")));
        assert_eq!(alerts[0].count, 2700);
    }

    #[test]
    fn hping3_burst_fires_normal_service_is_quiet() {
        let mut d = SynFlood::new(Config::default());
        // hping3 -S -p 80 --rand-source -c 5000 -i u100: one record per spoofed source every export.
        let events: Vec<_> = (0..1000u32)
            .map(|i| {
                flow(
                    u64::from(i) / 2,
                    &format!("198.51.{}.{}", i / 250, i % 250 + 1),
                    2000,
                    "10.9.0.50",
                    80,
                    FlowSpec {
                        flags_out: TcpFlags::SYN,
                        syn_unanswered: 5,
                        ..FlowSpec::default()
                    },
                )
            })
            .collect();
        let alerts = run(&mut d, &events);
        assert_eq!(alerts.len(), 1);
        assert!(alerts[0].evidence[1].contains("spoofed"));
        assert_complete(&alerts);
        // A busy web UI: 2000 real sessions, the odd lost SYN.
        let mut d = SynFlood::new(Config::default());
        let events: Vec<_> = (0..2000u64)
            .map(|i| {
                let mut f = session(
                    i * 5,
                    "10.9.0.31",
                    30000 + (i % 30000) as u16,
                    "10.9.0.50",
                    80,
                    900,
                    20_000,
                );
                if let heir_model::EventKind::Flow { syn_unanswered, .. } = &mut f.kind {
                    *syn_unanswered = u32::from(i % 100 == 0);
                }
                f
            })
            .collect();
        assert!(run(&mut d, &events).is_empty());
    }
}
