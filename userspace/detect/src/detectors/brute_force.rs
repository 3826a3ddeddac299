//! Password guessing against ssh, telnet, ftp, MQTT and HTTP administration: many failed logins
//! against one account (brute force), few attempts across many accounts (spraying), and, for
//! ssh whose logins are encrypted, bursts of short sessions to the ssh port.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use heir_model::event::{LoginOutcome, Observation};
use heir_model::{Alert, Category, Event, EventKind, Severity};
use serde::{Deserialize, Serialize};

use crate::util::{Cidr, bound, in_any, secs_to_ns};
use crate::{Detector, Kind, Spec};

const SPEC: Spec = Spec {
    rule: "auth.brute_force",
    category: Category::BruteForce,
    owasp_iot: "I1",
    enisa: "Nefarious activity/abuse: brute force",
    attack: "T1110.001",
};

const SUCCESS: Spec = Spec {
    rule: "auth.brute_force_success",
    attack: "T1110",
    ..SPEC
};

const SPRAY: Spec = Spec {
    rule: "auth.password_spraying",
    attack: "T1110.003",
    ..SPEC
};

/// Brute-force settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub enabled: bool,
    pub window_secs: u64,
    /// Failed logins from one source to one service that make a brute force.
    pub failures: usize,
    /// Distinct user names tried from one source that make spraying.
    pub spray_users: usize,
    /// Ports where ssh listens.
    pub ssh_ports: Vec<u16>,
    /// Short ssh sessions from one source to one host that make a guessing burst.
    pub ssh_sessions: usize,
    /// A session sending fewer bytes than this counts as a login attempt, not real work.
    pub ssh_attempt_max_bytes: u64,
    /// Ports where telnet listens. Its logins travel in cleartext, but the packet sensor
    /// keeps what is typed in the kernel (it would be the password), so guessing shows as a
    /// burst of short sessions, as for ssh.
    pub telnet_ports: Vec<u16>,
    /// Short telnet sessions from one source to one host that make a guessing burst.
    pub telnet_sessions: usize,
    pub ignore_sources: Vec<Cidr>,
    pub max_tracked: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            enabled: true,
            window_secs: 300,
            failures: 10,
            spray_users: 6,
            ssh_ports: vec![22],
            ssh_sessions: 15,
            ssh_attempt_max_bytes: 6_000,
            telnet_ports: vec![23],
            telnet_sessions: 10,
            ignore_sources: Vec::new(),
            max_tracked: 50_000,
        }
    }
}

#[derive(Default)]
struct Attempts {
    times: Vec<u64>,
    users: HashSet<String>,
    /// When the guessing was last reported, and how many failures had been reported.
    alerted: Option<(u64, usize)>,
    sprayed_at: Option<u64>,
}

pub struct BruteForce {
    cfg: Config,
    by_target: HashMap<(IpAddr, IpAddr, &'static str), Attempts>,
}

impl BruteForce {
    pub fn new(cfg: Config) -> Self {
        Self {
            cfg,
            by_target: HashMap::new(),
        }
    }

    /// The service whose logins on `port` show only as short sessions, and how many make a
    /// burst.
    fn session_service(&self, port: u16) -> Option<(&'static str, usize)> {
        if self.cfg.ssh_ports.contains(&port) {
            Some(("ssh", self.cfg.ssh_sessions))
        } else if self.cfg.telnet_ports.contains(&port) {
            Some(("telnet", self.cfg.telnet_sessions))
        } else {
            None
        }
    }
}

/// A login attempt: service and user, or `None` if the observation is not one.
fn login(o: &Observation) -> Option<(&'static str, Option<&str>, Option<LoginOutcome>)> {
    match o {
        Observation::Telnet { user, outcome } => Some(("telnet", user.as_deref(), *outcome)),
        Observation::Ftp { user, outcome, .. } => Some(("ftp", user.as_deref(), *outcome)),
        Observation::Mqtt { user, outcome, .. } => Some(("mqtt", user.as_deref(), *outcome)),
        Observation::Http {
            basic_auth_user,
            status,
            admin_path,
            ..
        } if basic_auth_user.is_some() || *admin_path => {
            let outcome = status.map(|s| {
                if s == 401 || s == 403 {
                    LoginOutcome::Failure
                } else {
                    LoginOutcome::Success
                }
            });
            Some(("http", basic_auth_user.as_deref(), outcome))
        }
        _ => None,
    }
}

impl Detector for BruteForce {
    fn name(&self) -> &'static str {
        "brute_force"
    }

