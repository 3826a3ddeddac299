//! Process injection: ptrace attaching to or writing into a process that is not the tracer's
//! own child, and fileless execution from an anonymous memory file.
//!
//! A debugger is no excuse: `gdb -p` on a running device daemon, calling a function inside
//! it, is how an intruder with root changes what the daemon does. Attaching is at least
//! medium (high for a program that is not a known debugger); writing memory or registers is
//! high (critical for an unknown program). Tracing one's own child (`strace ./tool`, `gdb
//! --args`) is routine and stays quiet, as does any tracer the operator allows.

use std::collections::HashMap;

use heir_model::{Alert, Category, Event, EventKind, Severity};
use serde::{Deserialize, Serialize};

use super::strings;
use crate::util::{bound, exe, process_is};
use crate::{Detector, Kind, Spec};

const SPEC: Spec = Spec {
    rule: "host.ptrace_injection",
    category: Category::ProcessInjection,
    owasp_iot: "I5",
    enisa: "Nefarious activity/abuse: malicious code (process injection)",
    attack: "T1055.008",
};

const FILELESS: Spec = Spec {
    rule: "host.fileless_exec",
    attack: "T1620",
    ..SPEC
};

const PTRACE_POKETEXT: i64 = 4;
const PTRACE_POKEDATA: i64 = 5;
const PTRACE_POKEUSER: i64 = 6;
const PTRACE_SETREGS: i64 = 13;
const PTRACE_ATTACH: i64 = 16;
const PTRACE_SETREGSET: i64 = 0x4205;
const PTRACE_SEIZE: i64 = 0x4206;

/// Injection settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub enabled: bool,
    /// Known debuggers and tracers: their attaching to another process is reported one
    /// severity lower than an unknown program's.
    pub debuggers: Vec<String>,
    /// Tracers the operator allows to attach to any process, unreported (e.g. a profiler
    /// the hospital runs). Empty by default.
    pub allowed_tracers: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            enabled: true,
            debuggers: strings(&[
                "gdb",
                "strace",
                "ltrace",
                "lldb",
                "lldb-server",
                "gdbserver",
                "perf",
                "valgrind",
                "rr",
            ]),
            allowed_tracers: Vec::new(),
        }
    }
}

pub struct Injection {
    cfg: Config,
    /// pid → memfd name, for processes that created an anonymous memory file.
    memfds: HashMap<u32, String>,
    /// child pid → parent pid, from the forks seen: a tracer's own children.
    parents: HashMap<u32, u32>,
}

impl Injection {
    pub fn new(cfg: Config) -> Self {
        Self {
            cfg,
            memfds: HashMap::new(),
            parents: HashMap::new(),
        }
    }
}

