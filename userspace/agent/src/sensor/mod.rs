//! The kernel sensor: loads heir's eBPF programs into the running kernel, attaches them,
//! configures their in-kernel filters and streams their records out of the ring buffer.

pub mod batch;
pub mod btf;
pub mod counters;
pub mod frames;
pub mod fs;
pub mod reader;
pub mod syscalls;
pub mod watch;
pub mod xdp;

use std::time::Duration;

use aya::{
    Ebpf, EbpfLoader,
    maps::{MapData, ProgramArray},
    programs::Program,
};
use heir_abi::Config as ProbeConfig;
use heir_api::Chain;
use serde::Deserialize;

pub use counters::{Counters, KindCounts};
pub use reader::Reader;

/// The probes' object, built by build.rs. Empty when built with `AYA_BUILD_SKIP=1`.
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/heir-probes"));

/// Why the sensor could not start. Each message is one sentence a sysadmin can act on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "heir's kernel sensor needs root (CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN): run it with sudo"
    )]
    NotRoot,
    #[error(
        "this heir binary was built without its eBPF programs (AYA_BUILD_SKIP or no bpf-linker): run `cargo xtask setup` and rebuild"
    )]
    NoObject,
    #[error(
        "this kernel exposes no BTF type information at {0}; heir needs a kernel built with CONFIG_DEBUG_INFO_BTF"
    )]
    NoBtf(&'static str, #[source] std::io::Error),
    #[error("the kernel's BTF could not be read")]
    BadBtf(#[source] btf::Error),
    #[error("the kernel's BTF lacks a field the probes need")]
    MissingField(#[source] btf::Error),
    #[error("could not mount {what} at {path}")]
    Mount {
        what: &'static str,
        path: &'static str,
        source: std::io::Error,
    },
    #[error(
        "the kernel refused to load heir's eBPF programs (is unprivileged BPF disabled and this not root?)"
    )]
    Load(#[from] aya::EbpfError),
    #[error("map `{0}` is missing from the eBPF object")]
    NoMap(&'static str),
    #[error("map `{name}`")]
    Map {
        name: &'static str,
        source: aya::maps::MapError,
    },
    #[error("no probe could be attached: {0}")]
    NothingAttached(String),
    #[error("network namespace `{path}`")]
    Netns {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("[sensor] netns lists {0} namespaces; at most 64")]
    TooManyNetns(usize),
    #[error("watched path prefix `{0}` is longer than {max} bytes", max = heir_abi::FILTER_LEN)]
    PrefixTooLong(String),
    #[error("watched path prefix `{0}` must be absolute")]
    PrefixNotAbsolute(String),
    #[error("ring buffer size {0} must be a power of two of at least 4096 bytes")]
    RingSize(u32),
    #[error("reading the ring buffer")]
    Io(#[from] std::io::Error),
}

/// What the kernel side reports and filters. Every key has a working default.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Run the syscall probes. A gateway that only watches device links with the packet
    /// sensor (`--iface`) can turn them off.
    pub syscalls: bool,
    /// Report only processes in these network namespaces (`/var/run/netns/NAME`,
    /// `/proc/PID/ns/net`): a host whose services each run in their own namespace, watched
    /// for one of them. Empty: every process.
    pub netns: Vec<std::path::PathBuf>,
    /// Path prefixes whose opens are reported, with which accesses.
    pub watch: Vec<watch::Rule>,
    /// Report connect/bind/accept/listen on unix sockets too.
    pub unix_sockets: bool,
    /// Report execs that failed because the file does not exist (a shell's `$PATH` search).
    pub failed_exec_enoent: bool,
    /// Ring buffer size in bytes (a power of two).
    pub ring_bytes: u32,
    /// A process modifying at least `burst_threshold` files within `burst_window_ms` is
    /// reported once per window.
    pub burst_threshold: u32,
    pub burst_window_ms: u32,
    /// Fill level at which the kernel wakes the reader; below it the reader polls every
    /// `poll_ms`.
    pub wakeup_bytes: u32,
    pub poll_ms: u64,
    /// The packet sensor's flow table is read every `flow_sweep_secs`; a connection is
    /// reported to the detectors when it closes, after `flow_idle_secs` without packets, and
    /// at most every `flow_update_secs` while it stays open and busy.
    pub flow_sweep_secs: u64,
    pub flow_update_secs: u64,
    pub flow_idle_secs: u64,
    /// Connections the packet sensor's flow table holds (per CPU, least recently used out).
    pub flow_entries: u32,
    /// Devices (IPv4, IPv6 and MAC addresses) the packet sensor keeps traffic counters for.
    pub device_entries: u32,
    /// Count packets and bytes per device (about 7 ns on each packet of a known flow).
    pub device_traffic: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            syscalls: true,
            netns: Vec::new(),
            watch: watch::default_rules(),
            unix_sockets: false,
            failed_exec_enoent: false,
            ring_bytes: 16 * 1024 * 1024,
            burst_threshold: 64,
            burst_window_ms: 1000,
            wakeup_bytes: 512 * 1024,
            poll_ms: 10,
            flow_sweep_secs: 5,
            flow_update_secs: 30,
            flow_idle_secs: 15,
            flow_entries: 262_144,
            device_entries: 16_384,
            device_traffic: true,
        }
    }
}

