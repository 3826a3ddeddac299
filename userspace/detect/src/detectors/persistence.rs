//! Persistence: writes to the places that make code run again after a reboot or a login
//! (cron, systemd units, init scripts, shell profiles, authorized_keys, ld.so.preload).

use heir_model::{Alert, Category, Event, EventKind, Severity};
use serde::{Deserialize, Serialize};

use super::strings;
use crate::rules::field::open_writes;
use crate::util::{exe, glob, process_is};
use crate::{Detector, Kind, Spec};

const SPEC: Spec = Spec {
    rule: "host.persistence",
    category: Category::Persistence,
    owasp_iot: "I5",
    enisa: "Nefarious activity/abuse: malicious code (persistence)",
    attack: "T1053.003",
};

/// Persistence settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub enabled: bool,
    /// Autostart locations (glob patterns).
    pub paths: Vec<String>,
    /// Programs allowed to change them: package managers and the service manager.
    pub allowed: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            enabled: true,
            paths: strings(&[
                "/etc/crontab",
                "/etc/anacrontab",
                "/var/spool/anacron/*",
                "/etc/cron.d/*",
                "/etc/cron.hourly/*",
                "/etc/cron.daily/*",
                "/etc/cron.weekly/*",
                "/etc/cron.monthly/*",
                "/var/spool/cron/*",
                "/etc/systemd/system/*",
                "/lib/systemd/system/*",
                "/usr/lib/systemd/system/*",
                "/etc/systemd/user/*",
                "/home/*/.config/systemd/user/*",
                "/etc/init.d/*",
                "/etc/rc.local",
                "/etc/rc.common",
                "/etc/rc?.d/*",
                "/etc/profile",
                "/etc/profile.d/*",
                "/etc/bash.bashrc",
                "/root/.bashrc",
                "/root/.profile",
                "/home/*/.bashrc",
                "/home/*/.profile",
                "/etc/ld.so.preload",
                "/root/.ssh/authorized_keys*",
                "/home/*/.ssh/authorized_keys*",
                "/etc/udev/rules.d/*",
                "/etc/update-motd.d/*",
            ]),
            allowed: strings(&[
                "dpkg",
                "apt",
                "apt-get",
                "unattended-upgr",
                "unattended-upgrade",
                "rpm",
                "dnf",
                "yum",
                "systemctl",
                "systemd",
                "debconf",
                "ucf",
                "update-rc.d",
                "deb-systemd-helper",
                "systemd-sysv-install",
                "heir",
            ]),
        }
    }
}

pub struct Persistence {
    cfg: Config,
}

impl Persistence {
    pub fn new(cfg: Config) -> Self {
        Self { cfg }
    }
}

/// The ATT&CK sub-technique of an autostart location, and how bad a change to it is.
fn technique(path: &str) -> (&'static str, Severity) {
    if path.starts_with("/var/spool/cron/atjobs") || path.starts_with("/var/spool/cron/atspool") {
        ("T1053.002", Severity::High)
    } else if path.contains("cron") {
        ("T1053.003", Severity::High)
    } else if path.contains("systemd") && path.ends_with(".timer") {
        ("T1053.006", Severity::High)
    } else if path.contains("systemd") {
        ("T1543.002", Severity::High)
    } else if path.contains("init.d") || path.starts_with("/etc/rc") {
        ("T1037.004", Severity::High)
    } else if path.contains("authorized_keys") {
        ("T1098.004", Severity::High)
    } else if path.ends_with("ld.so.preload") {
        ("T1574.006", Severity::Critical)
    } else if path.starts_with("/etc/udev/") {
        ("T1546.017", Severity::High)
    } else if path.starts_with("/etc/update-motd.d/") {
        ("T1037", Severity::Medium)
    } else {
        ("T1546.004", Severity::Medium)
    }
}

