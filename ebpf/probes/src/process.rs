//! Process lifecycle: exec (with bounded argv), fork of new processes, exit codes.

use aya_ebpf::{
    helpers::bpf_probe_read_user, macros::raw_tracepoint, programs::RawTracePointContext,
};
use heir_abi::{ARG_LEN, ArgsRecord, CONFIG_EXEC_ENOENT, HDR_MORE_ARGS, Kind, MAX_ARGS};

use crate::common::{
    FILTERED, INFLIGHT_EXEC, SCRATCH_ARGS, SCRATCH_EXEC, arg, config, count, done, fill_header,
    finish, ignored, out_of_scope, read_kernel, read_user_str, ret, scratch, stash, submit, take,
};

#[inline(always)]
fn exec_enter(filename: u64, argv: u64) -> i32 {
    if ignored() {
        return 0;
    }
    let Some(rec) = scratch(&SCRATCH_EXEC) else {
        return 0;
    };
    fill_header(&mut rec.header, Kind::Exec);
    rec.ret = 0;
    rec._pad = 0;
    read_user_str(filename, &mut rec.filename, &mut rec.header);
    let mut argc = 0u32;
    if argv != 0 {
        for i in 0..MAX_ARGS {
            // SAFETY: probe_read_user validates the address.
            let p: u64 = match unsafe { bpf_probe_read_user((argv + 8 * i as u64) as *const u64) } {
                Ok(p) => p,
                Err(_) => break,
            };
            if p == 0 {
                break;
            }
            let slot: &mut [u8; ARG_LEN] = &mut rec.args[i];
            read_user_str(p, slot, &mut rec.header);
            argc += 1;
        }
        if argc as usize == MAX_ARGS {
            // SAFETY: as above.
            let more: u64 =
                unsafe { bpf_probe_read_user((argv + 8 * MAX_ARGS as u64) as *const u64) }
                    .unwrap_or(0);
            if more != 0 {
                rec.header.flags |= HDR_MORE_ARGS;
            }
        }
    }
    rec.argc = argc;
    stash(&INFLIGHT_EXEC, rec);
    0
}

#[raw_tracepoint]
pub fn enter_execve(ctx: RawTracePointContext) -> i32 {
    exec_enter(arg(&ctx, 0), arg(&ctx, 1))
}

#[raw_tracepoint]
pub fn enter_execveat(ctx: RawTracePointContext) -> i32 {
    exec_enter(arg(&ctx, 1), arg(&ctx, 2))
}

#[inline(always)]
fn exec_exit(ctx: &RawTracePointContext) -> i32 {
    const ENOENT: i64 = 2;
    let r = ret(ctx);
    if r == -ENOENT && config!(flags) & CONFIG_EXEC_ENOENT == 0 {
        // A shell searching $PATH tries one directory after another: noise, not news.
        if take(&INFLIGHT_EXEC).is_some() {
            done(&INFLIGHT_EXEC);
            count(&FILTERED, Kind::Exec);
        }
        return 0;
    }
    finish(&INFLIGHT_EXEC, Kind::Exec, r, |rec, r| {
        rec.ret = r;
        if r == 0 {
            // The process now runs the new image: its comm changed.
            let flags = rec.header.flags;
            fill_header(&mut rec.header, Kind::Exec);
            rec.header.flags = flags;
        }
    });
    0
}

#[raw_tracepoint]
pub fn exit_execve(ctx: RawTracePointContext) -> i32 {
    exec_exit(&ctx)
}

#[raw_tracepoint]
pub fn exit_execveat(ctx: RawTracePointContext) -> i32 {
    exec_exit(&ctx)
}

/// `sched_process_fork(parent, child)`: reports new processes (not new threads).
#[raw_tracepoint(tracepoint = "sched_process_fork")]
pub fn sched_process_fork(ctx: RawTracePointContext) -> i32 {
    if out_of_scope() {
        return 0;
    }
    let child: u64 = ctx.arg(1);
    let (Some(pid), Some(tgid)) = (
        read_kernel::<u32>(child, config!(off_task_pid)),
        read_kernel::<u32>(child, config!(off_task_tgid)),
    ) else {
        return 0;
    };
    if pid != tgid {
        return 0;
    }
    let Some(rec) = scratch(&SCRATCH_ARGS) else {
        return 0;
    };
    fill_header(&mut rec.header, Kind::Fork);
    rec.ret = 0;
    rec.nr = 0;
    rec.args = [u64::from(tgid), 0, 0, 0];
    submit::<ArgsRecord>(rec, Kind::Fork);
    0
}

/// `sched_process_exit(task, ...)`: reports a process's end when its leader exits.
#[raw_tracepoint(tracepoint = "sched_process_exit")]
pub fn sched_process_exit(ctx: RawTracePointContext) -> i32 {
    if out_of_scope() {
        return 0;
    }
    let task: u64 = ctx.arg(0);
    let (Some(pid), Some(tgid)) = (
        read_kernel::<u32>(task, config!(off_task_pid)),
        read_kernel::<u32>(task, config!(off_task_tgid)),
    ) else {
        return 0;
    };
    if pid != tgid {
        return 0;
    }
    let code = read_kernel::<i32>(task, config!(off_task_exit_code)).unwrap_or(0);
    let Some(rec) = scratch(&SCRATCH_ARGS) else {
        return 0;
    };
    fill_header(&mut rec.header, Kind::Exit);
    rec.ret = 0;
    rec.nr = 0;
    rec.args = [code as u32 as u64, 0, 0, 0];
    submit::<ArgsRecord>(rec, Kind::Exit);
    0
}
