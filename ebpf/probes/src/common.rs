//! What every probe shares: load-time configuration, the event ring buffer, per-CPU counters,
//! the in-flight maps that join a syscall's arguments (at entry) with its result (at exit),
//! and the record header.

use aya_ebpf::{
    bindings::{BPF_RB_AVAIL_DATA, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP},
    helpers::{
        bpf_get_current_cgroup_id, bpf_get_current_comm, bpf_get_current_pid_tgid,
        bpf_get_current_task, bpf_get_current_uid_gid, bpf_ktime_get_boot_ns,
        bpf_probe_read_kernel,
    },
    macros::map,
    maps::{HashMap, LruHashMap, PerCpuArray, RingBuf},
};
use heir_abi::{
    ArgsRecord, CONFIG_NETNS_SCOPE, Config, ExecRecord, Header, Kind, NameRecord, PathRecord,
    SockRecord, TwoPathRecord,
};

/// Set by the agent at load time (`EbpfLoader::set_global`); read-only for the verifier.
#[unsafe(no_mangle)]
pub(crate) static CONFIG: Config = Config {
    agent_tgid: 0,
    flags: 0,
    off_task_real_parent: 0,
    off_task_tgid: 0,
    off_task_pid: 0,
    off_task_cred: 0,
    off_task_exit_code: 0,
    off_cred_euid: 0,
    burst_window_ns: 1_000_000_000,
    burst_threshold: 64,
    wakeup_bytes: 256 * 1024,
    off_task_nsproxy: 0,
    off_nsproxy_net_ns: 0,
    off_net_inum: 0,
};

macro_rules! config {
    ($field:ident) => {
        // SAFETY: CONFIG is a plain static; a volatile read stops the compiler from folding
        // the link-time default in, so the value the agent wrote is what the probe sees.
        unsafe { core::ptr::read_volatile(&crate::common::CONFIG.$field) }
    };
}
pub(crate) use config;

/// All records go through one ring buffer, so userspace sees them in order per CPU. The agent
/// resizes it at load time.
#[map]
pub static EVENTS: RingBuf = RingBuf::with_byte_size(16 * 1024 * 1024, 0);

/// Records submitted, per kind.
#[map]
pub static EMITTED: PerCpuArray<u64> = PerCpuArray::with_max_entries(Kind::COUNT, 0);
/// Records lost because the ring buffer was full, per kind.
#[map]
pub static LOST: PerCpuArray<u64> = PerCpuArray::with_max_entries(Kind::COUNT, 0);
/// Events dropped on purpose by an in-kernel filter, per kind.
#[map]
pub static FILTERED: PerCpuArray<u64> = PerCpuArray::with_max_entries(Kind::COUNT, 0);

#[inline(always)]
pub fn count(map: &PerCpuArray<u64>, kind: Kind) {
    if let Some(p) = map.get_ptr_mut(kind as u32) {
        // SAFETY: per-CPU slot, no concurrent writer on this CPU while the program runs.
        unsafe { *p += 1 };
    }
}

/// The network namespaces (inode numbers) the sensor is scoped to, when
/// `CONFIG_NETNS_SCOPE` is set.
#[map]
pub static NETNS: HashMap<u32, u8> = HashMap::with_max_entries(64, 0);

/// True when the current task's syscalls are not reported: the agent's own, and, when the
/// sensor is scoped to some network namespaces, those of tasks outside them.
#[inline(always)]
pub fn ignored() -> bool {
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    tgid == config!(agent_tgid) || out_of_scope()
}

/// True when the sensor is scoped to some network namespaces and the current task is in
/// none of them. A task whose namespace cannot be read (an exiting one) stays reported.
#[inline(always)]
pub fn out_of_scope() -> bool {
    if config!(flags) & CONFIG_NETNS_SCOPE == 0 {
        return false;
    }
    // SAFETY: returns a pointer value only; every dereference goes through probe_read.
    let task = unsafe { bpf_get_current_task() };
    let inum = read_kernel::<u64>(task, config!(off_task_nsproxy))
        .and_then(|ns| read_kernel::<u64>(ns, config!(off_nsproxy_net_ns)))
        .and_then(|net| read_kernel::<u32>(net, config!(off_net_inum)));
    // SAFETY: a read-only lookup; the value is not kept.
    inum.is_some_and(|i| unsafe { NETNS.get(&i) }.is_none())
}

#[inline(always)]
pub fn current_tid() -> u64 {
    bpf_get_current_pid_tgid() & 0xffff_ffff
}

