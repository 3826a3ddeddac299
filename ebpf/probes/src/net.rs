//! Sockets: connect, accept, bind and listen, with the addresses involved.
//!
//! The kernel does not hand listen or accept the local address, so successful binds are
//! remembered per (process, fd) and looked up there.

use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, bpf_probe_read_user, bpf_probe_read_user_buf},
    macros::{map, raw_tracepoint},
    maps::LruHashMap,
    programs::RawTracePointContext,
};
use heir_abi::{CONFIG_UNIX_SOCKETS, Kind, SOCKADDR_LEN, SockRecord};

use crate::common::{
    FILTERED, INFLIGHT_SOCK, SCRATCH_SOCK, arg, config, count, done, fill_header, ignored, ret,
    scratch, stash, submit, take,
};

const AF_UNIX: u16 = 1;
const AF_INET: u16 = 2;
const AF_INET6: u16 = 10;

#[repr(C)]
#[derive(Clone, Copy)]
struct Bound {
    len: u32,
    addr: [u8; SOCKADDR_LEN],
}

/// (tgid << 32 | fd) → the address the socket was bound to.
#[map]
static BOUND: LruHashMap<u64, Bound> = LruHashMap::with_max_entries(16384, 0);

#[inline(always)]
fn bound_key(fd: i64) -> u64 {
    (bpf_get_current_pid_tgid() & 0xffff_ffff_0000_0000) | (fd as u64 & 0xffff_ffff)
}

#[inline(always)]
fn family_wanted(family: u16) -> bool {
    match family {
        AF_INET | AF_INET6 => true,
        AF_UNIX => config!(flags) & CONFIG_UNIX_SOCKETS != 0,
        _ => false,
    }
}

/// Copies a sockaddr from user memory, sized by its family; returns (family, bytes copied).
#[inline(always)]
fn read_sockaddr(src: u64, dst: &mut [u8; SOCKADDR_LEN]) -> (u16, u32) {
    if src == 0 {
        return (0, 0);
    }
    // SAFETY: probe reads validate the address and are bounded by constant lengths.
    let family: u16 = match unsafe { bpf_probe_read_user(src as *const u16) } {
        Ok(f) => f,
        Err(_) => return (0, 0),
    };
    let n = match family {
        AF_INET => 16,
        AF_INET6 => 28,
        AF_UNIX => 110,
        _ => 2,
    };
    let ok = unsafe { bpf_probe_read_user_buf(src as *const u8, &mut dst[..n]) }.is_ok();
    if ok { (family, n as u32) } else { (0, 0) }
}

#[inline(always)]
fn new_record(kind: Kind, fd: i64) -> Option<&'static mut SockRecord> {
    let rec = scratch(&SCRATCH_SOCK)?;
    fill_header(&mut rec.header, kind);
    rec.ret = 0;
    rec.fd = fd;
    rec.backlog = 0;
    rec.uptr = 0;
    rec.addr_len = 0;
    rec.local_len = 0;
    Some(rec)
}

/// connect and bind: the caller passes the address.
#[inline(always)]
fn addr_enter(kind: Kind, fd: i64, uaddr: u64) -> i32 {
    if ignored() {
        return 0;
    }
    let Some(rec) = new_record(kind, fd) else {
        return 0;
    };
    let (family, len) = read_sockaddr(uaddr, &mut rec.addr);
    if !family_wanted(family) {
        count(&FILTERED, kind);
        return 0;
    }
    rec.addr_len = len;
    stash(&INFLIGHT_SOCK, rec);
    0
}

#[raw_tracepoint]
pub fn enter_connect(ctx: RawTracePointContext) -> i32 {
    addr_enter(Kind::Connect, arg(&ctx, 0) as i64, arg(&ctx, 1))
}

#[raw_tracepoint]
pub fn exit_connect(ctx: RawTracePointContext) -> i32 {
    if let Some(rec) = take(&INFLIGHT_SOCK) {
        rec.ret = ret(&ctx);
        submit(rec, Kind::Connect);
        done(&INFLIGHT_SOCK);
    }
    0
}

