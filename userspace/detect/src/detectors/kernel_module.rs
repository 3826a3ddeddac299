//! Kernel modules and eBPF programs loaded at run time: rootkits' way into ring 0. A medical
//! device's module set is fixed after boot, so anything outside the allowlist is worth a look.

use heir_model::event::ModuleOp;
use heir_model::{Alert, Category, Event, EventKind, Severity};
use serde::{Deserialize, Serialize};

use super::strings;
use crate::util::{exe, process_is};
use crate::{Detector, Kind, Spec};

const SPEC: Spec = Spec {
    rule: "host.kernel_module",
    category: Category::KernelModule,
    owasp_iot: "I5",
    enisa: "Nefarious activity/abuse: malicious code (rootkit)",
    attack: "T1547.006",
};

const BPF: Spec = Spec {
    rule: "host.bpf_program",
    attack: "T1014",
    ..SPEC
};

/// BPF_PROG_LOAD.
const BPF_PROG_LOAD: u32 = 5;

/// Kernel-module settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub enabled: bool,
    /// Module names expected to load after boot (e.g. hot-plugged USB drivers).
    pub allowed_modules: Vec<String>,
    /// Programs allowed to load eBPF programs.
    pub allowed_bpf_loaders: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            enabled: true,
            allowed_modules: Vec::new(),
            allowed_bpf_loaders: strings(&["heir", "systemd", "systemd-networkd"]),
        }
    }
}

pub struct KernelModule {
    cfg: Config,
}

impl KernelModule {
    pub fn new(cfg: Config) -> Self {
        Self { cfg }
    }
}

impl Detector for KernelModule {
    fn name(&self) -> &'static str {
        "kernel_module"
    }

    fn kinds(&self) -> &'static [Kind] {
        &[Kind::Module, Kind::Bpf]
    }

    fn inspect(&mut self, ev: &Event, out: &mut Vec<Alert>) {
        match &ev.kind {
            EventKind::Module {
                op: op @ (ModuleOp::InitModule | ModuleOp::FinitModule),
                name,
                ret,
            } => {
                let n = name.as_deref().unwrap_or("(unnamed)");
                if name
                    .as_ref()
                    .is_some_and(|n| self.cfg.allowed_modules.contains(n))
                {
                    return;
                }
                let (sev, verb) = if *ret == 0 {
                    (Severity::High, "loaded")
                } else {
                    (Severity::Medium, "tried to load")
                };
                let mut a = SPEC.process_alert(
                    ev,
                    format!("{} {verb} kernel module {n}", exe(&ev.process)),
                    sev,
                    0.8,
                );
                a.evidence.push(format!(
                    "{op:?} of `{n}` by {} (pid {}, uid {}) returned {ret}",
                    exe(&ev.process),
                    ev.process.pid,
                    ev.process.uid
                ));
                if let Some(args) = ev
                    .process
                    .info
                    .as_ref()
                    .map(|i| i.args.join(" "))
                    .filter(|s| !s.is_empty())
                {
                    a.evidence.push(format!("command line: {args}"));
                }
                out.push(a);
            }
            EventKind::Bpf {
                cmd: BPF_PROG_LOAD,
                prog_type,
                ret,
            } if *ret >= 0 => {
                if process_is(&ev.process, &self.cfg.allowed_bpf_loaders) {
                    return;
                }
                let mut a = BPF.process_alert(
                    ev,
                    format!("{} loaded an eBPF program", exe(&ev.process)),
                    Severity::Medium,
                    0.6,
                );
                a.evidence.push(format!(
                    "BPF_PROG_LOAD (type {}) by {} (pid {})",
                    prog_type.map_or("?".into(), |t| t.to_string()),
                    exe(&ev.process),
                    ev.process.pid
                ));
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
    fn insmod_fires_allowed_module_and_unload_do_not() {
        let mut d = KernelModule::new(Config {
            allowed_modules: vec!["usbserial".into()],
            ..Config::default()
        });
        let insmod = proc_(50, 49, 0, "insmod", "/usr/sbin/insmod", "/usr/bin/bash");
        let events = [
            ev(
                0,
                insmod.clone(),
                EventKind::Module {
                    op: ModuleOp::FinitModule,
                    name: Some("diamorphine".into()),
                    ret: 0,
                },
            ),
            ev(
                1,
                insmod.clone(),
                EventKind::Module {
                    op: ModuleOp::FinitModule,
                    name: Some("usbserial".into()),
                    ret: 0,
                },
            ),
            ev(
                2,
                insmod,
                EventKind::Module {
                    op: ModuleOp::DeleteModule,
                    name: Some("usbserial".into()),
                    ret: 0,
                },
            ),
            ev(
                3,
                proc_(60, 1, 0, "heir", "/usr/bin/heir", "/sbin/init"),
                EventKind::Bpf {
                    cmd: 5,
                    prog_type: Some(6),
                    ret: 7,
                },
            ),
        ];
        let alerts = run(&mut d, &events);
        assert_eq!(alerts.len(), 1);
        assert!(alerts[0].title.contains("diamorphine"));
        assert_complete(&alerts);
    }
}
