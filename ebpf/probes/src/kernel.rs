//! Reaching into the kernel: module loading, bpf() by other processes, memfd_create (fileless
//! payloads) and mount.
//!
//! Kernels built without module support have no tracepoints for init_module, finit_module and
//! delete_module, yet an attacker's attempt is still worth reporting; those are caught on the
//! raw `sys_enter`/`sys_exit` tracepoints, filtered by syscall number as the first thing the
//! program does, and their arguments read from the saved registers.

use aya_ebpf::{
    helpers::bpf_probe_read_kernel,
    macros::{raw_tracepoint, tracepoint},
    programs::{RawTracePointContext, TracePointContext},
};
use heir_abi::{Kind, module, nr};

use crate::common::{
    INFLIGHT_ARGS, INFLIGHT_NAME, INFLIGHT_PATH, INFLIGHT_TWO, SCRATCH_ARGS, SCRATCH_NAME,
    SCRATCH_PATH, SCRATCH_TWO, arg, fill_header, finish, is_agent, read_user_str, ret, scratch,
    stash,
};

/// Offsets of the syscall argument registers in `struct pt_regs`.
#[cfg(bpf_target_arch = "x86_64")]
mod regs {
    pub const ARG0: u64 = 112; // di
    pub const ARG1: u64 = 104; // si
    pub const ARG2: u64 = 96; // dx
    pub const ORIG_NR: u64 = 120; // orig_ax
}

#[cfg(bpf_target_arch = "aarch64")]
mod regs {
    pub const ARG0: u64 = 0; // regs[0] (orig_x0 is at 272 but x0 still holds it on entry)
    pub const ARG1: u64 = 8;
    pub const ARG2: u64 = 16;
    pub const ORIG_NR: u64 = 280; // syscallno
}

#[inline(always)]
fn reg(regs: u64, off: u64) -> u64 {
    // SAFETY: probe_read_kernel validates the address.
    unsafe { bpf_probe_read_kernel((regs + off) as *const u64) }.unwrap_or(0)
}

#[raw_tracepoint(tracepoint = "sys_enter")]
pub fn raw_sys_enter(ctx: RawTracePointContext) -> i32 {
    let id: u64 = ctx.arg(1);
    let op = match id {
        nr::INIT_MODULE => module::INIT,
        nr::FINIT_MODULE => module::FINIT,
        nr::DELETE_MODULE => module::DELETE,
        _ => return 0,
    };
    if is_agent() {
        return 0;
    }
    let regs: u64 = ctx.arg(0);
    let Some(rec) = scratch(&SCRATCH_NAME) else { return 0 };
    fill_header(&mut rec.header, Kind::Module);
    rec.ret = 0;
    rec.nr = op;
    rec.name[0] = 0;
    match op {
        // delete_module(name, flags)
        module::DELETE => read_user_str(reg(regs, regs::ARG0), &mut rec.name, &mut rec.header),
        // init_module(image, len, params), finit_module(fd, params, flags): the module's name
        // lives inside the ELF image, which is not parsed here; params say what it was given.
        module::INIT => read_user_str(reg(regs, regs::ARG2), &mut rec.name, &mut rec.header),
        _ => read_user_str(reg(regs, regs::ARG1), &mut rec.name, &mut rec.header),
    }
    stash(&INFLIGHT_NAME, rec);
    0
}

#[raw_tracepoint(tracepoint = "sys_exit")]
pub fn raw_sys_exit(ctx: RawTracePointContext) -> i32 {
    let regs: u64 = ctx.arg(0);
    let id = reg(regs, regs::ORIG_NR);
    if id != nr::INIT_MODULE && id != nr::FINIT_MODULE && id != nr::DELETE_MODULE {
        return 0;
    }
    let r: i64 = ctx.arg(1);
    finish(&INFLIGHT_NAME, Kind::Module, r, |rec, r| rec.ret = r);
    0
}

/// bpf(cmd, attr, size): the program type is the first field of `attr` for BPF_PROG_LOAD.
#[tracepoint]
pub fn sys_enter_bpf(ctx: TracePointContext) -> u32 {
    if is_agent() {
        return 0;
    }
    const BPF_PROG_LOAD: u64 = 5;
    let cmd = arg(&ctx, 0);
    let mut prog_type = u64::MAX;
    if cmd == BPF_PROG_LOAD {
        // SAFETY: probe_read_user validates the address.
        prog_type = unsafe {
            aya_ebpf::helpers::bpf_probe_read_user(arg(&ctx, 1) as *const u32)
        }
        .map(u64::from)
        .unwrap_or(u64::MAX);
    }
    let Some(rec) = scratch(&SCRATCH_ARGS) else { return 0 };
    fill_header(&mut rec.header, Kind::Bpf);
    rec.ret = 0;
    rec.nr = 0;
    rec.args = [cmd, prog_type, 0, 0];
    stash(&INFLIGHT_ARGS, rec);
    0
}

#[tracepoint]
pub fn sys_exit_bpf(ctx: TracePointContext) -> u32 {
    finish(&INFLIGHT_ARGS, Kind::Bpf, ret(&ctx), |rec, r| rec.ret = r);
    0
}

/// memfd_create(name, flags)
#[tracepoint]
pub fn sys_enter_memfd_create(ctx: TracePointContext) -> u32 {
    if is_agent() {
        return 0;
    }
    let Some(rec) = scratch(&SCRATCH_PATH) else { return 0 };
    fill_header(&mut rec.header, Kind::MemfdCreate);
    rec.ret = 0;
    rec.a = arg(&ctx, 1);
    rec.b = 0;
    read_user_str(arg(&ctx, 0), &mut rec.path, &mut rec.header);
    stash(&INFLIGHT_PATH, rec);
    0
}

#[tracepoint]
pub fn sys_exit_memfd_create(ctx: TracePointContext) -> u32 {
    finish(&INFLIGHT_PATH, Kind::MemfdCreate, ret(&ctx), |rec, r| rec.ret = r);
    0
}

/// mount(source, target, fstype, flags, data)
#[tracepoint]
pub fn sys_enter_mount(ctx: TracePointContext) -> u32 {
    if is_agent() {
        return 0;
    }
    let Some(rec) = scratch(&SCRATCH_TWO) else { return 0 };
    fill_header(&mut rec.header, Kind::Mount);
    rec.ret = 0;
    rec.a = arg(&ctx, 3);
    read_user_str(arg(&ctx, 0), &mut rec.first, &mut rec.header);
    read_user_str(arg(&ctx, 1), &mut rec.second, &mut rec.header);
    read_user_str(arg(&ctx, 2), &mut rec.name, &mut rec.header);
    stash(&INFLIGHT_TWO, rec);
    0
}

#[tracepoint]
pub fn sys_exit_mount(ctx: TracePointContext) -> u32 {
    finish(&INFLIGHT_TWO, Kind::Mount, ret(&ctx), |rec, r| rec.ret = r);
    0
}
