//! The syscall dispatchers: one program on the raw `sys_enter` and one on `sys_exit`
//! tracepoints, tail-calling the handler registered for the syscall number.
//!
//! Raw tracepoints hand over the saved registers directly; the `syscalls:*` tracepoints would
//! first build a perf record of every argument for each traced call. One dispatcher also means
//! syscalls nobody watches cost a bounds check and a failed tail call. The agent fills the
//! program arrays with the handlers (`enter_<syscall>` / `exit_<syscall>`) at the host's
//! syscall numbers, so the probes carry no syscall table of their own. Entry handlers drop
//! the agent's own calls; exit handlers only complete what an entry handler started.

use aya_ebpf::{
    helpers::bpf_probe_read_kernel,
    macros::{map, raw_tracepoint},
    maps::ProgramArray,
    programs::RawTracePointContext,
};

use crate::common::NR_REG;

/// Syscall numbers the arrays cover: beyond every current architecture's table.
pub const MAX_SYSCALLS: u32 = 1024;

#[map]
static SYS_ENTER: ProgramArray = ProgramArray::with_max_entries(MAX_SYSCALLS, 0);
#[map]
static SYS_EXIT: ProgramArray = ProgramArray::with_max_entries(MAX_SYSCALLS, 0);

#[raw_tracepoint(tracepoint = "sys_enter")]
pub fn raw_sys_enter(ctx: RawTracePointContext) -> i32 {
    let id: u64 = ctx.arg(1);
    if id >= u64::from(MAX_SYSCALLS) {
        return 0;
    }
    // SAFETY: the tail call replaces this program or returns an error when the slot is empty.
    unsafe { SYS_ENTER.tail_call(&ctx, id as u32) };
    0
}

#[raw_tracepoint(tracepoint = "sys_exit")]
pub fn raw_sys_exit(ctx: RawTracePointContext) -> i32 {
    let regs: u64 = ctx.arg(0);
    // SAFETY: probe_read_kernel validates the address.
    let id = unsafe { bpf_probe_read_kernel((regs + NR_REG) as *const u64) }.unwrap_or(u64::MAX);
    if id >= u64::from(MAX_SYSCALLS) {
        return 0;
    }
    // SAFETY: as above.
    unsafe { SYS_EXIT.tail_call(&ctx, id as u32) };
    0
}
