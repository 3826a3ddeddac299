//! Ransomware: one process (or one shell loop of short-lived helpers) encrypting many files in
//! a burst. The tell-tale pattern is not "many writes" (package managers and PACS receivers do
//! that all day) but many files replaced by a new version of themselves: renamed to an appended
//! extension, an encrypted copy written next to the original that is then deleted, or a fresh
//! file renamed over the original.

use std::collections::{HashMap, HashSet};

use heir_model::{Alert, Category, Event, EventKind, Severity};
use serde::{Deserialize, Serialize};

use super::strings;
use crate::rules::field::open_writes;
use crate::util::{bound, exe, process_is, secs_to_ns};
use crate::{Detector, Kind, Spec};

const SPEC: Spec = Spec {
    rule: "host.ransomware",
    category: Category::Ransomware,
    owasp_iot: "I5",
    enisa: "Nefarious activity/abuse: ransomware",
    attack: "T1486",
};

/// Ransomware settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub enabled: bool,
    pub window_secs: u64,
    /// Files replaced by an encrypted-looking version within the window that make an incident.
    pub min_files: usize,
    /// Kernel-aggregated bursts: renames plus unlinks in one burst that make an incident.
    pub burst_replacements: u32,
    /// Programs whose bulk file replacement is expected.
    pub allowed: Vec<String>,
    /// Temporary suffixes whose removal by rename is an ordinary atomic save.
    pub temp_suffixes: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            enabled: true,
            window_secs: 60,
            min_files: 20,
            burst_replacements: 100,
            allowed: strings(&[
                "dpkg",
                "apt",
                "apt-get",
                "unattended-upgr",
                "rpm",
                "dnf",
                "yum",
                "pip",
                "pip3",
                "npm",
                "cargo",
                "rustc",
                "git",
                "rsync",
                "logrotate",
                "storescp",
                "Orthanc",
                "postgres",
                "mysqld",
                "updatedb",
                "mandb",
            ]),
            temp_suffixes: strings(&[
                ".tmp",
                ".temp",
                ".part",
                ".new",
                ".dpkg-new",
                ".dpkg-tmp",
                ".swp",
                "~",
                ".bak",
                ".partial",
                ".crdownload",
                ".lock",
            ]),
        }
    }
}

#[derive(Default)]
struct Actor {
    first: u64,
    last: u64,
    /// Files written recently, for matching "encrypted copy, then delete the original".
    written: HashMap<String, u64>,
    replaced: HashSet<String>,
    extensions: HashMap<String, u32>,
    samples: Vec<String>,
    alerted: bool,
    exe: String,
    pid: u32,
}

/// One actor's kernel burst reports within the detector's window. The kernel reports a
/// window's counts so far when they reach its threshold and each time they double; a report
/// whose total is not above the previous one opens the next kernel window.
#[derive(Default)]
struct Bursts {
    last: u64,
    /// writes, renames, unlinks of the kernel windows already over.
    done: [u32; 3],
    /// The latest report of the current kernel window.
    current: [u32; 3],
    alerted: bool,
}

fn total(c: &[u32; 3]) -> u32 {
    c.iter().fold(0u32, |t, n| t.saturating_add(*n))
}

pub struct Ransomware {
    cfg: Config,
    actors: HashMap<u32, Actor>,
    /// (pid, counted over its children) → its bursts.
    bursts: HashMap<(u32, bool), Bursts>,
}

impl Ransomware {
    pub fn new(cfg: Config) -> Self {
        Self {
            cfg,
            actors: HashMap::new(),
            bursts: HashMap::new(),
        }
    }

