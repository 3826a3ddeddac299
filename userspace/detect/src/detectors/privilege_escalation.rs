//! Privilege escalation: a process that was not root becomes root (setuid family to 0, an
//! exec gaining euid 0 through a setuid binary, capabilities raised) outside the setuid
//! programs a system ships for exactly that.

use heir_model::{Alert, Category, Event, EventKind, Severity};
use serde::{Deserialize, Serialize};

use super::strings;
use crate::util::{exe, process_is};
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

pub struct PrivilegeEscalation {
    cfg: Config,
}

impl PrivilegeEscalation {
    pub fn new(cfg: Config) -> Self {
        Self { cfg }
    }
}

impl Detector for PrivilegeEscalation {
    fn name(&self) -> &'static str {
        "privilege_escalation"
    }

    fn kinds(&self) -> &'static [Kind] {
        &[Kind::CredChange, Kind::Exec, Kind::Capset]
    }

    fn inspect(&mut self, ev: &Event, out: &mut Vec<Alert>) {
        let p = &ev.process;
        let was_root = p.uid == 0;
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
                if *ret == 0 && !was_root && effective & DANGEROUS_CAPS != 0 =>
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
}
