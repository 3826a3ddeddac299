//! Privilege escalation: a process that was not root becomes root (setuid family to 0, an
//! exec gaining euid 0 through a setuid binary, capabilities raised) outside the setuid
//! programs a system ships for exactly that.
//!
//! A root process shedding privileges is the opposite. `setpriv --reuid=nobody`, `runuser` and
//! package maintainer scripts switch to a lower uid first and then set the capabilities they
//! keep; capset can only narrow what the process already holds, so a capset by a process that
//! was root a moment ago gains nothing. The detector remembers which processes it saw as root
//! (and what they forked) for that reason.

use std::collections::HashMap;

use heir_model::{Alert, Category, Event, EventKind, Severity};
use serde::{Deserialize, Serialize};

use super::strings;
use crate::util::{bound, exe, process_is};
use crate::{Detector, Kind, Spec};

const SPEC: Spec = Spec {
    rule: "host.privilege_escalation",
    category: Category::PrivilegeEscalation,
    owasp_iot: "I5",
    enisa: "Nefarious activity/abuse: abuse of privileges",
    attack: "T1548.001",
};

/// CAP_SETUID, CAP_SYS_MODULE, CAP_SYS_PTRACE, CAP_SYS_ADMIN, CAP_DAC_OVERRIDE.
const DANGEROUS_CAPS: u64 = (1 << 7) | (1 << 16) | (1 << 19) | (1 << 21) | (1 << 1);

/// Privilege-escalation settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub enabled: bool,
    /// Programs (basename or full path) that legitimately become root.
    pub setuid_programs: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            enabled: true,
            setuid_programs: strings(&[
                "sudo",
                "su",
                "passwd",
                "pkexec",
                "newgrp",
                "chsh",
                "chfn",
                "gpasswd",
                "mount",
                "umount",
                "fusermount",
                "fusermount3",
                "ping",
                "unix_chkpwd",
                "ssh-keysign",
                "Xorg",
                "dbus-daemon-launch-helper",
                "polkit-agent-helper-1",
                "sshd",
                "login",
                "cron",
                "crond",
                "atd",
                "systemd",
                "systemd-logind",
                "doas",
                "sudoedit",
            ]),
        }
    }
}

/// How long a process seen as root is remembered as one that may shed privileges.
const SHED_WINDOW_NS: u64 = 600 * 1_000_000_000;
const MAX_TRACKED: usize = 65_536;

pub struct PrivilegeEscalation {
    cfg: Config,
    /// pid → when it was last seen with uid or euid 0 (itself or the parent that forked it).
    was_root: HashMap<u32, u64>,
}

impl PrivilegeEscalation {
    pub fn new(cfg: Config) -> Self {
        Self {
            cfg,
            was_root: HashMap::new(),
        }
    }

    fn remember_root(&mut self, pid: u32, now: u64) {
        bound(&mut self.was_root, MAX_TRACKED, |_, t| {
            now.saturating_sub(*t) < SHED_WINDOW_NS
        });
        self.was_root.insert(pid, now);
    }

    /// Whether `pid` ran as root recently enough that its capabilities are what is left.
    fn sheds(&self, pid: u32, now: u64) -> bool {
        self.was_root
            .get(&pid)
            .is_some_and(|t| now.saturating_sub(*t) < SHED_WINDOW_NS)
    }
}

