//! The kernel ↔ userspace ABI of heir.
//!
//! Every record the eBPF probes write into a ring buffer, every map key and value the agent
//! reads or writes, is defined here and only here, `#[repr(C)]` with explicit padding, so the
//! two sides cannot drift apart. Records start with a [`Header`] whose `kind` says which
//! record follows; the agent checks the record's length against the kind before reading it.
#![no_std]

pub mod packet;
pub mod ports;

/// Bytes of a path the probes copy. Longer paths are truncated and flagged.
pub const PATH_LEN: usize = 256;
/// Bytes of each exec argument the probes copy.
pub const ARG_LEN: usize = 128;
/// Exec arguments copied (argv[0] included).
pub const MAX_ARGS: usize = 16;
/// Bytes of a short name (memfd name, module name, filesystem type).
pub const NAME_LEN: usize = 64;
/// Bytes of a socket address copied from userspace: enough for `sockaddr_un`.
pub const SOCKADDR_LEN: usize = 112;
/// Bytes of a path the in-kernel prefix filter compares.
pub const FILTER_LEN: usize = 64;
/// `comm` length, as in the kernel's `TASK_COMM_LEN`.
pub const COMM_LEN: usize = 16;

/// Which record follows the header. The discriminants are part of the ABI: never reuse one.
#[repr(u16)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Exec = 1,
    Fork = 2,
    Exit = 3,
    Open = 4,
    Rename = 5,
    Unlink = 6,
    FileBurst = 7,
    Connect = 8,
    Accept = 9,
    Bind = 10,
    Listen = 11,
    CredChange = 12,
    Capset = 13,
    Ptrace = 14,
    Module = 15,
    Bpf = 16,
    MemfdCreate = 17,
    Mount = 18,
}

impl Kind {
    /// One past the largest discriminant: the size of per-kind counter arrays.
    pub const COUNT: u32 = 19;

    pub const ALL: [Kind; 18] = [
        Kind::Exec,
        Kind::Fork,
        Kind::Exit,
        Kind::Open,
        Kind::Rename,
        Kind::Unlink,
        Kind::FileBurst,
        Kind::Connect,
        Kind::Accept,
        Kind::Bind,
        Kind::Listen,
        Kind::CredChange,
        Kind::Capset,
        Kind::Ptrace,
        Kind::Module,
        Kind::Bpf,
        Kind::MemfdCreate,
        Kind::Mount,
    ];

    pub const fn from_u16(v: u16) -> Option<Kind> {
        Some(match v {
            1 => Kind::Exec,
            2 => Kind::Fork,
            3 => Kind::Exit,
            4 => Kind::Open,
            5 => Kind::Rename,
            6 => Kind::Unlink,
            7 => Kind::FileBurst,
            8 => Kind::Connect,
            9 => Kind::Accept,
            10 => Kind::Bind,
            11 => Kind::Listen,
            12 => Kind::CredChange,
            13 => Kind::Capset,
            14 => Kind::Ptrace,
            15 => Kind::Module,
            16 => Kind::Bpf,
            17 => Kind::MemfdCreate,
            18 => Kind::Mount,
            _ => return None,
        })
    }

    /// The record layout this kind is written with.
    pub const fn shape(self) -> Shape {
        match self {
            Kind::Exec => Shape::Exec,
            Kind::Open | Kind::Unlink | Kind::MemfdCreate => Shape::Path,
            Kind::Rename | Kind::Mount => Shape::TwoPaths,
            Kind::Module => Shape::Name,
            Kind::Connect | Kind::Accept | Kind::Bind | Kind::Listen => Shape::Sock,
            Kind::Fork
            | Kind::Exit
            | Kind::FileBurst
            | Kind::CredChange
            | Kind::Capset
            | Kind::Ptrace
            | Kind::Bpf => Shape::Args,
        }
    }
}

/// The record layouts. Kinds share layouts so the probes need few in-flight maps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    Exec,
    Path,
    TwoPaths,
    Name,
    Sock,
    Args,
}

impl Shape {
    pub const fn size(self) -> usize {
        match self {
            Shape::Exec => core::mem::size_of::<ExecRecord>(),
            Shape::Path => core::mem::size_of::<PathRecord>(),
            Shape::TwoPaths => core::mem::size_of::<TwoPathRecord>(),
            Shape::Name => core::mem::size_of::<NameRecord>(),
            Shape::Sock => core::mem::size_of::<SockRecord>(),
            Shape::Args => core::mem::size_of::<ArgsRecord>(),
        }
    }
}

