//! Reaching into the kernel: module loading, bpf() by other processes, memfd_create (fileless
//! payloads) and mount.
//!
//! Kernels built without module support have no tracepoints for init_module, finit_module and
//! delete_module, yet an attacker's attempt is still worth reporting: like every syscall here
//! they are caught through the raw `sys_enter`/`sys_exit` dispatchers, which do not depend on
//! the kernel having per-syscall tracepoints.

use aya_ebpf::{macros::raw_tracepoint, programs::RawTracePointContext};
use heir_abi::{Kind, module};

use crate::common::{
    INFLIGHT_ARGS, INFLIGHT_NAME, INFLIGHT_PATH, INFLIGHT_TWO, SCRATCH_ARGS, SCRATCH_NAME,
    SCRATCH_PATH, SCRATCH_TWO, arg, fill_header, finish, ignored, read_user_str, ret, scratch,
    stash,
};

#[inline(always)]
fn module_enter(op: u64, name: u64) -> i32 {
    if ignored() {
        return 0;
    }
    let Some(rec) = scratch(&SCRATCH_NAME) else {
        return 0;
    };
    fill_header(&mut rec.header, Kind::Module);
    rec.ret = 0;
    rec.nr = op;
    rec.name[0] = 0;
    read_user_str(name, &mut rec.name, &mut rec.header);
    stash(&INFLIGHT_NAME, rec);
    0
}

#[inline(always)]
fn module_exit(ctx: &RawTracePointContext) -> i32 {
    finish(&INFLIGHT_NAME, Kind::Module, ret(ctx), |rec, r| rec.ret = r);
    0
}

/// init_module(image, len, params): the module's name lives inside the ELF image, which is
/// not parsed here; the parameters say what it was given.
#[raw_tracepoint]
pub fn enter_init_module(ctx: RawTracePointContext) -> i32 {
    module_enter(module::INIT, arg(&ctx, 2))
}

/// finit_module(fd, params, flags)
#[raw_tracepoint]
pub fn enter_finit_module(ctx: RawTracePointContext) -> i32 {
    module_enter(module::FINIT, arg(&ctx, 1))
}

/// delete_module(name, flags)
#[raw_tracepoint]
pub fn enter_delete_module(ctx: RawTracePointContext) -> i32 {
    module_enter(module::DELETE, arg(&ctx, 0))
}

#[raw_tracepoint]
pub fn exit_init_module(ctx: RawTracePointContext) -> i32 {
    module_exit(&ctx)
}

#[raw_tracepoint]
pub fn exit_finit_module(ctx: RawTracePointContext) -> i32 {
    module_exit(&ctx)
}

#[raw_tracepoint]
pub fn exit_delete_module(ctx: RawTracePointContext) -> i32 {
    module_exit(&ctx)
}

/// bpf(cmd, attr, size): the program type is the first field of `attr` for BPF_PROG_LOAD.
#[raw_tracepoint]
pub fn enter_bpf(ctx: RawTracePointContext) -> i32 {
    if ignored() {
        return 0;
    }
    const BPF_PROG_LOAD: u64 = 5;
    let cmd = arg(&ctx, 0);
    let mut prog_type = u64::MAX;
    if cmd == BPF_PROG_LOAD {
        // SAFETY: probe_read_user validates the address.
        prog_type = unsafe { aya_ebpf::helpers::bpf_probe_read_user(arg(&ctx, 1) as *const u32) }
            .map(u64::from)
            .unwrap_or(u64::MAX);
    }
    let Some(rec) = scratch(&SCRATCH_ARGS) else {
        return 0;
    };
    fill_header(&mut rec.header, Kind::Bpf);
    rec.ret = 0;
    rec.nr = 0;
    rec.args = [cmd, prog_type, 0, 0];
    stash(&INFLIGHT_ARGS, rec);
    0
}

#[raw_tracepoint]
pub fn exit_bpf(ctx: RawTracePointContext) -> i32 {
    finish(&INFLIGHT_ARGS, Kind::Bpf, ret(&ctx), |rec, r| rec.ret = r);
    0
}

/// memfd_create(name, flags)
#[raw_tracepoint]
pub fn enter_memfd_create(ctx: RawTracePointContext) -> i32 {
    if ignored() {
        return 0;
    }
    let Some(rec) = scratch(&SCRATCH_PATH) else {
        return 0;
    };
    fill_header(&mut rec.header, Kind::MemfdCreate);
    rec.ret = 0;
    rec.a = arg(&ctx, 1);
    rec.b = 0;
    read_user_str(arg(&ctx, 0), &mut rec.path, &mut rec.header);
    stash(&INFLIGHT_PATH, rec);
    0
}

#[raw_tracepoint]
pub fn exit_memfd_create(ctx: RawTracePointContext) -> i32 {
    finish(&INFLIGHT_PATH, Kind::MemfdCreate, ret(&ctx), |rec, r| {
        rec.ret = r
    });
    0
}

/// mount(source, target, fstype, flags, data)
#[raw_tracepoint]
pub fn enter_mount(ctx: RawTracePointContext) -> i32 {
    if ignored() {
        return 0;
    }
    let Some(rec) = scratch(&SCRATCH_TWO) else {
        return 0;
    };
    fill_header(&mut rec.header, Kind::Mount);
    rec.ret = 0;
    rec.a = arg(&ctx, 3);
    read_user_str(arg(&ctx, 0), &mut rec.first, &mut rec.header);
    read_user_str(arg(&ctx, 1), &mut rec.second, &mut rec.header);
    read_user_str(arg(&ctx, 2), &mut rec.name, &mut rec.header);
    stash(&INFLIGHT_TWO, rec);
    0
}

#[raw_tracepoint]
pub fn exit_mount(ctx: RawTracePointContext) -> i32 {
    finish(&INFLIGHT_TWO, Kind::Mount, ret(&ctx), |rec, r| rec.ret = r);
    0
}