impl Detector for Persistence {
    fn name(&self) -> &'static str {
        "persistence"
    }

    fn kinds(&self) -> &'static [Kind] {
        &[Kind::Open, Kind::Rename]
    }

    fn inspect(&mut self, ev: &Event, out: &mut Vec<Alert>) {
        let path = match &ev.kind {
            EventKind::Open { path, flags, ret } if *ret >= 0 && open_writes(*flags) => path,
            EventKind::Rename { to, ret, .. } if *ret >= 0 => to,
            _ => return,
        };
        if !self.cfg.paths.iter().any(|p| glob(p, path))
            || process_is(&ev.process, &self.cfg.allowed)
        {
            return;
        }
        let p = &ev.process;
        let (attack, sev) = technique(path);
        let spec = Spec { attack, ..SPEC };
        let mut a = spec.process_alert(
            ev,
            format!("{} wrote autostart location {path}", exe(p)),
            sev,
            0.8,
        );
        a.evidence.push(format!(
            "{} (pid {}, uid {}) wrote {path}",
            exe(p),
            p.pid,
            p.uid
        ));
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

    const WRONLY_CREAT_TRUNC: u32 = 0o1 | 0o100 | 0o1000;

    #[test]
    fn cron_drop_and_rogue_unit_fire_package_install_is_quiet() {
        let mut d = Persistence::new(Config::default());
        let sh = proc_(80, 79, 0, "bash", "/usr/bin/bash", "/usr/bin/python3");
        let events = [
            open(0, sh.clone(), "/etc/cron.d/updater", WRONLY_CREAT_TRUNC),
            ev(
                1,
                sh.clone(),
                EventKind::Rename {
                    from: "/tmp/x.service".into(),
                    to: "/etc/systemd/system/x.service".into(),
                    ret: 0,
                },
            ),
            open(2, sh, "/etc/ld.so.preload", 0o2001),
        ];
        let alerts = run(&mut d, &events);
        assert_eq!(alerts.len(), 3);
        assert_eq!(alerts[1].taxonomy.attack.as_deref(), Some("T1543.002"));
        assert_eq!(alerts[2].severity, Severity::Critical);
        assert_complete(&alerts);
        let dpkg = proc_(90, 89, 0, "dpkg", "/usr/bin/dpkg", "/usr/bin/apt-get");
        let vi = proc_(91, 89, 0, "vi", "/usr/bin/vi", "/usr/bin/bash");
        let benign = [
            open(
                0,
                dpkg.clone(),
                "/lib/systemd/system/nginx.service.dpkg-new",
                WRONLY_CREAT_TRUNC,
            ),
            ev(
                1,
                dpkg,
                EventKind::Rename {
                    from: "/lib/systemd/system/nginx.service.dpkg-new".into(),
                    to: "/lib/systemd/system/nginx.service".into(),
                    ret: 0,
                },
            ),
            open(2, vi.clone(), "/etc/hosts", WRONLY_CREAT_TRUNC),
            open(3, vi, "/etc/crontab", 0),
        ];
        assert!(run(&mut d, &benign).is_empty());
    }

    #[test]
    fn each_autostart_location_carries_its_own_sub_technique() {
        for (path, attack) in [
            ("/etc/cron.d/updater", "T1053.003"),
            ("/etc/anacrontab", "T1053.003"),
            ("/var/spool/cron/crontabs/root", "T1053.003"),
            ("/var/spool/cron/atjobs/a0001", "T1053.002"),
            ("/etc/systemd/system/sync.timer", "T1053.006"),
            ("/etc/systemd/system/sync.service", "T1543.002"),
            ("/etc/rc.local", "T1037.004"),
            ("/etc/rc.common", "T1037.004"),
            ("/etc/init.d/pacs-sync", "T1037.004"),
            ("/root/.ssh/authorized_keys", "T1098.004"),
            ("/etc/ld.so.preload", "T1574.006"),
            ("/etc/udev/rules.d/99-usb.rules", "T1546.017"),
            ("/root/.bashrc", "T1546.004"),
        ] {
            assert_eq!(technique(path).0, attack, "{path}");
            assert!(
                Config::default().paths.iter().any(|p| glob(p, path)),
                "{path} is an autostart location"
            );
        }
    }
}