impl Detector for PrivilegeEscalation {
    fn name(&self) -> &'static str {
        "privilege_escalation"
    }

    fn kinds(&self) -> &'static [Kind] {
        &[
            Kind::CredChange,
            Kind::Exec,
            Kind::Capset,
            Kind::Fork,
            Kind::Exit,
        ]
    }

    fn inspect(&mut self, ev: &Event, out: &mut Vec<Alert>) {
        let p = &ev.process;
        let now = ev.ts.as_nanos();
        let was_root = p.uid == 0;
        let privileged = p.uid == 0 || p.euid == 0;
        match &ev.kind {
            EventKind::Fork { child_pid } => {
                if privileged {
                    self.remember_root(*child_pid, now);
                }
                return;
            }
            EventKind::Exit { .. } => {
                self.was_root.remove(&p.pid);
                return;
            }
            _ => {}
        }
        let shedding = self.sheds(p.pid, now);
        if privileged {
            self.remember_root(p.pid, now);
        }
        let evidence = match &ev.kind {
            EventKind::CredChange {
                call,
                real,
                effective,
                saved,
                ret,
            } if *ret == 0 && !was_root => {
                if ![real, effective, saved].iter().any(|v| **v == Some(0)) {
                    return;
                }
                format!(
                    "{call:?} to uid 0 succeeded for pid {} (uid {} → 0)",
                    p.pid, p.uid
                )
            }
            EventKind::Exec { filename, ret, .. } if *ret == 0 && p.euid == 0 && !was_root => {
                format!(
                    "exec of {filename} runs with euid 0 for uid {} (setuid binary)",
                    p.uid
                )
            }
            EventKind::Capset { effective, ret, .. }
                if *ret == 0 && !was_root && !shedding && effective & DANGEROUS_CAPS != 0 =>
            {
                format!(
                    "capset raised effective capabilities to 0x{effective:x} for uid {}",
                    p.uid
                )
            }
            _ => return,
        };
        if process_is(p, &self.cfg.setuid_programs) {
            return;
        }
        let mut a = SPEC.process_alert(
            ev,
            format!("{} gained root (uid {} → 0)", exe(p), p.uid),
            Severity::Critical,
            0.85,
        );
        a.evidence.push(evidence);
        if let Some(parent) = crate::util::parent_exe(p) {
            a.evidence.push(format!("parent: {parent}"));
        }
        out.push(a);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detectors::fixtures::*;
    use heir_model::event::CredCall;

    fn setuid0(ms: u64, p: heir_model::Process) -> heir_model::Event {
        ev(
            ms,
            p,
            EventKind::CredChange {
                call: CredCall::Setuid,
                real: Some(0),
                effective: Some(0),
                saved: None,
                ret: 0,
            },
        )
    }

    #[test]
    fn exploit_setuid0_and_suid_find_fire() {
        let mut d = PrivilegeEscalation::new(Config::default());
        let exploit = proc_(
            1000,
            999,
            1001,
            "cve-2021-4034",
            "/tmp/.x/pwn",
            "/usr/bin/bash",
        );
        let mut find = proc_(1001, 999, 1001, "find", "/usr/bin/find", "/usr/bin/bash");
        find.euid = 0;
        let alerts = run(
            &mut d,
            &[
                setuid0(0, exploit),
                exec(
                    1,
                    find,
                    "/usr/bin/find",
                    &["find", ".", "-exec", "/bin/sh", "-p", ";"],
                ),
            ],
        );
        assert_eq!(alerts.len(), 2);
        assert_complete(&alerts);
    }

    #[test]
    fn sudo_and_daemons_dropping_privileges_stay_quiet() {
        let mut d = PrivilegeEscalation::new(Config::default());
        let mut sudo = proc_(10, 9, 1000, "sudo", "/usr/bin/sudo", "/usr/bin/bash");
        sudo.euid = 0;
        let nginx = proc_(11, 1, 0, "nginx", "/usr/sbin/nginx", "/sbin/init");
        let drop = ev(
            2,
            nginx,
            EventKind::CredChange {
                call: CredCall::Setuid,
                real: Some(33),
                effective: Some(33),
                saved: Some(33),
                ret: 0,
            },
        );
        let failed = ev(
            3,
            proc_(12, 9, 1000, "x", "/tmp/x", "/usr/bin/bash"),
            EventKind::CredChange {
                call: CredCall::Setuid,
                real: Some(0),
                effective: Some(0),
                saved: None,
                ret: -1,
            },
        );
        let alerts = run(
            &mut d,
            &[
                exec(
                    0,
                    sudo.clone(),
                    "/usr/bin/sudo",
                    &["sudo", "systemctl", "restart", "nginx"],
                ),
                setuid0(1, sudo),
                drop,
                failed,
            ],
        );
        assert!(alerts.is_empty(), "{alerts:#?}");
    }

    fn capset(ms: u64, p: heir_model::Process) -> heir_model::Event {
        ev(
            ms,
            p,
            EventKind::Capset {
                effective: 0x1ff_feff_ffff,
                permitted: 0x1ff_feff_ffff,
                inheritable: 0,
                ret: 0,
            },
        )
    }

    #[test]
    fn a_root_process_dropping_to_nobody_sheds_and_never_gains() {
        let mut d = PrivilegeEscalation::new(Config::default());
        // setpriv --reuid=65534: exec as root, setresuid, then capset as uid 65534.
        let root = proc_(40, 39, 0, "setpriv", "/usr/bin/setpriv", "/usr/bin/bash");
        let dropped = proc_(
            40,
            39,
            65534,
            "setpriv",
            "/usr/bin/setpriv",
            "/usr/bin/bash",
        );
        // A maintainer script's child: forked by root, switched before its first own event.
        let postinst = proc_(50, 1, 0, "sh", "/usr/bin/dash", "/usr/bin/dpkg");
        let child = proc_(51, 50, 6, "sh", "/usr/bin/dash", "/usr/bin/dash");
        let events = [
            exec(
                0,
                root,
                "/usr/bin/setpriv",
                &["setpriv", "--reuid=65534", "id"],
            ),
            capset(1, dropped),
            ev(2, postinst, EventKind::Fork { child_pid: 51 }),
            capset(3, child),
        ];
        let alerts = run(&mut d, &events);
        assert!(alerts.is_empty(), "{alerts:#?}");
    }

    #[test]
    fn a_capset_by_a_process_never_seen_as_root_still_fires() {
        let mut d = PrivilegeEscalation::new(Config::default());
        let user = proc_(60, 59, 1000, "pwn", "/tmp/pwn", "/usr/bin/bash");
        let alerts = run(&mut d, &[capset(0, user)]);
        assert_eq!(alerts.len(), 1, "{alerts:#?}");
    }
}