/// Reads `*(base + off)` from kernel memory; `None` when the offset is unknown or unreadable.
#[inline(always)]
pub fn read_kernel<T: Copy>(base: u64, off: u32) -> Option<T> {
    if base == 0 || off == 0 {
        return None;
    }
    // SAFETY: bpf_probe_read_kernel validates the address and fails instead of faulting.
    unsafe { bpf_probe_read_kernel((base + u64::from(off)) as *const T).ok() }
}

/// The thread-group id of the current task's parent; 0 when it cannot be read.
#[inline(always)]
pub fn parent_tgid() -> u32 {
    // SAFETY: returns a pointer value only; every dereference goes through probe_read.
    parent_tgid_of(unsafe { bpf_get_current_task() })
}

#[inline(always)]
fn parent_tgid_of(task: u64) -> u32 {
    read_kernel::<u64>(task, config!(off_task_real_parent))
        .and_then(|parent| read_kernel::<u32>(parent, config!(off_task_tgid)))
        .unwrap_or(0)
}

/// Fills the header in place: who, when, in which cgroup.
#[inline(always)]
pub fn fill_header(h: &mut Header, kind: Kind) {
    let pid_tgid = bpf_get_current_pid_tgid();
    let uid_gid = bpf_get_current_uid_gid();
    h.kind = kind as u16;
    h.flags = 0;
    h.tid = pid_tgid as u32;
    h.tgid = (pid_tgid >> 32) as u32;
    h.uid = uid_gid as u32;
    h.gid = (uid_gid >> 32) as u32;
    h._pad = 0;
    // SAFETY: helpers without preconditions.
    unsafe {
        h.ts_boot_ns = bpf_ktime_get_boot_ns();
        h.cgroup_id = bpf_get_current_cgroup_id();
    }
    h.comm = bpf_get_current_comm().unwrap_or([0; 16]);
    // SAFETY: returns a pointer value only; every dereference goes through probe_read.
    let task = unsafe { bpf_get_current_task() };
    h.ppid = parent_tgid_of(task);
    h.euid = read_kernel::<u64>(task, config!(off_task_cred))
        .and_then(|cred| read_kernel::<u32>(cred, config!(off_cred_euid)))
        .unwrap_or(u32::MAX);
}

/// Submits a finished record, waking the reader only when enough data is waiting: a wake-up
/// per event would cost an interrupt each and cap throughput far below what the ring allows.
#[inline(always)]
pub fn submit<T>(record: &T, kind: Kind) {
    let pending = EVENTS.query(BPF_RB_AVAIL_DATA as u64);
    let flags = if pending >= u64::from(config!(wakeup_bytes)) {
        BPF_RB_FORCE_WAKEUP
    } else {
        BPF_RB_NO_WAKEUP
    };
    match EVENTS.output::<T>(record, flags as u64) {
        Ok(()) => count(&EMITTED, kind),
        Err(_) => count(&LOST, kind),
    }
}

/// Reserves a record of type `T` directly in the ring buffer, so large records are written
/// once, in place; counts a loss when the ring is full.
#[inline(always)]
pub fn reserve<T: 'static>(kind: Kind) -> Option<aya_ebpf::maps::ring_buf::RingBufEntry<T>> {
    let entry = EVENTS.reserve::<T>(0);
    if entry.is_none() {
        count(&LOST, kind);
    }
    entry
}

/// Submits a reserved record, with the same wake-up policy as [`submit`].
#[inline(always)]
pub fn commit<T: 'static>(entry: aya_ebpf::maps::ring_buf::RingBufEntry<T>, kind: Kind) {
    let pending = EVENTS.query(BPF_RB_AVAIL_DATA as u64);
    let flags = if pending >= u64::from(config!(wakeup_bytes)) {
        BPF_RB_FORCE_WAKEUP
    } else {
        BPF_RB_NO_WAKEUP
    };
    entry.submit(flags as u64);
    count(&EMITTED, kind);
}

// In-flight records: built at syscall entry, completed at exit, keyed by thread. The maps are
// passed in by reference (never stored in a static) so every access compiles to a direct map
// reference the loader can relocate.

/// A per-CPU scratch record to fill before [`stash`]; records are too large for the 512-byte
/// BPF stack.
#[inline(always)]
pub fn scratch<T: 'static>(map: &PerCpuArray<T>) -> Option<&'static mut T> {
    // SAFETY: per-CPU slot, used only for the duration of this program run.
    map.get_ptr_mut(0).map(|p| unsafe { &mut *p })
}

#[inline(always)]
pub fn stash<T>(map: &LruHashMap<u64, T>, record: &T) {
    let _ = map.insert(&current_tid(), record, 0);
}

/// This thread's in-flight record, if one was stashed at entry.
#[inline(always)]
pub fn take<T: 'static>(map: &LruHashMap<u64, T>) -> Option<&'static mut T> {
    let tid = current_tid();
    // SAFETY: the entry belongs to this thread, which is the only one touching it.
    map.get_ptr_mut(&tid).map(|p| unsafe { &mut *p })
}

