//! Reads of password hashes and private keys by processes that have no business with them.
//! Account tools, login services and backup software read these files every day; the
//! allowlist keeps them quiet so an alert here means something.

use heir_model::{Alert, Category, Event, EventKind, Severity};
use serde::{Deserialize, Serialize};

use super::strings;
use crate::util::{basename, exe, glob, process_is};
use crate::{Detector, Kind, Spec};

const SPEC: Spec = Spec {
    rule: "host.credential_access",
    category: Category::CredentialAccess,
    owasp_iot: "I1",
    enisa: "Nefarious activity/abuse: identity theft (credential dumping)",
    attack: "T1003.008",
};

const KEYS: Spec = Spec {
    rule: "host.private_key_access",
    attack: "T1552.004",
    ..SPEC
};

/// Credential-access settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub enabled: bool,
    /// Password-hash files (glob patterns).
    pub hash_files: Vec<String>,
    /// Private key files (glob patterns); `*.pub` never matches.
    pub key_files: Vec<String>,
    /// Programs (basename or full path) allowed to read them: account management, login and
    /// audit tools.
    pub allowed: Vec<String>,
    /// Backup and copy tools, allowed only when a scheduler started them (an ancestor in
    /// `schedulers`, or the service manager as parent): the nightly backup is quiet, the same
    /// `tar` typed into a reverse shell is not.
    pub scheduled_only: Vec<String>,
    /// Schedulers and service managers that make `scheduled_only` tools legitimate.
    pub schedulers: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            enabled: true,
            hash_files: strings(&[
                "/etc/shadow",
                "/etc/shadow-",
                "/etc/gshadow",
                "/etc/gshadow-",
                "/etc/security/opasswd",
            ]),
            key_files: strings(&[
                "/root/.ssh/id_*",
                "/home/*/.ssh/id_*",
                "/etc/ssh/ssh_host_*_key",
                "/etc/ssl/private/*",
                "*/.aws/credentials",
                "*/.gnupg/private-keys-v1.d/*",
            ]),
            allowed: strings(&[
                "sshd",
                "sshd-session",
                "sshd-auth",
                "login",
                "su",
                "sudo",
                "passwd",
                "chpasswd",
                "chage",
                "pwck",
                "grpck",
                "useradd",
                "usermod",
                "userdel",
                "groupadd",
                "groupmod",
                "newusers",
                "vipw",
                "unix_chkpwd",
                "cron",
                "systemd",
                "systemd-logind",
                "polkitd",
                "sssd",
                "nscd",
                "lynis",
                "aide",
                "ssh",
                "ssh-add",
                "ssh-agent",
                "ssh-keygen",
                "ssh-keysign",
                "dpkg",
                "apt",
                "apt-get",
                "nginx",
                "apache2",
                "openvpn",
                "mosquitto",
                "Orthanc",
                "heir",
            ]),
            scheduled_only: strings(&[
                "rsync",
                "borg",
                "restic",
                "duplicity",
                "bacula-fd",
                "rsnapshot",
                "tar",
                "cp",
                "cpio",
                "zip",
                "gzip",
            ]),
            schedulers: strings(&[
                "cron",
                "crond",
                "anacron",
                "atd",
                "systemd",
                "init",
                "backup-manager",
            ]),
        }
    }
}

pub struct CredentialAccess {
    cfg: Config,
}

impl CredentialAccess {
    pub fn new(cfg: Config) -> Self {
        Self { cfg }
    }
}

impl CredentialAccess {
    fn scheduled(&self, p: &heir_model::Process) -> bool {
        if !process_is(p, &self.cfg.scheduled_only) {
            return false;
        }
        let is_scheduler = |exe: &str| self.cfg.schedulers.iter().any(|s| s == basename(exe));
        let Some(info) = p.info.as_ref() else {
            return false;
        };
        // The service manager as direct parent (a timer unit), or a cron-like ancestor
        // anywhere; pid 1 further up is everyone's ancestor and proves nothing.
        info.lineage.first().is_some_and(|a| is_scheduler(&a.exe))
            || info
                .lineage
                .iter()
                .filter(|a| a.pid != 1)
                .any(|a| is_scheduler(&a.exe))
    }
}

