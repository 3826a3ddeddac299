//! Privilege: credential changes (set*uid / set*gid), capability sets, ptrace.

use aya_ebpf::{
    helpers::bpf_probe_read_user, macros::raw_tracepoint, programs::RawTracePointContext,
};
use heir_abi::{Kind, cred};

use crate::common::{
    INFLIGHT_ARGS, SCRATCH_ARGS, arg, fill_header, finish, ignored, ret, scratch, stash,
};

#[inline(always)]
fn args_enter(kind: Kind, nr: u64, args: [u64; 4]) -> i32 {
    if ignored() {
        return 0;
    }
    let Some(rec) = scratch(&SCRATCH_ARGS) else {
        return 0;
    };
    fill_header(&mut rec.header, kind);
    rec.ret = 0;
    rec.nr = nr;
    rec.args = args;
    stash(&INFLIGHT_ARGS, rec);
    0
}

#[inline(always)]
fn args_exit(ctx: &RawTracePointContext, kind: Kind) -> i32 {
    finish(&INFLIGHT_ARGS, kind, ret(ctx), |rec, r| rec.ret = r);
    0
}

macro_rules! cred_call {
    ($enter:ident, $exit:ident, $code:expr, $n:expr) => {
        #[raw_tracepoint]
        pub fn $enter(ctx: RawTracePointContext) -> i32 {
            let mut ids = [u64::MAX; 4];
            let mut i = 0;
            while i < $n {
                ids[i] = arg(&ctx, i) & 0xffff_ffff;
                i += 1;
            }
            args_enter(Kind::CredChange, $code, ids)
        }

        #[raw_tracepoint]
        pub fn $exit(ctx: RawTracePointContext) -> i32 {
            args_exit(&ctx, Kind::CredChange)
        }
    };
}

cred_call!(enter_setuid, exit_setuid, cred::SETUID, 1);
cred_call!(enter_setreuid, exit_setreuid, cred::SETREUID, 2);
cred_call!(enter_setresuid, exit_setresuid, cred::SETRESUID, 3);
cred_call!(enter_setgid, exit_setgid, cred::SETGID, 1);
cred_call!(enter_setregid, exit_setregid, cred::SETREGID, 2);
cred_call!(enter_setresgid, exit_setresgid, cred::SETRESGID, 3);

/// capset(header, data): data holds two `{effective, permitted, inheritable}` u32 triples
/// (low and high 32 capability bits).
#[raw_tracepoint]
pub fn enter_capset(ctx: RawTracePointContext) -> i32 {
    let data = arg(&ctx, 1);
    let mut caps = [0u32; 6];
    if data != 0 {
        // SAFETY: probe_read_user validates the address.
        caps = unsafe { bpf_probe_read_user(data as *const [u32; 6]) }.unwrap_or([0; 6]);
    }
    let join = |lo: u32, hi: u32| u64::from(lo) | (u64::from(hi) << 32);
    args_enter(
        Kind::Capset,
        0,
        [
            join(caps[0], caps[3]),
            join(caps[1], caps[4]),
            join(caps[2], caps[5]),
            0,
        ],
    )
}

#[raw_tracepoint]
pub fn exit_capset(ctx: RawTracePointContext) -> i32 {
    args_exit(&ctx, Kind::Capset)
}

/// ptrace(request, pid, addr, data)
#[raw_tracepoint]
pub fn enter_ptrace(ctx: RawTracePointContext) -> i32 {
    args_enter(
        Kind::Ptrace,
        0,
        [arg(&ctx, 0), arg(&ctx, 1), arg(&ctx, 2), 0],
    )
}

#[raw_tracepoint]
pub fn exit_ptrace(ctx: RawTracePointContext) -> i32 {
    args_exit(&ctx, Kind::Ptrace)
}
