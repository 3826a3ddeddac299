//! Files: opens under watched path prefixes, renames and unlinks, and per-process bursts of
//! file modification counted in the kernel (what ransomware looks like from here).
//!
//! The watch list is an LPM trie over the path's first bytes, filled by the agent from its
//! configuration: an open whose path matches no prefix costs one trie lookup and never leaves
//! the kernel. Only absolute paths can match; relative opens are resolved against the working
//! directory in userspace terms only, which the kernel cannot do cheaply here.

use aya_ebpf::{
    helpers::{bpf_ktime_get_boot_ns, bpf_probe_read_user, bpf_probe_read_user_str_bytes},
    macros::{map, raw_tracepoint},
    maps::{HashMap, LpmTrie, LruHashMap, lpm_trie::Key},
    programs::RawTracePointContext,
};
use heir_abi::{
    ArgsRecord, BurstState, FILTER_LEN, FilterPath, Kind, PathRecord, WATCH_READ, WATCH_SSH_ONLY,
    WATCH_WRITE,
};

use crate::common::{
    FILTERED, INFLIGHT_TWO, LOST, SCRATCH_ARGS, SCRATCH_TWO, arg, commit, config, count,
    current_tid, fill_header, finish, ignored, parent_tgid, read_user_str, reserve, ret, scratch,
    stash, submit,
};

/// Watched path prefixes → `WATCH_*` bits.
#[map]
static WATCH: LpmTrie<FilterPath, u32> = LpmTrie::with_max_entries(1024, 0);

/// Per-process file-modification counters, keyed by tgid.
#[map]
static BURSTS: LruHashMap<u32, BurstState> = LruHashMap::with_max_entries(8192, 0);
/// The same counters per parent, over all its children: a shell loop that runs one `openssl`
/// and one `rm` per file makes no burst in any one process.
#[map]
static CHILD_BURSTS: LruHashMap<u32, BurstState> = LruHashMap::with_max_entries(8192, 0);

const O_ACCMODE: u64 = 3;
const O_CREAT: u64 = 0o100;
const O_TRUNC: u64 = 0o1000;

#[inline(always)]
fn is_write(flags: u64) -> bool {
    flags & O_ACCMODE != 0 || flags & (O_CREAT | O_TRUNC) != 0
}

/// The watch bits for `path`, after the home-directory refinement.
#[inline(always)]
fn watch_bits(path: u64) -> u32 {
    if path == 0 {
        return 0;
    }
    let mut key = Key::new((FILTER_LEN * 8) as u32, [0u8; FILTER_LEN]);
    let data: &mut FilterPath = &mut key.data;
    // SAFETY: bounded by the buffer; fails cleanly on a bad pointer.
    if unsafe { bpf_probe_read_user_str_bytes(path as *const u8, data) }.is_err() {
        return 0;
    }
    let Some(bits) = WATCH.get(&key).copied() else {
        return 0;
    };
    if bits & WATCH_SSH_ONLY != 0 && !contains_ssh_dir(&key.data) {
        return 0;
    }
    bits
}

/// Whether the path contains `/.ssh/`, for prefixes (such as `/home/`) watched only there.
#[inline(always)]
fn contains_ssh_dir(p: &FilterPath) -> bool {
    const NEEDLE: [u8; 6] = *b"/.ssh/";
    let mut i = 0;
    while i + NEEDLE.len() <= FILTER_LEN {
        if p[i] == 0 {
            return false;
        }
        if p[i] == NEEDLE[0]
            && p[i + 1] == NEEDLE[1]
            && p[i + 2] == NEEDLE[2]
            && p[i + 3] == NEEDLE[3]
            && p[i + 4] == NEEDLE[4]
            && p[i + 5] == NEEDLE[5]
        {
            return true;
        }
        i += 1;
    }
    false
}

#[derive(Clone, Copy)]
enum Modification {
    Write,
    Rename,
    Unlink,
}

/// Counts one modification for the current process, and for its parent over all of the
/// parent's children.
#[inline(always)]
fn count_modification(m: Modification) {
    let tgid = (aya_ebpf::helpers::bpf_get_current_pid_tgid() >> 32) as u32;
    count_in(&BURSTS, tgid, m, 0);
    let parent = parent_tgid();
    if parent > 1 {
        count_in(&CHILD_BURSTS, parent, m, heir_abi::BURST_CHILDREN);
    }
}