/// Who did it and when: the first bytes of every record.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Header {
    /// [`Kind`] discriminant.
    pub kind: u16,
    /// `HDR_*` flags.
    pub flags: u16,
    /// Thread id.
    pub tid: u32,
    /// Thread-group id (the user-visible pid).
    pub tgid: u32,
    /// Parent's thread-group id (`real_parent->tgid`); 0 when unknown.
    pub ppid: u32,
    pub uid: u32,
    pub gid: u32,
    /// Effective uid (`cred->euid`); `u32::MAX` when unknown.
    pub euid: u32,
    pub _pad: u32,
    /// `bpf_ktime_get_boot_ns`: nanoseconds since boot, suspend included.
    pub ts_boot_ns: u64,
    pub cgroup_id: u64,
    pub comm: [u8; COMM_LEN],
}

/// A string in the record was cut at its buffer's length.
pub const HDR_TRUNCATED: u16 = 1;
/// More exec arguments existed than were copied.
pub const HDR_MORE_ARGS: u16 = 2;

/// `execve`/`execveat`: the program, its arguments and the result.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ExecRecord {
    pub header: Header,
    pub ret: i64,
    pub argc: u32,
    pub _pad: u32,
    pub filename: [u8; PATH_LEN],
    pub args: [[u8; ARG_LEN]; MAX_ARGS],
}

/// One path and up to three integers: open (flags, mode), unlink, memfd_create (flags).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct PathRecord {
    pub header: Header,
    pub ret: i64,
    pub a: u64,
    pub b: u64,
    pub path: [u8; PATH_LEN],
}

/// Two paths and a short name: rename (from, to), mount (source, target, fstype).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct TwoPathRecord {
    pub header: Header,
    pub ret: i64,
    pub a: u64,
    pub name: [u8; NAME_LEN],
    pub first: [u8; PATH_LEN],
    pub second: [u8; PATH_LEN],
}

/// A syscall with a short name: init/finit/delete_module.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct NameRecord {
    pub header: Header,
    pub ret: i64,
    /// Syscall number, telling which module operation this was.
    pub nr: u64,
    pub name: [u8; NAME_LEN],
}

/// Socket calls: the address the caller passed (connect, bind), the peer the kernel returned
/// (accept), or the address the socket was bound to (listen, accept's local side).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct SockRecord {
    pub header: Header,
    pub ret: i64,
    pub fd: i64,
    /// listen's backlog.
    pub backlog: i64,
    /// The user buffer the kernel fills at exit (accept's peer); used by the probes only.
    pub uptr: u64,
    /// Bytes of `addr` the caller or the kernel filled in; 0 when unknown.
    pub addr_len: u32,
    /// Bytes of `local` filled in; 0 when unknown.
    pub local_len: u32,
    pub addr: [u8; SOCKADDR_LEN],
    pub local: [u8; SOCKADDR_LEN],
}

/// Integer-only events: fork (child), exit (code), file bursts (counts), credential changes
/// (ids), capset (capability sets), ptrace (request, target), bpf (cmd, prog type).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ArgsRecord {
    pub header: Header,
    pub ret: i64,
    /// Syscall number where several syscalls share a kind (credential calls).
    pub nr: u64,
    pub args: [u64; 4],
}

/// Data of a path-prefix filter key: the path's first bytes, zero-padded. The filter is an
/// LPM trie whose prefix length counts bits of these bytes.
pub type FilterPath = [u8; FILTER_LEN];

/// Value of the path-prefix filter: which accesses under the prefix are reported.
pub const WATCH_READ: u32 = 1;
pub const WATCH_WRITE: u32 = 2;
/// Report only if the path also contains `/.ssh/` (home directories).
pub const WATCH_SSH_ONLY: u32 = 4;

/// Per-process counters of file modifications, for burst detection in the kernel.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct BurstState {
    pub window_start_ns: u64,
    pub writes: u32,
    pub renames: u32,
    pub unlinks: u32,
    /// The total at which this window reports next: the threshold first (0 stands for it),
    /// then twice the last reported total, so a window reports its growth a few times at most.
    pub next_report: u32,
}

/// `nr` of a `FileBurst` record whose counters are those of all the children of the
/// recording process's parent (a shell loop running one helper per file), not its own.
pub const BURST_CHILDREN: u64 = 1;

