//! heir's kernel sensors: tracepoint and raw-tracepoint programs that report what processes do.
//!
//! Each concern lives in its own module and mirrors a module of the agent's sensor. Everything
//! is filtered and aggregated here, so userspace only sees what matters: opens outside the
//! watched prefixes never leave the kernel, file-modification bursts are counted per process,
//! and the agent's own activity is dropped at the first instruction.
#![no_std]
#![no_main]
// Map keys and values go to the kernel helpers by pointer: passing them by value, as this lint
// suggests, would copy them onto the 512-byte BPF stack first.
#![allow(clippy::needless_borrows_for_generic_args)]

mod common;
mod file;
mod kernel;
mod net;
mod privilege;
mod process;
mod syscall;

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // The verifier rejects any reachable panic; this handler exists only to satisfy no_std.
    loop {}
}