/// Counts one modification under `key` and reports the window's counters when their total
/// reaches the threshold, then again each time it doubles.
#[inline(always)]
fn count_in(map: &LruHashMap<u32, BurstState>, key: u32, m: Modification, scope: u64) {
    // SAFETY: helper without preconditions.
    let now = unsafe { bpf_ktime_get_boot_ns() };
    let window = config!(burst_window_ns);
    let state = match map.get_ptr_mut(&key) {
        Some(p) => p,
        None => {
            let fresh = BurstState {
                window_start_ns: now,
                ..BurstState::default()
            };
            let _ = map.insert(&key, &fresh, 0);
            match map.get_ptr_mut(&key) {
                Some(p) => p,
                None => return,
            }
        }
    };
    // SAFETY: map value owned by this key's entry; concurrent threads may race on the
    // counters, which only makes a burst count approximate.
    let s = unsafe { &mut *state };
    if now.wrapping_sub(s.window_start_ns) > window {
        *s = BurstState {
            window_start_ns: now,
            ..BurstState::default()
        };
    }
    match m {
        Modification::Write => s.writes += 1,
        Modification::Rename => s.renames += 1,
        Modification::Unlink => s.unlinks += 1,
    }
    let total = s.writes + s.renames + s.unlinks;
    let threshold = config!(burst_threshold);
    let next = if s.next_report == 0 {
        threshold
    } else {
        s.next_report
    };
    if total >= next {
        s.next_report = total.saturating_mul(2);
        let Some(rec) = scratch(&SCRATCH_ARGS) else {
            return;
        };
        fill_header(&mut rec.header, Kind::FileBurst);
        rec.ret = 0;
        rec.nr = scope;
        rec.args = [
            u64::from(s.writes),
            u64::from(s.renames),
            u64::from(s.unlinks),
            window / 1_000_000,
        ];
        submit::<ArgsRecord>(rec, Kind::FileBurst);
    }
}

/// What an open or unlink that passed the filter needs at exit: the record itself is written
/// straight into the ring buffer there, so the hot path copies no large scratch record.
#[repr(C)]
#[derive(Clone, Copy)]
struct PendingPath {
    path: u64,
    a: u64,
    b: u64,
}

/// A plain preallocated hash rather than an LRU: LRU inserts cost this hot path more than a
/// third of its time. A thread's entry is overwritten by its next watched call; an entry whose
/// exit never came (a thread killed inside open) waits for its tid to be reused. When the map
/// is full the event is counted as lost.
#[map]
static PENDING_PATH: HashMap<u64, PendingPath> = HashMap::with_max_entries(16384, 0);

#[inline(always)]
fn open_enter(path: u64, flags: u64, mode: u64) -> i32 {
    if ignored() {
        return 0;
    }
    let write = is_write(flags);
    if write {
        count_modification(Modification::Write);
    }
    let want = if write { WATCH_WRITE } else { WATCH_READ };
    if watch_bits(path) & want == 0 {
        count(&FILTERED, Kind::Open);
        return 0;
    }
    let pending = PendingPath {
        path,
        a: flags,
        b: mode,
    };
    if PENDING_PATH.insert(&current_tid(), &pending, 0).is_err() {
        count(&LOST, Kind::Open);
    }
    0
}

#[raw_tracepoint]
pub fn enter_open(ctx: RawTracePointContext) -> i32 {
    open_enter(arg(&ctx, 0), arg(&ctx, 1), arg(&ctx, 2))
}

#[raw_tracepoint]
pub fn enter_creat(ctx: RawTracePointContext) -> i32 {
    open_enter(arg(&ctx, 0), 0o1101, arg(&ctx, 1))
}

#[raw_tracepoint]
pub fn enter_openat(ctx: RawTracePointContext) -> i32 {
    open_enter(arg(&ctx, 1), arg(&ctx, 2), arg(&ctx, 3))
}

#[raw_tracepoint]
pub fn enter_openat2(ctx: RawTracePointContext) -> i32 {
    let how = arg(&ctx, 2);
    // struct open_how { u64 flags; u64 mode; u64 resolve; }
    // SAFETY: probe_read_user validates the address.
    let flags: u64 = unsafe { bpf_probe_read_user(how as *const u64) }.unwrap_or(0);
    let mode: u64 = unsafe { bpf_probe_read_user((how + 8) as *const u64) }.unwrap_or(0);
    open_enter(arg(&ctx, 1), flags, mode)
}