impl Detector for CredentialAccess {
    fn name(&self) -> &'static str {
        "credential_access"
    }

    fn kinds(&self) -> &'static [Kind] {
        &[Kind::Open]
    }

    fn inspect(&mut self, ev: &Event, out: &mut Vec<Alert>) {
        let EventKind::Open { path, ret, .. } = &ev.kind else {
            return;
        };
        let hash = self.cfg.hash_files.iter().any(|p| glob(p, path));
        let key =
            !hash && !path.ends_with(".pub") && self.cfg.key_files.iter().any(|p| glob(p, path));
        if !hash && !key {
            return;
        }
        if process_is(&ev.process, &self.cfg.allowed) || self.scheduled(&ev.process) {
            return;
        }
        let spec = if hash { SPEC } else { KEYS };
        let what = if hash {
            "password hashes"
        } else {
            "a private key"
        };
        let (severity, verb, confidence) = if *ret >= 0 {
            (Severity::High, "read", 0.85)
        } else {
            (Severity::Low, "tried to read", 0.5)
        };
        let mut a = spec.process_alert(
            ev,
            format!("{} {verb} {what} ({path})", exe(&ev.process)),
            severity,
            confidence,
        );
        a.evidence.push(format!(
            "{} (pid {}, uid {}) opened {path}, ret {ret}",
            exe(&ev.process),
            ev.process.pid,
            ev.process.uid
        ));
        if let Some(p) = crate::util::parent_exe(&ev.process) {
            a.evidence.push(format!("parent: {p}"));
        }
        out.push(a);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detectors::fixtures::*;

    #[test]
    fn attacker_dumps_shadow_and_keys() {
        let mut d = CredentialAccess::new(Config::default());
        let cat = proc_(900, 899, 0, "cat", "/usr/bin/cat", "/usr/bin/bash");
        let py = proc_(
            901,
            899,
            0,
            "python3",
            "/usr/bin/python3.11",
            "/usr/bin/bash",
        );
        let www = proc_(902, 899, 33, "cat", "/usr/bin/cat", "/usr/sbin/apache2");
        let tar = proc_(903, 899, 0, "tar", "/usr/bin/tar", "/usr/bin/bash");
        let events = [
            open(0, cat, "/etc/shadow", 0),
            open(1, py, "/root/.ssh/id_ed25519", 0),
            ev(
                2,
                www,
                EventKind::Open {
                    path: "/etc/shadow".into(),
                    flags: 0,
                    ret: -13,
                },
            ),
            open(3, tar, "/etc/shadow", 0),
        ];
        let alerts = run(&mut d, &events);
        assert_eq!(alerts.len(), 4, "a backup tool run by hand is not a backup");
        assert_eq!(alerts[0].rule, "host.credential_access");
        assert_eq!(alerts[1].rule, "host.private_key_access");
        assert_eq!(alerts[2].severity, Severity::Low);
        assert_complete(&alerts);
    }

    #[test]
    fn account_audit_backup_and_logins_stay_quiet() {
        let mut d = CredentialAccess::new(Config::default());
        let events = [
            open(
                0,
                proc_(10, 9, 0, "pwck", "/usr/sbin/pwck", "/usr/bin/bash"),
                "/etc/shadow",
                0,
            ),
            open(
                1,
                proc_(11, 9, 0, "chage", "/usr/bin/chage", "/usr/bin/bash"),
                "/etc/shadow",
                0,
            ),
            open(
                2,
                proc_(12, 11, 0, "rsync", "/usr/bin/rsync", "/usr/sbin/cron"),
                "/etc/shadow",
                0,
            ),
            open(
                2,
                proc_(17, 1, 0, "tar", "/usr/bin/tar", "/lib/systemd/systemd"),
                "/etc/shadow",
                0,
            ),
            open(
                3,
                proc_(13, 1, 0, "sshd", "/usr/sbin/sshd", "/sbin/init"),
                "/etc/ssh/ssh_host_ed25519_key",
                0,
            ),
            open(
                4,
                proc_(
                    14,
                    9,
                    1000,
                    "unix_chkpwd",
                    "/usr/sbin/unix_chkpwd",
                    "/usr/bin/sudo",
                ),
                "/etc/shadow",
                0,
            ),
            open(
                5,
                proc_(15, 9, 1000, "cat", "/usr/bin/cat", "/usr/bin/bash"),
                "/home/alice/.ssh/id_ed25519.pub",
                0,
            ),
            open(
                6,
                proc_(16, 9, 1000, "cat", "/usr/bin/cat", "/usr/bin/bash"),
                "/etc/passwd",
                0,
            ),
        ];
        assert!(run(&mut d, &events).is_empty());
    }
}