    fn kinds(&self) -> &'static [Kind] {
        &[Kind::Protocol, Kind::Flow]
    }

    fn inspect(&mut self, ev: &Event, out: &mut Vec<Alert>) {
        let now = ev.ts.as_nanos();
        let horizon = now.saturating_sub(secs_to_ns(self.cfg.window_secs));
        let (src, dst, port, service, user, failed, succeeded) = match &ev.kind {
            EventKind::Protocol {
                src,
                dst,
                dst_port,
                observation,
                ..
            } => {
                let Some((service, user, outcome)) = login(observation) else {
                    return;
                };
                (
                    *src,
                    *dst,
                    *dst_port,
                    service,
                    user,
                    outcome == Some(LoginOutcome::Failure),
                    outcome == Some(LoginOutcome::Success),
                )
            }
            EventKind::Flow {
                src,
                dst,
                dst_port,
                bytes_out,
                established,
                ..
            } => {
                let Some((service, _)) = self.session_service(*dst_port) else {
                    return;
                };
                if !established || *bytes_out > self.cfg.ssh_attempt_max_bytes {
                    return;
                }
                (*src, *dst, *dst_port, service, None, true, false)
            }
            _ => return,
        };
        let by_sessions = matches!(ev.kind, EventKind::Flow { .. });
        let threshold = match self.session_service(port) {
            Some((_, n)) if by_sessions => n,
            _ => self.cfg.failures,
        };
        if in_any(&self.cfg.ignore_sources, src) {
            return;
        }
        bound(&mut self.by_target, self.cfg.max_tracked, |_, a| {
            a.times.last().is_some_and(|t| *t >= horizon)
        });
        let a = self.by_target.entry((src, dst, service)).or_default();
        a.times.retain(|t| *t >= horizon);
        if succeeded {
            if a.times.len() >= self.cfg.failures / 2 && a.times.len() > 1 {
                let mut al = SUCCESS.alert(
                    ev.ts,
                    format!(
                        "Login to {service} on {dst} succeeded after {} failures",
                        a.times.len()
                    ),
                    Severity::Critical,
                    0.9,
                );
                fill(&mut al, src, dst, port);
                al.evidence.push(format!(
                    "{} failed {service} logins from {src} before a success within {}s",
                    a.times.len(),
                    self.cfg.window_secs
                ));
                if let Some(u) = user {
                    al.evidence.push(format!("account: {u}"));
                }
                out.push(al);
            }
            a.times.clear();
            return;
        }
        if !failed {
            return;
        }
        a.times.push(now);
        if let Some(u) = user
            && a.users.len() < 1024
        {
            a.users.insert(u.to_owned());
        }
        let reported = a.alerted.filter(|(t, _)| *t >= horizon).map(|(_, n)| n);
        let n = a.times.len();
        if n >= threshold && reported.is_none_or(|r| n >= 2 * r) {
            a.alerted = Some((now, n));
            let what = if by_sessions {
                format!("short {service} sessions")
            } else {
                "failed logins".to_owned()
            };
            let mut al = SPEC.alert(
                ev.ts,
                format!("Brute force against {service} on {dst} from {src}"),
                Severity::High,
                0.85,
            );
            fill(&mut al, src, dst, port);
            al.count = (n - reported.unwrap_or(0)) as u64;
            al.evidence.push(format!(
                "{} {what} from {src} within {}s",
                a.times.len(),
                self.cfg.window_secs
            ));
            if !a.users.is_empty() {
                let mut users: Vec<&String> = a.users.iter().collect();
                users.sort();
                al.evidence.push(format!(
                    "accounts tried: {}",
                    users
                        .iter()
                        .take(8)
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            out.push(al);
        }
        if a.users.len() >= self.cfg.spray_users && a.sprayed_at.is_none_or(|t| t < horizon) {
            a.sprayed_at = Some(now);
            let mut al = SPRAY.alert(
                ev.ts,
                format!("Password spraying against {service} on {dst} from {src}"),
                Severity::High,
                0.8,
            );
            fill(&mut al, src, dst, port);
            al.count = a.users.len() as u64;
            al.evidence.push(format!(
                "{} distinct accounts tried from {src} within {}s",
                a.users.len(),
                self.cfg.window_secs
            ));
            out.push(al);
        }
    }
}

fn fill(a: &mut Alert, src: IpAddr, dst: IpAddr, port: u16) {
    a.device = Some(dst.to_string());
    a.src_ip = Some(src);
    a.dst_ip = Some(dst);
    a.dst_port = Some(port);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detectors::fixtures::*;

    fn ftp(ms: u64, user: &str, ok: bool) -> Event {
        proto(
            ms,
            "10.9.0.66",
            "10.9.0.8",
            21,
            Observation::Ftp {
                user: Some(user.into()),
                cleartext_credentials: true,
                outcome: Some(if ok {
                    LoginOutcome::Success
                } else {
                    LoginOutcome::Failure
                }),
            },
        )
    }

    #[test]
    fn hydra_against_ftp_then_success() {
        let mut d = BruteForce::new(Config::default());
        // hydra -l admin -P wordlist(40) ftp://…  with 4 tasks: ~40 failures in a few seconds.
        let mut events: Vec<_> = (0..40).map(|i| ftp(i * 150, "admin", false)).collect();
        events.push(ftp(6_100, "admin", true));
        let alerts = run(&mut d, &events);
        // Reported at 10, 20 and 40 failures (one incident downstream), then the success.
        assert_eq!(alerts.len(), 4, "{alerts:#?}");
        assert_eq!(alerts[0].rule, "auth.brute_force");
        assert_eq!(alerts[..3].iter().map(|a| a.count).sum::<u64>(), 40);
        let alerts = vec![alerts[0].clone(), alerts[3].clone()];
        assert_eq!(alerts[1].rule, "auth.brute_force_success");
        assert!(
            alerts[1].title.contains("succeeded after 40 failures"),
            "{}",
            alerts[1].title
        );
        assert_eq!(alerts[1].severity, Severity::Critical);
        assert_complete(&alerts);
    }

    #[test]
    fn spraying_many_accounts_once_each() {
        let mut d = BruteForce::new(Config::default());
        let users = [
            "admin",
            "root",
            "service",
            "tech",
            "radiology",
            "nurse",
            "biomed",
        ];
        let events: Vec<_> = users
            .iter()
            .enumerate()
            .map(|(i, u)| ftp(i as u64 * 20_000, u, false))
            .collect();
        let alerts = run(&mut d, &events);
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].rule, "auth.password_spraying");
    }

    #[test]
    fn hydra_against_ssh_shows_as_short_session_burst() {
        let mut d = BruteForce::new(Config::default());
        let events: Vec<_> = (0..20)
            .map(|i| {
                session(
                    i * 700,
                    "10.9.0.66",
                    40000 + i as u16,
                    "10.9.0.9",
                    22,
                    2_400,
                    3_100,
                )
            })
            .collect();
        let alerts = run(&mut d, &events);
        assert_eq!(alerts.len(), 1);
        assert!(alerts[0].evidence[0].contains("short ssh sessions"));
    }

    /// hydra against a device's telnet console: one connection per guess, a few hundred
    /// bytes each. A technician opening the console a few times a day, or one long session,
    /// stays quiet.
    #[test]
    fn hydra_against_telnet_shows_as_short_session_burst() {
        let mut d = BruteForce::new(Config::default());
        let guesses: Vec<_> = (0..13)
            .map(|i| {
                session(
                    i * 1_800,
                    "203.0.113.66",
                    40000 + i as u16,
                    "10.1.2.10",
                    23,
                    60,
                    180,
                )
            })
            .collect();
        let alerts = run(&mut d, &guesses);
        assert_eq!(alerts.len(), 1, "{alerts:#?}");
        assert!(alerts[0].title.contains("telnet"), "{}", alerts[0].title);
        assert!(alerts[0].evidence[0].contains("short telnet sessions"));

        let mut quiet = BruteForce::new(Config::default());
        let mut benign: Vec<_> = (0..4)
            .map(|i| {
                session(
                    i * 3_600_000,
                    "10.1.9.5",
                    50000 + i as u16,
                    "10.1.2.10",
                    23,
                    90,
                    400,
                )
            })
            .collect();
        benign.push(session(
            20_000_000,
            "10.1.9.5",
            50100,
            "10.1.2.10",
            23,
            40_000,
            900_000,
        ));
        assert!(run(&mut quiet, &benign).is_empty());
    }

    #[test]
    fn http_basic_guessing_on_admin_page() {
        let mut d = BruteForce::new(Config::default());
        let events: Vec<_> = (0..12)
            .map(|i| {
                proto(
                    i * 300,
                    "10.9.0.66",
                    "10.9.0.21",
                    80,
                    Observation::Http {
                        method: "GET".into(),
                        admin_path: true,
                        basic_auth_user: Some("admin".into()),
                        basic_auth_cleartext: true,
                        status: Some(401),
                        host: None,
                        url_digest: None,
                    },
                )
            })
            .collect();
        let alerts = run(&mut d, &events);
        assert_eq!(alerts.len(), 1);
        assert!(alerts[0].title.contains("http"));
    }

    #[test]
    fn admin_typos_and_real_ssh_work_stay_quiet() {
        let mut d = BruteForce::new(Config::default());
        let mut events = vec![
            ftp(0, "alice", false),
            ftp(5_000, "alice", false),
            ftp(9_000, "alice", true),
        ];
        // An admin's interactive ssh sessions move real data; scp of a log.
        events.extend((0..5).map(|i| {
            session(
                i * 60_000,
                "10.9.0.2",
                50000 + i as u16,
                "10.9.0.9",
                22,
                80_000,
                2_000_000,
            )
        }));
        assert!(run(&mut d, &events).is_empty());
    }
}
