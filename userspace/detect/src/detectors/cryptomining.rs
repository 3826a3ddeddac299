//! Cryptomining: miner programs and their stratum pool connections. A hijacked infusion pump
//! or imaging workstation that mines loses the CPU headroom clinical software relies on.

use std::collections::HashMap;

use heir_model::{Alert, Category, Event, EventKind, NetAddr, Severity};
use serde::{Deserialize, Serialize};

use super::strings;
use crate::util::{basename, bound, exe, glob, process_is};
use crate::{Detector, Kind, Spec};

const SPEC: Spec = Spec {
    rule: "host.cryptomining",
    category: Category::Cryptomining,
    owasp_iot: "I5",
    enisa: "Nefarious activity/abuse: malicious code (cryptojacking)",
    attack: "T1496",
};

/// Cryptomining settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub enabled: bool,
    /// Miner executable names.
    pub miners: Vec<String>,
    /// Command-line patterns (globs) only miners use.
    pub patterns: Vec<String>,
    /// Ports mining pools listen on (4444 and 5555 are left out: they are as much the
    /// classic reverse-shell and adb ports, which have detectors of their own).
    pub stratum_ports: Vec<u16>,
    /// Programs allowed to connect to those ports (e.g. a device's own service on 3333).
    pub allowed: Vec<String>,
    /// Programs whose connections to those ports are something else than mining (shells:
    /// the reverse-shell detector covers them).
    pub never_miners: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            enabled: true,
            miners: strings(&[
                "xmrig",
                "xmr-stak",
                "xmr-stak-rx",
                "minerd",
                "cpuminer",
                "cpuminer-multi",
                "cgminer",
                "bfgminer",
                "ethminer",
                "nbminer",
                "t-rex",
                "lolminer",
                "phoenixminer",
                "nanominer",
                "teamredminer",
                "srbminer",
                "kdevtmpfsi",
                "kinsing",
            ]),
            patterns: strings(&[
                "*stratum+tcp://*",
                "*stratum+ssl://*",
                "*stratum2+tcp://*",
                "--donate-level*",
                "*--randomx*",
                "*--coin=*",
            ]),
            stratum_ports: vec![
                3333, 3334, 3357, 4444, 5555, 7777, 14433, 14444, 45560, 45700,
            ],
            allowed: Vec::new(),
            never_miners: strings(&["sh", "bash", "dash", "zsh", "ksh", "ash", "busybox"]),
        }
    }
}

pub struct Cryptomining {
    cfg: Config,
    /// pid → stratum-port connects seen (alert on the first, count the rest).
    connects: HashMap<u32, u32>,
}

impl Cryptomining {
    pub fn new(cfg: Config) -> Self {
        Self {
            cfg,
            connects: HashMap::new(),
        }
    }
}

impl Detector for Cryptomining {
    fn name(&self) -> &'static str {
        "cryptomining"
    }

    fn kinds(&self) -> &'static [Kind] {
        &[Kind::Exec, Kind::Connect, Kind::Exit]
    }

    fn inspect(&mut self, ev: &Event, out: &mut Vec<Alert>) {
        let p = &ev.process;
        match &ev.kind {
            EventKind::Exec {
                filename,
                argv,
                ret,
                ..
            } if *ret == 0 => {
                let name = basename(filename);
                let by_name = self.cfg.miners.iter().any(|m| m == name || *m == p.comm);
                let pattern = argv
                    .iter()
                    .find(|a| self.cfg.patterns.iter().any(|pat| glob(pat, a)));
                if !by_name && pattern.is_none() {
                    return;
                }
                let mut a = SPEC.process_alert(
                    ev,
                    format!("Cryptominer started: {filename}"),
                    Severity::High,
                    if by_name && pattern.is_some() {
                        0.98
                    } else {
                        0.85
                    },
                );
                if by_name {
                    a.evidence
                        .push(format!("executable `{name}` is a known miner"));
                }
                if let Some(arg) = pattern {
                    a.evidence.push(format!("miner argument `{arg}`"));
                }
                out.push(a);
            }
            EventKind::Connect {
                addr: NetAddr::Inet { ip, port },
                ret,
            } if (*ret == 0 || *ret == -115) && self.cfg.stratum_ports.contains(port) => {
                // Shells connecting out are reverse shells (their own detector), not miners.
                if process_is(p, &self.cfg.allowed) || process_is(p, &self.cfg.never_miners) {
                    return;
                }
                bound(&mut self.connects, 65_536, |_, _| false);
                let n = self.connects.entry(p.pid).or_default();
                *n += 1;
                if *n > 1 {
                    return;
                }
                let mut a = SPEC.process_alert(
                    ev,
                    format!("{} connected to a mining-pool port {ip}:{port}", exe(p)),
                    Severity::Medium,
                    0.6,
                );
                a.dst_ip = Some(*ip);
                a.dst_port = Some(*port);
                a.evidence.push(format!(
                    "outbound connection to {ip}:{port}, a stratum mining-pool port"
                ));
                out.push(a);
            }
            EventKind::Exit { .. } => {
                self.connects.remove(&p.pid);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detectors::fixtures::*;

    #[test]
    fn renamed_xmrig_with_pool_fires_https_client_is_quiet() {
        let mut d = Cryptomining::new(Config::default());
        let m = proc_(
            60,
            59,
            33,
            "kworkerd",
            "/tmp/.cache/kworkerd",
            "/usr/bin/bash",
        );
        let events = [
            exec(
                0,
                m.clone(),
                "/tmp/.cache/kworkerd",
                &[
                    "kworkerd",
                    "-o",
                    "stratum+tcp://pool.example:3333",
                    "-u",
                    "4A…",
                    "--donate-level=1",
                ],
            ),
            connect(1, m.clone(), "203.0.113.50", 3333),
            connect(2, m, "203.0.113.50", 3333),
        ];
        let alerts = run(&mut d, &events);
        assert_eq!(alerts.len(), 2);
        assert_complete(&alerts);
        let curl = proc_(61, 59, 0, "curl", "/usr/bin/curl", "/usr/bin/bash");
        let benign = [
            exec(
                3,
                curl.clone(),
                "/usr/bin/curl",
                &["curl", "https://pacs.example/"],
            ),
            connect(4, curl, "10.9.0.5", 443),
        ];
        assert!(run(&mut d, &benign).is_empty());
    }
}