/// Completes an open or unlink: the path is read again from the caller's buffer, which is
/// still mapped at exit.
#[inline(always)]
fn path_exit(ctx: &RawTracePointContext, kind: Kind) -> i32 {
    let tid = current_tid();
    // SAFETY: this thread's own entry.
    let Some(p) = (unsafe { PENDING_PATH.get(&tid) }).copied() else {
        return 0;
    };
    let _ = PENDING_PATH.remove(&tid);
    let Some(mut entry) = reserve::<PathRecord>(kind) else {
        return 0;
    };
    // SAFETY: the entry is exclusively ours until submitted; every field the decoder reads is
    // written below (the path up to its NUL).
    let rec = unsafe { &mut *entry.as_mut_ptr() };
    fill_header(&mut rec.header, kind);
    rec.ret = ret(ctx);
    rec.a = p.a;
    rec.b = p.b;
    read_user_str(p.path, &mut rec.path, &mut rec.header);
    commit(entry, kind);
    0
}

#[raw_tracepoint]
pub fn exit_open(ctx: RawTracePointContext) -> i32 {
    path_exit(&ctx, Kind::Open)
}

#[raw_tracepoint]
pub fn exit_creat(ctx: RawTracePointContext) -> i32 {
    path_exit(&ctx, Kind::Open)
}

#[raw_tracepoint]
pub fn exit_openat(ctx: RawTracePointContext) -> i32 {
    path_exit(&ctx, Kind::Open)
}

#[raw_tracepoint]
pub fn exit_openat2(ctx: RawTracePointContext) -> i32 {
    path_exit(&ctx, Kind::Open)
}

#[inline(always)]
fn rename_enter(from: u64, to: u64, flags: u64) -> i32 {
    if ignored() {
        return 0;
    }
    count_modification(Modification::Rename);
    if (watch_bits(from) | watch_bits(to)) & WATCH_WRITE == 0 {
        count(&FILTERED, Kind::Rename);
        return 0;
    }
    let Some(rec) = scratch(&SCRATCH_TWO) else {
        return 0;
    };
    fill_header(&mut rec.header, Kind::Rename);
    rec.ret = 0;
    rec.a = flags;
    rec.name[0] = 0;
    read_user_str(from, &mut rec.first, &mut rec.header);
    read_user_str(to, &mut rec.second, &mut rec.header);
    stash(&INFLIGHT_TWO, rec);
    0
}

#[raw_tracepoint]
pub fn enter_rename(ctx: RawTracePointContext) -> i32 {
    rename_enter(arg(&ctx, 0), arg(&ctx, 1), 0)
}

#[raw_tracepoint]
pub fn enter_renameat(ctx: RawTracePointContext) -> i32 {
    rename_enter(arg(&ctx, 1), arg(&ctx, 3), 0)
}

#[raw_tracepoint]
pub fn enter_renameat2(ctx: RawTracePointContext) -> i32 {
    rename_enter(arg(&ctx, 1), arg(&ctx, 3), arg(&ctx, 4))
}

#[inline(always)]
fn two_exit(ctx: &RawTracePointContext, kind: Kind) -> i32 {
    finish(&INFLIGHT_TWO, kind, ret(ctx), |rec, r| rec.ret = r);
    0
}

#[raw_tracepoint]
pub fn exit_rename(ctx: RawTracePointContext) -> i32 {
    two_exit(&ctx, Kind::Rename)
}

#[raw_tracepoint]
pub fn exit_renameat(ctx: RawTracePointContext) -> i32 {
    two_exit(&ctx, Kind::Rename)
}

#[raw_tracepoint]
pub fn exit_renameat2(ctx: RawTracePointContext) -> i32 {
    two_exit(&ctx, Kind::Rename)
}

#[inline(always)]
fn unlink_enter(path: u64, flags: u64) -> i32 {
    if ignored() {
        return 0;
    }
    count_modification(Modification::Unlink);
    if watch_bits(path) & WATCH_WRITE == 0 {
        count(&FILTERED, Kind::Unlink);
        return 0;
    }
    let pending = PendingPath {
        path,
        a: flags,
        b: 0,
    };
    if PENDING_PATH.insert(&current_tid(), &pending, 0).is_err() {
        count(&LOST, Kind::Unlink);
    }
    0
}

#[raw_tracepoint]
pub fn enter_unlink(ctx: RawTracePointContext) -> i32 {
    unlink_enter(arg(&ctx, 0), 0)
}

#[raw_tracepoint]
pub fn enter_unlinkat(ctx: RawTracePointContext) -> i32 {
    unlink_enter(arg(&ctx, 1), arg(&ctx, 2))
}

#[raw_tracepoint]
pub fn exit_unlink(ctx: RawTracePointContext) -> i32 {
    path_exit(&ctx, Kind::Unlink)
}

#[raw_tracepoint]
pub fn exit_unlinkat(ctx: RawTracePointContext) -> i32 {
    path_exit(&ctx, Kind::Unlink)
}