/// Everything the probes need that is only known at load time. Written once into the
/// probes' read-only data (`CONFIG`), so the verifier sees constants.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Config {
    /// The agent's own tgid: its activity is never reported.
    pub agent_tgid: u32,
    /// `CONFIG_*` bits below.
    pub flags: u32,
    /// Byte offsets inside kernel structs, resolved from the kernel's BTF at load time;
    /// 0 means "not found" and the probe leaves the field unknown.
    pub off_task_real_parent: u32,
    pub off_task_tgid: u32,
    pub off_task_pid: u32,
    pub off_task_cred: u32,
    pub off_task_exit_code: u32,
    pub off_cred_euid: u32,
    /// Window and threshold of the file-modification burst counter.
    pub burst_window_ns: u64,
    pub burst_threshold: u32,
    /// Ring-buffer fill level (bytes) at which a submit wakes the reader; below it, readers
    /// poll on a timer so one event does not cost one interrupt.
    pub wakeup_bytes: u32,
    /// `task_struct.nsproxy`, `nsproxy.net_ns` and `net.ns.inum`: the current task's network
    /// namespace, read only when `CONFIG_NETNS_SCOPE` is set.
    pub off_task_nsproxy: u32,
    pub off_nsproxy_net_ns: u32,
    pub off_net_inum: u32,
}

/// Report connect/bind/accept/listen on unix sockets too (noisy: off by default).
pub const CONFIG_UNIX_SOCKETS: u32 = 1;
/// Report execs that failed with ENOENT (a shell's `$PATH` search makes many: off by default).
pub const CONFIG_EXEC_ENOENT: u32 = 2;
/// Report only tasks in the network namespaces listed in the probes' `NETNS` map (a host
/// running several namespaced services, or one machine standing for several hosts).
pub const CONFIG_NETNS_SCOPE: u32 = 4;

/// Syscall numbers the raw `sys_enter`/`sys_exit` probes watch, by architecture. Module
/// syscalls have no dedicated tracepoint on kernels built without module support.
#[cfg(target_arch = "x86_64")]
pub mod nr {
    pub const INIT_MODULE: u64 = 175;
    pub const DELETE_MODULE: u64 = 176;
    pub const FINIT_MODULE: u64 = 313;
}

#[cfg(target_arch = "aarch64")]
pub mod nr {
    pub const INIT_MODULE: u64 = 105;
    pub const DELETE_MODULE: u64 = 106;
    pub const FINIT_MODULE: u64 = 273;
}

/// The probes are compiled for the BPF target; the syscall table is the host's, chosen by
/// the `bpf_target_arch` cfg that aya-build sets.
#[cfg(target_arch = "bpf")]
pub mod nr {
    #[cfg(bpf_target_arch = "x86_64")]
    pub const INIT_MODULE: u64 = 175;
    #[cfg(bpf_target_arch = "x86_64")]
    pub const DELETE_MODULE: u64 = 176;
    #[cfg(bpf_target_arch = "x86_64")]
    pub const FINIT_MODULE: u64 = 313;
    #[cfg(bpf_target_arch = "aarch64")]
    pub const INIT_MODULE: u64 = 105;
    #[cfg(bpf_target_arch = "aarch64")]
    pub const DELETE_MODULE: u64 = 106;
    #[cfg(bpf_target_arch = "aarch64")]
    pub const FINIT_MODULE: u64 = 273;
}

/// Credential syscalls, identified in [`ArgsRecord::nr`] by a stable code rather than the
/// architecture's syscall number.
pub mod cred {
    pub const SETUID: u64 = 1;
    pub const SETREUID: u64 = 2;
    pub const SETRESUID: u64 = 3;
    pub const SETGID: u64 = 4;
    pub const SETREGID: u64 = 5;
    pub const SETRESGID: u64 = 6;
}

/// Module operations in [`NameRecord::nr`].
pub mod module {
    pub const INIT: u64 = 1;
    pub const FINIT: u64 = 2;
    pub const DELETE: u64 = 3;
}

#[cfg(feature = "user")]
mod pod {
    use super::*;
    // SAFETY: all these types are #[repr(C)] (or packed) plain integers and byte arrays with
    // explicit padding fields, so every bit pattern is valid.
    unsafe impl aya::Pod for BurstState {}
    unsafe impl aya::Pod for Config {}
}