impl Config {
    /// When the flow sweeper reports connections (every interval at least a second).
    pub fn flows(&self) -> heir_packet::flows::Config {
        let secs = |s: u64| std::time::Duration::from_secs(s.max(1));
        heir_packet::flows::Config {
            sweep: secs(self.flow_sweep_secs),
            update: secs(self.flow_update_secs),
            idle: secs(self.flow_idle_secs),
        }
    }
}

/// One probe that could not be attached; the sensor runs on with the others.
#[derive(Debug, Clone)]
pub struct AttachFailure {
    pub program: String,
    pub reason: String,
}

/// The loaded and attached probes.
pub struct Sensor {
    ebpf: Ebpf,
    /// The dispatchers' program arrays: the handlers stay registered while these live.
    _handlers: [ProgramArray<MapData>; 2],
    pub attached: Vec<String>,
    pub failed: Vec<AttachFailure>,
    poll: Duration,
}

impl Sensor {
    /// True when the binary carries the probes' object.
    pub fn has_object() -> bool {
        !OBJECT.is_empty()
    }

    /// Loads and attaches every probe. `agent_tgid` is the process whose own activity the
    /// probes ignore (normally `std::process::id()`).
    pub fn start(config: &Config, agent_tgid: u32) -> Result<Sensor, Error> {
        if !Self::has_object() {
            return Err(Error::NoObject);
        }
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err(Error::NotRoot);
        }
        if !config.ring_bytes.is_power_of_two() || config.ring_bytes < 4096 {
            return Err(Error::RingSize(config.ring_bytes));
        }
        let keys = watch::keys(&config.watch)?;
        fs::raise_memlock();
        fs::ensure_mounted()?;
        let scope = netns_inodes(&config.netns)?;
        let btf = btf::Btf::from_sys_fs()?;
        let off = |s: &str, f: &str| btf.field_offset(s, f).map_err(Error::MissingField);
        // Only a scoped sensor needs the namespace fields: a kernel lacking them still runs
        // unscoped.
        let (off_task_nsproxy, off_nsproxy_net_ns, off_net_inum) = if scope.is_empty() {
            (0, 0, 0)
        } else {
            (
                off("task_struct", "nsproxy")?,
                off("nsproxy", "net_ns")?,
                off("net", "ns")? + off("ns_common", "inum")?,
            )
        };
        let probe_config = ProbeConfig {
            agent_tgid,
            flags: (if config.unix_sockets {
                heir_abi::CONFIG_UNIX_SOCKETS
            } else {
                0
            }) | (if config.failed_exec_enoent {
                heir_abi::CONFIG_EXEC_ENOENT
            } else {
                0
            }) | (if scope.is_empty() {
                0
            } else {
                heir_abi::CONFIG_NETNS_SCOPE
            }),
            off_task_real_parent: off("task_struct", "real_parent")?,
            off_task_tgid: off("task_struct", "tgid")?,
            off_task_pid: off("task_struct", "pid")?,
            off_task_cred: off("task_struct", "cred")?,
            off_task_exit_code: off("task_struct", "exit_code")?,
            off_cred_euid: off("cred", "euid")?,
            burst_window_ns: u64::from(config.burst_window_ms) * 1_000_000,
            burst_threshold: config.burst_threshold.max(1),
            wakeup_bytes: config.wakeup_bytes.min(config.ring_bytes / 2),
            off_task_nsproxy,
            off_nsproxy_net_ns,
            off_net_inum,
        };
        let mut ebpf = EbpfLoader::new()
            .override_global("CONFIG", &probe_config, true)
            .map_max_entries("EVENTS", config.ring_bytes)
            .load(OBJECT)?;
        watch::install(&mut ebpf, &keys)?;
        if !scope.is_empty() {
            let map = ebpf.map_mut("NETNS").ok_or(Error::NoMap("NETNS"))?;
            let mut table =
                aya::maps::HashMap::<_, u32, u8>::try_from(map).map_err(|source| Error::Map {
                    name: "NETNS",
                    source,
                })?;
            for inum in &scope {
                table.insert(inum, 1, 0).map_err(|source| Error::Map {
                    name: "NETNS",
                    source,
                })?;
            }
        }