#[raw_tracepoint]
pub fn enter_bind(ctx: RawTracePointContext) -> i32 {
    addr_enter(Kind::Bind, arg(&ctx, 0) as i64, arg(&ctx, 1))
}

#[raw_tracepoint]
pub fn exit_bind(ctx: RawTracePointContext) -> i32 {
    if let Some(rec) = take(&INFLIGHT_SOCK) {
        rec.ret = ret(&ctx);
        if rec.ret == 0 {
            let mut b = Bound {
                len: rec.addr_len,
                addr: [0; SOCKADDR_LEN],
            };
            b.addr = rec.addr;
            let _ = BOUND.insert(&bound_key(rec.fd), &b, 0);
        }
        submit(rec, Kind::Bind);
        done(&INFLIGHT_SOCK);
    }
    0
}

/// Fills `local` from the remembered bind of `fd`; false when the socket is known to be of
/// an unwanted family.
#[inline(always)]
fn fill_local(rec: &mut SockRecord) -> bool {
    // SAFETY: map value read-only here.
    if let Some(b) = unsafe { BOUND.get(&bound_key(rec.fd)) } {
        rec.local = b.addr;
        rec.local_len = b.len;
        let family = u16::from_ne_bytes([b.addr[0], b.addr[1]]);
        return family_wanted(family);
    }
    true
}

#[raw_tracepoint]
pub fn enter_listen(ctx: RawTracePointContext) -> i32 {
    if ignored() {
        return 0;
    }
    let Some(rec) = new_record(Kind::Listen, arg(&ctx, 0) as i64) else {
        return 0;
    };
    rec.backlog = arg(&ctx, 1) as i64;
    if !fill_local(rec) {
        count(&FILTERED, Kind::Listen);
        return 0;
    }
    stash(&INFLIGHT_SOCK, rec);
    0
}

#[raw_tracepoint]
pub fn exit_listen(ctx: RawTracePointContext) -> i32 {
    if let Some(rec) = take(&INFLIGHT_SOCK) {
        rec.ret = ret(&ctx);
        submit(rec, Kind::Listen);
        done(&INFLIGHT_SOCK);
    }
    0
}

#[inline(always)]
fn accept_enter(ctx: &RawTracePointContext) -> i32 {
    if ignored() {
        return 0;
    }
    let Some(rec) = new_record(Kind::Accept, arg(ctx, 0) as i64) else {
        return 0;
    };
    if !fill_local(rec) {
        count(&FILTERED, Kind::Accept);
        return 0;
    }
    rec.uptr = arg(ctx, 1);
    stash(&INFLIGHT_SOCK, rec);
    0
}

#[inline(always)]
fn accept_exit(ctx: &RawTracePointContext) -> i32 {
    let Some(rec) = take(&INFLIGHT_SOCK) else {
        return 0;
    };
    rec.ret = ret(ctx);
    if rec.ret >= 0 {
        let (family, len) = read_sockaddr(rec.uptr, &mut rec.addr);
        rec.addr_len = len;
        if family != 0 && !family_wanted(family) {
            count(&FILTERED, Kind::Accept);
            done(&INFLIGHT_SOCK);
            return 0;
        }
    }
    rec.uptr = 0;
    submit(rec, Kind::Accept);
    done(&INFLIGHT_SOCK);
    0
}

#[raw_tracepoint]
pub fn enter_accept(ctx: RawTracePointContext) -> i32 {
    accept_enter(&ctx)
}

#[raw_tracepoint]
pub fn enter_accept4(ctx: RawTracePointContext) -> i32 {
    accept_enter(&ctx)
}

#[raw_tracepoint]
pub fn exit_accept(ctx: RawTracePointContext) -> i32 {
    accept_exit(&ctx)
}

#[raw_tracepoint]
pub fn exit_accept4(ctx: RawTracePointContext) -> i32 {
    accept_exit(&ctx)
}