    /// A kernel burst report, wherever the files are: the watch list decides which paths
    /// reach userspace, not which bursts do. Mass replacement is many renames and unlinks
    /// with writes beside them; deleting a tree (no writes) or copying one (no replacements)
    /// is not it.
    fn burst(
        &mut self,
        ev: &Event,
        counts: [u32; 3],
        window_ms: u32,
        children: bool,
        out: &mut Vec<Alert>,
    ) {
        let p = &ev.process;
        let parent = crate::util::parent_exe(p);
        let (pid, who) = if children {
            // A package manager's maintainer scripts replace files by the hundred.
            if parent.is_some_and(|e| {
                let name = crate::util::basename(e);
                self.cfg.allowed.iter().any(|a| a == name)
            }) {
                return;
            }
            (
                p.ppid,
                format!("the children of {}", parent.unwrap_or("its parent")),
            )
        } else {
            (p.pid, exe(p).to_owned())
        };
        if pid <= 1 {
            return;
        }
        let now = ev.ts.as_nanos();
        let window = secs_to_ns(self.cfg.window_secs);
        bound(&mut self.bursts, 65_536, |_, b| {
            now.saturating_sub(b.last) < window
        });
        let b = self.bursts.entry((pid, children)).or_default();
        if now.saturating_sub(b.last) > window {
            *b = Bursts::default();
        }
        b.last = now;
        if total(&counts) <= total(&b.current) {
            for (d, c) in b.done.iter_mut().zip(b.current) {
                *d = d.saturating_add(c);
            }
        }
        b.current = counts;
        let [writes, renames, unlinks] = [0, 1, 2].map(|i| b.done[i].saturating_add(b.current[i]));
        let replacements = renames.saturating_add(unlinks);
        if b.alerted || replacements < self.cfg.burst_replacements || writes < replacements / 2 {
            return;
        }
        b.alerted = true;
        let mut a = SPEC.process_alert(
            ev,
            format!("Mass file replacement by {who} (pid {pid})"),
            Severity::High,
            0.7,
        );
        a.pid = Some(pid);
        if children {
            a.comm = parent.map(|e| crate::util::basename(e).to_owned());
        }
        a.count = u64::from(replacements);
        a.evidence.push(format!(
            "kernel bursts: {writes} writes, {renames} renames, {unlinks} unlinks (windows of {window_ms} ms, within {} s)",
            self.cfg.window_secs
        ));
        if children {
            a.evidence.push(format!(
                "counted over the children of pid {pid}, e.g. {} (pid {})",
                exe(p),
                p.pid
            ));
        }
        out.push(a);
    }

    fn is_temp(&self, suffix: &str) -> bool {
        self.cfg
            .temp_suffixes
            .iter()
            .any(|t| suffix.ends_with(t.as_str()))
            || suffix.starts_with(".#")
            || suffix.len() > 24
    }

    /// Records that `file` was replaced, under the process and its parent (shell loops run one
    /// helper process per file).
    fn replaced(&mut self, ev: &Event, file: &str, ext: &str, out: &mut Vec<Alert>) {
        let now = ev.ts.as_nanos();
        let window = secs_to_ns(self.cfg.window_secs);
        let keys = [ev.process.pid, ev.process.ppid];
        let already = keys.iter().any(|k| {
            self.actors
                .get(k)
                .is_some_and(|a| a.alerted && now.saturating_sub(a.last) <= window)
        });
        for (i, key) in keys.into_iter().enumerate() {
            if key <= 1 || (i == 1 && key == ev.process.pid) {
                continue;
            }
            let a = self.actors.entry(key).or_default();
            if now.saturating_sub(a.last) > window
                || (!a.alerted && now.saturating_sub(a.first) > window)
            {
                *a = Actor {
                    first: now,
                    ..Actor::default()
                };
            }
            if already {
                a.alerted = true;
            }
            a.last = now;
            // Count originals, not names: `f.pdf`, `f.pdf.enc` and `f.pdf.locked` are one file.
            if a.replaced.len() < 100_000 && a.replaced.insert(stem(file).to_owned()) {
                *a.extensions.entry(ext.to_owned()).or_default() += 1;
                if a.samples.len() < 5 {
                    a.samples.push(file.to_owned());
                }
            }
            if a.exe.is_empty() || i == 0 {
                a.exe = if i == 0 {
                    exe(&ev.process).to_owned()
                } else {
                    crate::util::parent_exe(&ev.process)
                        .unwrap_or("parent")
                        .to_owned()
                };
                a.pid = key;
            }
            if !a.alerted && a.replaced.len() >= self.cfg.min_files {
                a.alerted = true;
                let secs = (a.last.saturating_sub(a.first) as f64 / 1e9).max(0.001);
                let (top_ext, n) = a
                    .extensions
                    .iter()
                    .max_by_key(|(_, n)| **n)
                    .map(|(e, n)| (e.clone(), *n))
                    .unwrap_or_default();
                let mut al = SPEC.alert(
                    ev.ts,
                    format!(
                        "Ransomware-like mass encryption by {} (pid {})",
                        a.exe, a.pid
                    ),
                    Severity::Critical,
                    0.9,
                );
                al.pid = Some(a.pid);
                al.comm = Some(crate::util::basename(&a.exe).to_owned());
                al.count = a.replaced.len() as u64;
                al.evidence.push(format!(
                    "{} files replaced by new versions of themselves in {secs:.1}s",
                    a.replaced.len()
                ));
                if !top_ext.is_empty() {
                    al.evidence
                        .push(format!("{n} of them now end in `{top_ext}`"));
                }
                al.evidence.push(format!("e.g. {}", a.samples.join(", ")));
                out.push(al);
                for k in keys {
                    if let Some(other) = self.actors.get_mut(&k) {
                        other.alerted = true;
                    }
                }
                return;
            }
        }
    }
}

