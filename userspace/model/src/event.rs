//! The typed event every sensor and replay source produces.
//!
//! JSON field names are a public contract (`heir monitor --json`, `heir replay`): the process
//! context and the kind-specific fields sit side by side in one flat object, tagged by `kind`.

use std::net::IpAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::Timestamp;

/// One thing that happened, with who did it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub ts: Timestamp,
    #[serde(flatten)]
    pub process: Process,
    #[serde(flatten)]
    pub kind: EventKind,
}

/// The process an event is attributed to, as the kernel saw it at that moment, plus what the
/// process table knows about it (`info`), shared between all events of that process.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Process {
    /// Thread-group id: what users call the pid.
    pub pid: u32,
    pub tid: u32,
    pub ppid: u32,
    pub uid: u32,
    pub euid: u32,
    pub gid: u32,
    pub comm: String,
    #[serde(default)]
    pub cgroup: u64,
    #[serde(
        default,
        flatten,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "info_if_known"
    )]
    pub info: Option<Arc<ProcessInfo>>,
}

/// A flattened `ProcessInfo` with no field present means the process table knew nothing.
fn info_if_known<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Arc<ProcessInfo>>, D::Error> {
    let info = ProcessInfo::deserialize(d)?;
    Ok((info != ProcessInfo::default()).then(|| Arc::new(info)))
}

/// What the process table adds: the executable, its arguments and where it came from.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ProcessInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exe: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// When the process started (its exec, or when the agent first saw it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<Timestamp>,
    /// Parent first, then grandparent, up to init or the depth limit.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lineage: Vec<Ancestor>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ancestor {
    pub pid: u32,
    pub exe: String,
}

/// A socket address as a syscall passed or returned it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "family", rename_all = "snake_case")]
pub enum NetAddr {
    Inet { ip: IpAddr, port: u16 },
    Unix { path: String },
    Other { af: u16 },
}

impl NetAddr {
    pub fn port(&self) -> Option<u16> {
        match self {
            NetAddr::Inet { port, .. } => Some(*port),
            _ => None,
        }
    }

    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            NetAddr::Inet { ip, .. } => Some(*ip),
            _ => None,
        }
    }
}

/// Socket address family, for events that know the family but not an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SockFamily {
    Inet,
    Inet6,
    Unix,
    Other,
}

/// Which credential call changed ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredCall {
    Setuid,
    Setreuid,
    Setresuid,
    Setgid,
    Setregid,
    Setresgid,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModuleOp {
    InitModule,
    FinitModule,
    DeleteModule,
}

/// What happened. Every syscall-derived kind carries `ret`: the syscall's return value,
/// negative errno on failure, so attempts that the kernel refused are still visible.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventKind {
    Exec {
        filename: String,
        argv: Vec<String>,
        /// More arguments existed than the kernel probe copies.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        argv_truncated: bool,
        ret: i64,
    },
    Fork {
        child_pid: u32,
    },
    Exit {
        code: i32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signal: Option<i32>,
    },
    Open {
        path: String,
        flags: u32,
        ret: i64,
    },
    Rename {
        from: String,
        to: String,
        ret: i64,
    },
    Unlink {
        path: String,
        ret: i64,
    },
    /// Aggregated in the kernel: one process modified many files within one window.
    FileBurst {
        writes: u32,
        renames: u32,
        unlinks: u32,
        window_ms: u32,
    },
    Connect {
        addr: NetAddr,
        ret: i64,
    },
    Accept {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        local: Option<NetAddr>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        peer: Option<NetAddr>,
        ret: i64,
    },
    Bind {
        addr: NetAddr,
        ret: i64,
    },
    Listen {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        addr: Option<NetAddr>,
        backlog: i32,
        ret: i64,
    },
    CredChange {
        call: CredCall,
        /// Requested ids; `None` where the call leaves that id unchanged (-1).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        real: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        effective: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        saved: Option<u32>,
        ret: i64,
    },
    Capset {
        effective: u64,
        permitted: u64,
        inheritable: u64,
        ret: i64,
    },
    Ptrace {
        request: i64,
        target: u32,
        ret: i64,
    },
    Module {
        op: ModuleOp,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        ret: i64,
    },
    Bpf {
        cmd: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prog_type: Option<u32>,
        ret: i64,
    },
    MemfdCreate {
        name: String,
        flags: u32,
        ret: i64,
    },
    Mount {
        source: String,
        target: String,
        fstype: String,
        flags: u64,
        ret: i64,
    },
}

impl EventKind {
    /// The `kind` tag, for counters and filters that should not allocate.
    pub const fn name(&self) -> &'static str {
        match self {
            EventKind::Exec { .. } => "exec",
            EventKind::Fork { .. } => "fork",
            EventKind::Exit { .. } => "exit",
            EventKind::Open { .. } => "open",
            EventKind::Rename { .. } => "rename",
            EventKind::Unlink { .. } => "unlink",
            EventKind::FileBurst { .. } => "file_burst",
            EventKind::Connect { .. } => "connect",
            EventKind::Accept { .. } => "accept",
            EventKind::Bind { .. } => "bind",
            EventKind::Listen { .. } => "listen",
            EventKind::CredChange { .. } => "cred_change",
            EventKind::Capset { .. } => "capset",
            EventKind::Ptrace { .. } => "ptrace",
            EventKind::Module { .. } => "module",
            EventKind::Bpf { .. } => "bpf",
            EventKind::MemfdCreate { .. } => "memfd_create",
            EventKind::Mount { .. } => "mount",
        }
    }
}

impl Event {
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self).expect("events always serialise")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Event {
        Event {
            ts: Timestamp::from_secs(1_700_000_000),
            process: Process {
                pid: 42,
                tid: 43,
                ppid: 1,
                uid: 1000,
                euid: 0,
                gid: 1000,
                comm: "sudo".into(),
                cgroup: 7,
                info: Some(Arc::new(ProcessInfo {
                    exe: Some("/usr/bin/sudo".into()),
                    args: vec!["sudo".into(), "-i".into()],
                    started: None,
                    lineage: vec![Ancestor {
                        pid: 1,
                        exe: "/sbin/init".into(),
                    }],
                })),
            },
            kind: EventKind::Connect {
                addr: NetAddr::Inet {
                    ip: "127.0.0.1".parse().unwrap(),
                    port: 443,
                },
                ret: -111,
            },
        }
    }

    #[test]
    fn json_is_flat_and_round_trips() {
        let e = sample();
        let line = e.to_json_line();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["kind"], "connect");
        assert_eq!(v["pid"], 42);
        assert_eq!(v["exe"], "/usr/bin/sudo");
        assert_eq!(v["addr"]["family"], "inet");
        assert_eq!(v["addr"]["port"], 443);
        assert_eq!(v["ret"], -111);
        let back: Event = serde_json::from_str(&line).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn events_without_process_info_round_trip() {
        let mut e = sample();
        e.process.info = None;
        e.kind = EventKind::Exit {
            code: 0,
            signal: None,
        };
        let back: Event = serde_json::from_str(&e.to_json_line()).unwrap();
        assert_eq!(back, e);
    }
}