#[inline(always)]
pub fn done<T>(map: &LruHashMap<u64, T>) {
    let _ = map.remove(&current_tid());
}

/// Completes this thread's in-flight record with the syscall's result and submits it.
#[inline(always)]
pub fn finish<T: 'static>(
    map: &LruHashMap<u64, T>,
    kind: Kind,
    ret: i64,
    set_ret: impl FnOnce(&mut T, i64),
) {
    if let Some(rec) = take(map) {
        set_ret(rec, ret);
        submit(rec, kind);
        done(map);
    }
}

/// Where the syscall arguments sit in `struct pt_regs`, which the raw `sys_enter`
/// tracepoint hands over: the architecture's syscall calling convention.
#[cfg(bpf_target_arch = "x86_64")]
const ARG_REGS: [u64; 6] = [112, 104, 96, 56, 72, 64]; // di, si, dx, r10, r8, r9
#[cfg(bpf_target_arch = "x86_64")]
pub const NR_REG: u64 = 120; // orig_ax

#[cfg(bpf_target_arch = "aarch64")]
const ARG_REGS: [u64; 6] = [272, 8, 16, 24, 32, 40]; // orig_x0, x1..x5
#[cfg(bpf_target_arch = "aarch64")]
pub const NR_REG: u64 = 280; // syscallno

/// Syscall argument `n` of the current syscall (raw `sys_enter` handlers only).
#[inline(always)]
pub fn arg(ctx: &aya_ebpf::programs::RawTracePointContext, n: usize) -> u64 {
    let regs: u64 = ctx.arg(0);
    // SAFETY: probe_read_kernel validates the address.
    unsafe { bpf_probe_read_kernel((regs + ARG_REGS[n]) as *const u64) }.unwrap_or(0)
}

/// The current syscall's return value (raw `sys_exit` handlers only).
#[inline(always)]
pub fn ret(ctx: &aya_ebpf::programs::RawTracePointContext) -> i64 {
    ctx.arg(1)
}

/// In-flight maps, one per record shape: a thread is inside one syscall at a time, so one
/// entry per thread and shape suffices. LRU, so a syscall whose exit never comes (a thread
/// killed inside it) cannot leak an entry.
#[map]
pub static INFLIGHT_EXEC: LruHashMap<u64, ExecRecord> = LruHashMap::with_max_entries(1024, 0);
#[map]
pub static SCRATCH_EXEC: PerCpuArray<ExecRecord> = PerCpuArray::with_max_entries(1, 0);
#[map]
pub static INFLIGHT_PATH: LruHashMap<u64, PathRecord> = LruHashMap::with_max_entries(4096, 0);
#[map]
pub static SCRATCH_PATH: PerCpuArray<PathRecord> = PerCpuArray::with_max_entries(1, 0);
#[map]
pub static INFLIGHT_TWO: LruHashMap<u64, TwoPathRecord> = LruHashMap::with_max_entries(1024, 0);
#[map]
pub static SCRATCH_TWO: PerCpuArray<TwoPathRecord> = PerCpuArray::with_max_entries(1, 0);
#[map]
pub static INFLIGHT_SOCK: LruHashMap<u64, SockRecord> = LruHashMap::with_max_entries(4096, 0);
#[map]
pub static SCRATCH_SOCK: PerCpuArray<SockRecord> = PerCpuArray::with_max_entries(1, 0);
#[map]
pub static INFLIGHT_ARGS: LruHashMap<u64, ArgsRecord> = LruHashMap::with_max_entries(4096, 0);
#[map]
pub static SCRATCH_ARGS: PerCpuArray<ArgsRecord> = PerCpuArray::with_max_entries(1, 0);
#[map]
pub static INFLIGHT_NAME: LruHashMap<u64, NameRecord> = LruHashMap::with_max_entries(256, 0);
#[map]
pub static SCRATCH_NAME: PerCpuArray<NameRecord> = PerCpuArray::with_max_entries(1, 0);

/// Copies a user-space C string into `dst`, NUL-terminated; flags the header when cut.
#[inline(always)]
pub fn read_user_str(src: u64, dst: &mut [u8], h: &mut Header) {
    if src == 0 {
        dst[0] = 0;
        return;
    }
    // SAFETY: probe_read_user_str validates the source and bounds the copy by dst's length.
    match unsafe { aya_ebpf::helpers::bpf_probe_read_user_str_bytes(src as *const u8, dst) } {
        Ok(s) => {
            if s.len() + 1 >= dst.len() {
                h.flags |= heir_abi::HDR_TRUNCATED;
            }
        }
        Err(_) => dst[0] = 0,
    }
}