/// The path up to the first `.` of its file name.
fn stem(path: &str) -> &str {
    let name_at = path.rfind('/').map_or(0, |i| i + 1);
    match path[name_at..].find('.') {
        Some(0) | None => path,
        Some(i) => &path[..name_at + i],
    }
}

/// `to` = `from` + suffix → the suffix.
fn appended<'a>(from: &str, to: &'a str) -> Option<&'a str> {
    to.strip_prefix(from)
        .filter(|s| s.starts_with('.') && s.len() > 1)
}

fn extension(path: &str) -> &str {
    let name = crate::util::basename(path);
    name.rfind('.').map_or("", |i| &name[i..])
}

impl Detector for Ransomware {
    fn name(&self) -> &'static str {
        "ransomware"
    }

    fn kinds(&self) -> &'static [Kind] {
        &[
            Kind::Open,
            Kind::Rename,
            Kind::Unlink,
            Kind::FileBurst,
            Kind::Exit,
        ]
    }

    fn inspect(&mut self, ev: &Event, out: &mut Vec<Alert>) {
        if process_is(&ev.process, &self.cfg.allowed) {
            return;
        }
        let now = ev.ts.as_nanos();
        let window = secs_to_ns(self.cfg.window_secs);
        bound(&mut self.actors, 65_536, |_, a| {
            now.saturating_sub(a.last) < window
        });
        match &ev.kind {
            EventKind::Open { path, flags, ret } if *ret >= 0 && open_writes(*flags) => {
                for key in [ev.process.pid, ev.process.ppid] {
                    if key <= 1 {
                        continue;
                    }
                    let a = self.actors.entry(key).or_default();
                    if a.first == 0 {
                        a.first = now;
                    }
                    a.last = now;
                    if a.written.len() >= 4096 {
                        a.written.retain(|_, t| now.saturating_sub(*t) < window);
                        if a.written.len() >= 4096 {
                            a.written.clear();
                        }
                    }
                    a.written.insert(path.clone(), now);
                }
            }
            EventKind::Rename { from, to, ret } if *ret >= 0 => {
                if let Some(suffix) = appended(from, to) {
                    if !self.is_temp(suffix) {
                        self.replaced(ev, from, suffix, out);
                    }
                } else if let Some(suffix) = appended(to, from) {
                    // A new file renamed over the original: fine for editors' temp files,
                    // not for `f.enc` → `f`.
                    if !self.is_temp(suffix) {
                        self.replaced(ev, to, suffix, out);
                    }
                } else if crate::util::basename(from) != crate::util::basename(to)
                    && extension(to) != extension(from)
                    && !self.is_temp(extension(from))
                {
                    let ext = extension(to).to_owned();
                    if !ext.is_empty() && !self.is_temp(&ext) {
                        self.replaced(ev, from, &ext, out);
                    }
                }
            }
            EventKind::Unlink { path, ret } if *ret >= 0 => {
                let copy = [ev.process.pid, ev.process.ppid]
                    .into_iter()
                    .filter(|k| *k > 1)
                    .find_map(|k| {
                        let a = self.actors.get(&k)?;
                        a.written.iter().find_map(|(w, t)| {
                            (now.saturating_sub(*t) < window)
                                .then(|| appended(path, w).map(str::to_owned))
                                .flatten()
                        })
                    });
                if let Some(suffix) = copy
                    && !self.is_temp(&suffix)
                {
                    self.replaced(ev, path, &suffix, out);
                }
            }
            EventKind::FileBurst {
                writes,
                renames,
                unlinks,
                window_ms,
                children,
            } => self.burst(
                ev,
                [*writes, *renames, *unlinks],
                *window_ms,
                *children,
                out,
            ),
            EventKind::Exit { .. } => {
                if let Some(a) = self.actors.get(&ev.process.pid)
                    && !a.alerted
                    && a.replaced.is_empty()
                {
                    self.actors.remove(&ev.process.pid);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detectors::fixtures::*;

    const CREAT: u32 = 0o1 | 0o100 | 0o1000;

    #[test]
    fn openssl_enc_loop_then_renames_fires_once() {
        // for f in docs/*; do openssl enc -aes-256-cbc -pbkdf2 -in $f -out $f.enc -pass pass:x; mv $f.enc $f.locked; rm $f; done
        let mut d = Ransomware::new(Config::default());
        let mut events = Vec::new();
        let mut pid = 3000;
        for i in 0..60u64 {
            let f = format!("/srv/reports/report-{i:03}.pdf");
            let t = i * 120;
            let openssl = proc_(
                pid,
                2999,
                1000,
                "openssl",
                "/usr/bin/openssl",
                "/usr/bin/bash",
            );
            events.push(exec(
                t,
                openssl.clone(),
                "/usr/bin/openssl",
                &[
                    "openssl",
                    "enc",
                    "-aes-256-cbc",
                    "-in",
                    &f,
                    "-out",
                    &format!("{f}.enc"),
                ],
            ));
            events.push(open(t + 1, openssl.clone(), &f, 0));
            events.push(open(t + 2, openssl.clone(), &format!("{f}.enc"), CREAT));
            events.push(ev(
                t + 3,
                openssl,
                EventKind::Exit {
                    code: 0,
                    signal: None,
                },
            ));
            let mv = proc_(pid + 1, 2999, 1000, "mv", "/usr/bin/mv", "/usr/bin/bash");
            events.push(ev(
                t + 4,
                mv,
                EventKind::Rename {
                    from: format!("{f}.enc"),
                    to: format!("{f}.locked"),
                    ret: 0,
                },
            ));
            let rm = proc_(pid + 2, 2999, 1000, "rm", "/usr/bin/rm", "/usr/bin/bash");
            events.push(ev(
                t + 5,
                rm,
                EventKind::Unlink {
                    path: f.clone(),
                    ret: 0,
                },
            ));
            pid += 3;
        }
        let alerts = run(&mut d, &events);
        assert_eq!(alerts.len(), 1, "{alerts:#?}");
        assert_eq!(
            alerts[0].pid,
            Some(2999),
            "attributed to the shell running the loop"
        );
        assert!(
            alerts[0].evidence.iter().any(|e| e.contains(".enc")),
            "{:?}",
            alerts[0].evidence
        );
        assert_complete(&alerts);
    }

    #[test]
    fn in_process_rename_to_locked_extension_fires() {
        let mut d = Ransomware::new(Config::default());
        let p = proc_(
            4000,
            3999,
            0,
            "python3",
            "/usr/bin/python3.11",
            "/usr/bin/bash",
        );
        let events: Vec<_> = (0..25)
            .map(|i| {
                ev(
                    i * 10,
                    p.clone(),
                    EventKind::Rename {
                        from: format!("/data/dicom/{i}.dcm"),
                        to: format!("/data/dicom/{i}.dcm.hive"),
                        ret: 0,
                    },
                )
            })
            .collect();
        assert_eq!(run(&mut d, &events).len(), 1);
    }

    #[test]
    fn kernel_burst_of_replacements_fires() {
        let mut d = Ransomware::new(Config::default());
        let p = proc_(4100, 4099, 0, "lockbit", "/tmp/lb", "/usr/bin/bash");
        let alerts = run(
            &mut d,
            &[ev(
                0,
                p,
                EventKind::FileBurst {
                    writes: 320,
                    renames: 300,
                    unlinks: 20,
                    window_ms: 2000,
                    children: false,
                },
            )],
        );
        assert_eq!(alerts.len(), 1);
        assert!(alerts[0].evidence[0].contains("300 renames"));
        assert_complete(&alerts);
    }

    #[test]
    fn a_shell_loops_children_replacing_files_over_several_windows_fire() {
        let mut d = Ransomware::new(Config::default());
        let mut events = Vec::new();
        // Each kernel window reports at 64 and 128: writes and unlinks alike, one helper per
        // file, so no one process reaches anything.
        for w in 0..3u64 {
            for (i, n) in [64u32, 128].into_iter().enumerate() {
                let helper = proc_(
                    6000 + (w * 2 + i as u64) as u32,
                    5999,
                    0,
                    "rm",
                    "/usr/bin/rm",
                    "/usr/bin/bash",
                );
                events.push(ev(
                    w * 2000 + i as u64 * 100,
                    helper,
                    EventKind::FileBurst {
                        writes: n / 2,
                        renames: 0,
                        unlinks: n / 2,
                        window_ms: 1000,
                        children: true,
                    },
                ));
            }
        }
        let alerts = run(&mut d, &events);
        assert_eq!(alerts.len(), 1, "{alerts:#?}");
        assert_eq!(alerts[0].pid, Some(5999), "the loop, not one helper");
        assert_eq!(alerts[0].count, 128, "64 unlinks from each of two windows");
        // Deleting a tree is not encrypting it: unlinks without writes.
        let mut d = Ransomware::new(Config::default());
        let rm = proc_(7001, 7000, 0, "rm", "/usr/bin/rm", "/usr/bin/bash");
        let cleanup = [ev(
            0,
            rm,
            EventKind::FileBurst {
                writes: 0,
                renames: 0,
                unlinks: 4096,
                window_ms: 1000,
                children: false,
            },
        )];
        assert!(run(&mut d, &cleanup).is_empty());
    }

    #[test]
    fn package_install_editor_saves_and_tar_extract_stay_quiet() {
        let mut d = Ransomware::new(Config::default());
        let mut events = Vec::new();
        let dpkg = proc_(5000, 4999, 0, "dpkg", "/usr/bin/dpkg", "/usr/bin/apt-get");
        let installer = proc_(
            5001,
            4999,
            0,
            "install-firmware",
            "/opt/vendor/install",
            "/usr/bin/bash",
        );
        let tar = proc_(5002, 4999, 0, "tar", "/usr/bin/tar", "/usr/bin/bash");
        for i in 0..400u64 {
            let f = format!("/usr/share/app/f{i}.so");
            events.push(open(i, dpkg.clone(), &format!("{f}.dpkg-new"), CREAT));
            events.push(ev(
                i,
                dpkg.clone(),
                EventKind::Rename {
                    from: format!("{f}.dpkg-new"),
                    to: f.clone(),
                    ret: 0,
                },
            ));
            // A vendor installer doing the same atomic-save dance with .tmp files.
            events.push(open(
                i,
                installer.clone(),
                &format!("/opt/vendor/f{i}.bin.tmp"),
                CREAT,
            ));
            events.push(ev(
                i,
                installer.clone(),
                EventKind::Rename {
                    from: format!("/opt/vendor/f{i}.bin.tmp"),
                    to: format!("/opt/vendor/f{i}.bin"),
                    ret: 0,
                },
            ));
            events.push(open(
                i,
                tar.clone(),
                &format!("/srv/restore/f{i}.txt"),
                CREAT,
            ));
        }
        events.push(ev(
            500,
            tar,
            EventKind::FileBurst {
                writes: 400,
                renames: 0,
                unlinks: 0,
                window_ms: 1000,
                children: false,
            },
        ));
        let alerts = run(&mut d, &events);
        assert!(alerts.is_empty(), "{alerts:#?}");
    }
}
