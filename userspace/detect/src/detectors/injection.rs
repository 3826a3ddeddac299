//! Process injection: ptrace attaching to or writing into another process outside debuggers,
//! and fileless execution from an anonymous memory file.

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
    /// Debuggers and tracers allowed to ptrace.
    pub debuggers: Vec<String>,
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
        }
    }
}

pub struct Injection {
    cfg: Config,
    /// pid → memfd name, for processes that created an anonymous memory file.
    memfds: HashMap<u32, String>,
}

impl Injection {
    pub fn new(cfg: Config) -> Self {
        Self {
            cfg,
            memfds: HashMap::new(),
        }
    }
}

impl Detector for Injection {
    fn name(&self) -> &'static str {
        "injection"
    }

    fn kinds(&self) -> &'static [Kind] {
        &[Kind::Ptrace, Kind::MemfdCreate, Kind::Exec, Kind::Exit]
    }

    fn inspect(&mut self, ev: &Event, out: &mut Vec<Alert>) {
        let p = &ev.process;
        match &ev.kind {
            EventKind::Ptrace {
                request,
                target,
                ret,
            } if *ret >= 0 => {
                let (what, sev) = match *request {
                    PTRACE_ATTACH | PTRACE_SEIZE => ("attached to", Severity::High),
                    PTRACE_POKETEXT | PTRACE_POKEDATA | PTRACE_POKEUSER => {
                        ("wrote into the memory of", Severity::Critical)
                    }
                    PTRACE_SETREGS | PTRACE_SETREGSET => {
                        ("rewrote the registers of", Severity::Critical)
                    }
                    _ => return,
                };
                if process_is(p, &self.cfg.debuggers) {
                    return;
                }
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
            EventKind::Exit { .. } => {
                self.memfds.remove(&p.pid);
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
    fn injector_pokes_and_memfd_exec_fire_gdb_is_quiet() {
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
        assert_eq!(alerts.len(), 3, "{alerts:#?}");
        assert_eq!(alerts[1].severity, Severity::Critical);
        assert!(alerts[2].evidence[1].contains("memfd_create"));
        assert_complete(&alerts);
    }
}
