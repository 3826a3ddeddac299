//! The process table: what is known about each live process, so every event carries the
//! executable, arguments and ancestry of the process behind it.
//!
//! Built from exec, fork and exit events as they pass, seeded from /proc for processes that
//! were running before the agent started (and looked up there lazily for any pid not yet
//! seen). One `Arc` per process is shared by all its events, so enriching costs a lookup and a
//! reference-count increment.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use heir_model::event::{Ancestor, ProcessInfo};
use heir_model::{Event, EventKind, Timestamp};

/// How many ancestors an event carries.
pub const LINEAGE_DEPTH: usize = 8;

#[derive(Debug, Clone)]
struct Entry {
    ppid: u32,
    exe: String,
    args: Vec<String>,
    started: Option<Timestamp>,
    /// Cached enrichment, rebuilt when the entry changes.
    info: Option<Arc<ProcessInfo>>,
}

/// Where unknown pids are looked up: the host's /proc, or nowhere (replay of recorded events
/// from another machine must not be enriched with this machine's processes).
#[derive(Debug, Clone)]
pub enum Lookup {
    Proc(std::path::PathBuf),
    None,
}

pub struct ProcessTable {
    entries: HashMap<u32, Entry>,
    lookup: Lookup,
    capacity: usize,
}

impl ProcessTable {
    pub fn new(lookup: Lookup) -> Self {
        ProcessTable {
            entries: HashMap::new(),
            lookup,
            capacity: 1 << 17,
        }
    }

    /// A table seeded from the live processes in `/proc`.
    pub fn from_proc() -> Self {
        let mut t = ProcessTable::new(Lookup::Proc("/proc".into()));
        if let Ok(dir) = std::fs::read_dir("/proc") {
            for d in dir.flatten() {
                if let Some(pid) = d.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) {
                    t.load(pid);
                }
            }
        }
        t
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn load(&mut self, pid: u32) -> bool {
        let Lookup::Proc(root) = &self.lookup else {
            return false;
        };
        let Some(entry) = read_proc(&root.join(pid.to_string())) else {
            return false;
        };
        self.insert(pid, entry);
        true
    }

    fn insert(&mut self, pid: u32, entry: Entry) {
        if self.entries.len() >= self.capacity && !self.entries.contains_key(&pid) {
            // A table this full means exits were missed; start over from /proc rather than
            // grow without bound.
            self.entries.clear();
        }
        self.entries.insert(pid, entry);
    }

    /// Updates the table from `event` and attaches what is known about its process.
    pub fn enrich(&mut self, event: &mut Event) {
        let pid = event.process.pid;
        match &event.kind {
            EventKind::Exec {
                filename,
                argv,
                ret: 0,
                ..
            } => {
                let entry = Entry {
                    ppid: event.process.ppid,
                    exe: filename.clone(),
                    args: argv.clone(),
                    started: Some(event.ts),
                    info: None,
                };
                self.insert(pid, entry);
            }
            EventKind::Fork { child_pid } => {
                let parent = self.entries.get(&pid).cloned();
                let child = Entry {
                    ppid: pid,
                    exe: parent.as_ref().map(|p| p.exe.clone()).unwrap_or_default(),
                    args: parent.map(|p| p.args).unwrap_or_default(),
                    started: Some(event.ts),
                    info: None,
                };
                self.insert(*child_pid, child);
            }
            _ => {}
        }
        if !self.entries.contains_key(&pid) && !self.load(pid) {
            self.insert(
                pid,
                Entry {
                    ppid: event.process.ppid,
                    exe: String::new(),
                    args: Vec::new(),
                    started: None,
                    info: None,
                },
            );
        }
        event.process.info = self.info(pid);
        if let EventKind::Exit { .. } = event.kind {
            self.entries.remove(&pid);
        }
    }

    fn info(&mut self, pid: u32) -> Option<Arc<ProcessInfo>> {
        if let Some(info) = self.entries.get(&pid).and_then(|e| e.info.clone()) {
            return Some(info);
        }
        let mut lineage = Vec::new();
        let mut cur = self.entries.get(&pid)?.ppid;
        while cur != 0 && lineage.len() < LINEAGE_DEPTH {
            if !self.entries.contains_key(&cur) && !self.load(cur) {
                break;
            }
            let Some(e) = self.entries.get(&cur) else {
                break;
            };
            lineage.push(Ancestor {
                pid: cur,
                exe: e.exe.clone(),
            });
            if e.ppid == cur {
                break;
            }
            cur = e.ppid;
        }
        let e = self.entries.get_mut(&pid)?;
        let info = Arc::new(ProcessInfo {
            exe: (!e.exe.is_empty()).then(|| e.exe.clone()),
            args: e.args.clone(),
            started: e.started,
            lineage,
        });
        e.info = Some(info.clone());
        Some(info)
    }
}

fn read_proc(dir: &Path) -> Option<Entry> {
    let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
    // Fields after the parenthesised comm, which may itself contain spaces and parentheses.
    let after = &stat[stat.rfind(')')? + 2..];
    let ppid = after.split(' ').nth(1)?.parse().ok()?;
    let exe = std::fs::read_link(dir.join("exe"))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let args = std::fs::read(dir.join("cmdline"))
        .map(|b| {
            b.split(|&c| c == 0)
                .filter(|s| !s.is_empty())
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect()
        })
        .unwrap_or_default();
    Some(Entry {
        ppid,
        exe,
        args,
        started: None,
        info: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use heir_model::Process;

    fn ev(pid: u32, ppid: u32, kind: EventKind) -> Event {
        Event {
            ts: Timestamp::from_secs(10),
            process: Process {
                pid,
                tid: pid,
                ppid,
                comm: "x".into(),
                ..Process::default()
            },
            kind,
        }
    }

    #[test]
    fn lineage_follows_fork_and_exec() {
        let mut t = ProcessTable::new(Lookup::None);
        let exec = |pid, ppid, exe: &str| {
            ev(
                pid,
                ppid,
                EventKind::Exec {
                    filename: exe.into(),
                    argv: vec![exe.into()],
                    argv_truncated: false,
                    ret: 0,
                },
            )
        };
        t.enrich(&mut exec(100, 1, "/usr/sbin/sshd"));
        t.enrich(&mut ev(100, 1, EventKind::Fork { child_pid: 200 }));
        t.enrich(&mut exec(200, 100, "/bin/bash"));
        let mut open = ev(
            200,
            100,
            EventKind::Open {
                path: "/etc/shadow".into(),
                flags: 0,
                ret: 3,
            },
        );
        t.enrich(&mut open);
        let info = open.process.info.unwrap();
        assert_eq!(info.exe.as_deref(), Some("/bin/bash"));
        assert_eq!(info.lineage.len(), 1);
        assert_eq!(info.lineage[0].exe, "/usr/sbin/sshd");

        t.enrich(&mut ev(
            200,
            100,
            EventKind::Exit {
                code: 0,
                signal: None,
            },
        ));
        assert!(!t.entries.contains_key(&200));
    }

    #[test]
    fn live_processes_are_found_in_proc() {
        let mut t = ProcessTable::from_proc();
        assert!(!t.is_empty());
        let me = std::process::id();
        let mut e = ev(
            me,
            0,
            EventKind::Exit {
                code: 0,
                signal: None,
            },
        );
        e.kind = EventKind::Fork { child_pid: 1 };
        t.enrich(&mut e);
        let info = e.process.info.unwrap();
        assert!(
            info.exe.as_deref().unwrap_or("").contains("heir_agent"),
            "{info:?}"
        );
    }
}