        let mut attached = Vec::new();
        let mut failed = Vec::new();
        let names: Vec<String> = ebpf.programs().map(|(n, _)| n.to_owned()).collect();
        let mut enter = program_array(&mut ebpf, "SYS_ENTER")?;
        let mut exit = program_array(&mut ebpf, "SYS_EXIT")?;
        // Handlers first, so the dispatchers find them from their first call.
        for name in names.iter().filter(|n| is_handler(n)) {
            let prog = ebpf.program_mut(name).expect("listed above");
            let table = if name.starts_with("enter_") {
                &mut enter
            } else {
                &mut exit
            };
            match register_handler(name, prog, table) {
                Ok(()) => attached.push(name.clone()),
                Err(reason) => failed.push(AttachFailure {
                    program: name.clone(),
                    reason,
                }),
            }
        }
        for name in names.iter().filter(|n| !is_handler(n)) {
            let prog = ebpf.program_mut(name).expect("listed above");
            match attach(name, prog) {
                Ok(()) => attached.push(name.clone()),
                Err(reason) => failed.push(AttachFailure {
                    program: name.clone(),
                    reason,
                }),
            }
        }
        if attached.is_empty() {
            let why = failed
                .first()
                .map(|f| format!("{}: {}", f.program, f.reason))
                .unwrap_or_else(|| "the object has no programs".into());
            return Err(Error::NothingAttached(why));
        }
        attached.sort();
        Ok(Sensor {
            ebpf,
            _handlers: [enter, exit],
            attached,
            failed,
            poll: Duration::from_millis(config.poll_ms.max(1)),
        })
    }

    /// The programs attached or registered, by name (`enter_openat`, `raw_sys_enter`, …).
    pub fn attached(&self) -> &[String] {
        &self.attached
    }

    /// The ring-buffer reader. Can be taken once.
    pub fn reader(&mut self) -> Result<Reader, Error> {
        let map = self.ebpf.take_map("EVENTS").ok_or(Error::NoMap("EVENTS"))?;
        Reader::new(map, self.poll)
    }

    /// Per-kind counters of records emitted, lost and filtered in the kernel.
    pub fn counters(&self) -> Result<Counters, Error> {
        Counters::read(&self.ebpf)
    }
}

/// The inode numbers of the network namespaces the sensor is scoped to: what the kernel
/// reads in `net.ns.inum`.
fn netns_inodes(paths: &[std::path::PathBuf]) -> Result<Vec<u32>, Error> {
    use std::os::unix::fs::MetadataExt;
    if paths.len() > 64 {
        return Err(Error::TooManyNetns(paths.len()));
    }
    paths
        .iter()
        .map(|p| {
            std::fs::metadata(p)
                .map(|m| m.ino() as u32)
                .map_err(|source| Error::Netns {
                    path: p.clone(),
                    source,
                })
        })
        .collect()
}

fn program_array(ebpf: &mut Ebpf, name: &'static str) -> Result<ProgramArray<MapData>, Error> {
    let map = ebpf.take_map(name).ok_or(Error::NoMap(name))?;
    ProgramArray::try_from(map).map_err(|source| Error::Map { name, source })
}

/// `enter_<syscall>` / `exit_<syscall>`: reached by tail call from the dispatchers.
fn is_handler(name: &str) -> bool {
    name.starts_with("enter_") || name.starts_with("exit_")
}

fn register_handler(
    name: &str,
    prog: &mut Program,
    table: &mut ProgramArray<MapData>,
) -> Result<(), String> {
    let syscall = name
        .strip_prefix("enter_")
        .or_else(|| name.strip_prefix("exit_"))
        .unwrap_or(name);
    let nr = syscalls::number(syscall)
        .ok_or_else(|| format!("this architecture has no `{syscall}` syscall"))?;
    let Program::RawTracePoint(tp) = prog else {
        return Err(format!("unexpected program type {:?}", prog.prog_type()));
    };
    tp.load().map_err(|e| format!("load: {}", Chain(&e)))?;
    let fd = tp.fd().map_err(|e| format!("fd: {}", Chain(&e)))?;
    table
        .set(nr as u32, fd, 0)
        .map_err(|e| format!("registering for syscall {nr}: {}", Chain(&e)))
}

/// Attaches a program to the raw tracepoint its name says: the syscall dispatchers to
/// `sys_enter`/`sys_exit`, the scheduler probes to theirs.
fn attach(name: &str, prog: &mut Program) -> Result<(), String> {
    match prog {
        Program::RawTracePoint(tp) => {
            let target = match name {
                "raw_sys_enter" => "sys_enter",
                "raw_sys_exit" => "sys_exit",
                other => other,
            };
            tp.load().map_err(|e| format!("load: {}", Chain(&e)))?;
            tp.attach(target)
                .map(|_| ())
                .map_err(|e| format!("attach to raw tracepoint {target}: {}", Chain(&e)))
        }
        other => Err(format!("unexpected program type {:?}", other.prog_type())),
    }
}