impl Detector for Injection {
    fn name(&self) -> &'static str {
        "injection"
    }

    fn kinds(&self) -> &'static [Kind] {
        &[
            Kind::Ptrace,
            Kind::MemfdCreate,
            Kind::Exec,
            Kind::Exit,
            Kind::Fork,
        ]
    }

    fn inspect(&mut self, ev: &Event, out: &mut Vec<Alert>) {
        let p = &ev.process;
        match &ev.kind {
            EventKind::Ptrace {
                request,
                target,
                ret,
            } if *ret >= 0 => {
                let (what, writes) = match *request {
                    PTRACE_ATTACH | PTRACE_SEIZE => ("attached to", false),
                    PTRACE_POKETEXT | PTRACE_POKEDATA | PTRACE_POKEUSER => {
                        ("wrote into the memory of", true)
                    }
                    PTRACE_SETREGS | PTRACE_SETREGSET => ("rewrote the registers of", true),
                    _ => return,
                };
                if self.parents.get(target) == Some(&p.pid)
                    || process_is(p, &self.cfg.allowed_tracers)
                {
                    return;
                }
                let sev = match (writes, process_is(p, &self.cfg.debuggers)) {
                    (false, true) => Severity::Medium,
                    (false, false) | (true, true) => Severity::High,
                    (true, false) => Severity::Critical,
                };
                let mut a =
                    SPEC.process_alert(ev, format!("{} {what} pid {target}", exe(p)), sev, 0.85);
                a.evidence.push(format!(
                    "ptrace request {request} on pid {target} by {} (pid {}, uid {})",
                    exe(p),
                    p.pid,
                    p.uid
                ));
                out.push(a);
            }
            EventKind::MemfdCreate { name, ret, .. } if *ret >= 0 => {
                bound(&mut self.memfds, 65_536, |_, _| false);
                self.memfds.insert(p.pid, name.clone());
            }
            EventKind::Fork { child_pid } => {
                bound(&mut self.parents, 65_536, |_, _| false);
                self.parents.insert(*child_pid, p.pid);
            }
            EventKind::Exit { .. } => {
                self.memfds.remove(&p.pid);
                self.parents.remove(&p.pid);
            }
            EventKind::Exec { filename, ret, .. } if *ret == 0 => {
                let from_fd = filename.starts_with("/memfd:")
                    || ((filename.starts_with("/proc/") || filename.starts_with("/dev/fd/"))
                        && filename.contains("/fd/"));
                if !from_fd {
                    return;
                }
                let mut a = FILELESS.process_alert(
                    ev,
                    format!("Fileless execution of {filename}"),
                    Severity::High,
                    0.85,
                );
                a.evidence.push(format!(
                    "pid {} executed {filename}, a file descriptor rather than a file on disk",
                    p.pid
                ));
                if let Some(n) = self.memfds.get(&p.pid).or_else(|| self.memfds.get(&p.ppid)) {
                    a.evidence.push(format!(
                        "memfd_create(\"{n}\") earlier in the same process tree"
                    ));
                }
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
    fn injector_pokes_gdb_attaching_and_memfd_exec_fire() {
        let mut d = Injection::new(Config::default());
        let inj = proc_(70, 69, 0, "inject", "/tmp/inject", "/usr/bin/bash");
        let gdb = proc_(71, 69, 0, "gdb", "/usr/bin/gdb", "/usr/bin/bash");
        let loader = proc_(72, 69, 1000, "loader", "/tmp/loader", "/usr/bin/bash");
        let events = [
            ev(
                0,
                inj.clone(),
                EventKind::Ptrace {
                    request: PTRACE_ATTACH,
                    target: 400,
                    ret: 0,
                },
            ),
            ev(
                1,
                inj,
                EventKind::Ptrace {
                    request: PTRACE_POKETEXT,
                    target: 400,
                    ret: 0,
                },
            ),
            ev(
                2,
                gdb.clone(),
                EventKind::Ptrace {
                    request: PTRACE_ATTACH,
                    target: 401,
                    ret: 0,
                },
            ),
            ev(
                3,
                gdb,
                EventKind::Ptrace {
                    request: PTRACE_POKEDATA,
                    target: 401,
                    ret: 0,
                },
            ),
            ev(
                4,
                loader.clone(),
                EventKind::MemfdCreate {
                    name: "x".into(),
                    flags: 1,
                    ret: 3,
                },
            ),
            exec(5, loader, "/proc/self/fd/3", &["[kworker/0:1]"]),
        ];
        let alerts = run(&mut d, &events);
        assert_eq!(alerts.len(), 5, "{alerts:#?}");
        let sev: Vec<Severity> = alerts.iter().map(|a| a.severity).collect();
        assert_eq!(
            sev,
            [
                Severity::High,
                Severity::Critical,
                Severity::Medium,
                Severity::High,
                Severity::High
            ],
            "unknown attach, unknown poke, gdb -p, gdb's poke, fileless exec"
        );
        assert!(alerts[4].evidence[1].contains("memfd_create"));
        assert_complete(&alerts);
    }

    #[test]
    fn tracing_ones_own_child_or_an_allowed_tracer_is_quiet() {
        let mut d = Injection::new(Config {
            allowed_tracers: vec!["perf".into()],
            ..Config::default()
        });
        let strace = proc_(80, 79, 0, "strace", "/usr/bin/strace", "/usr/bin/bash");
        let perf = proc_(81, 79, 0, "perf", "/usr/bin/perf", "/usr/bin/bash");
        let ptrace = |s, p: &heir_model::Process, request, target| {
            ev(
                s,
                p.clone(),
                EventKind::Ptrace {
                    request,
                    target,
                    ret: 0,
                },
            )
        };
        let quiet = [
            ev(0, strace.clone(), EventKind::Fork { child_pid: 500 }),
            ptrace(1, &strace, PTRACE_SEIZE, 500),
            ptrace(2, &strace, PTRACE_POKEUSER, 500),
            ptrace(3, &perf, PTRACE_ATTACH, 1),
        ];
        assert!(run(&mut d, &quiet).is_empty());
        // The child is gone; its pid, reused by a daemon, is no longer strace's child.
        let child = proc_(500, 80, 0, "true", "/usr/bin/true", "/usr/bin/strace");
        let later = [
            ev(
                4,
                child,
                EventKind::Exit {
                    code: 0,
                    signal: None,
                },
            ),
            ptrace(5, &strace, PTRACE_SEIZE, 500),
        ];
        assert_eq!(run(&mut d, &later).len(), 1);
    }
}
