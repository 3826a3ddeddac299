//! `heir bench`: the sensor's cost on this machine, measured against a baseline in the same
//! run.

use std::path::PathBuf;

use anyhow::{Context, Result};

#[derive(clap::Subcommand)]
pub enum Cmd {
    /// Syscall cost with and without the sensor, interleaved, as ratios.
    Overhead {
        #[arg(long, default_value_t = 5)]
        rounds: usize,
    },
    /// Sustained kernel→userspace event rate and losses.
    Throughput {
        #[arg(long, default_value_t = 3)]
        seconds: u64,
    },
    /// The real agent under a sustained open() flood: alive, memory bounded, every lost event
    /// counted, back to 0 loss afterwards.
    Flood {
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        /// Generator processes (each a tight open/close loop on a watched file).
        #[arg(long, default_value_t = 2)]
        generators: usize,
        /// The agent's resident memory may not exceed this many MiB.
        #[arg(long, default_value_t = 256)]
        rss_bound_mib: u64,
        /// The ring buffer's size in bytes (a power of two), instead of the agent's default.
        #[arg(long)]
        ring_bytes: Option<u32>,
    },
    /// The packet sensor's cost per packet on each path (BPF_PROG_TEST_RUN).
    Xdp {
        /// Runs per repeated path.
        #[arg(long, default_value_t = 1_000_000)]
        repeat: u32,
        /// Also fill a flow table of this many flows (e.g. 1000000) and report its kernel
        /// memory and the CPU time of a full read by userspace.
        #[arg(long, default_value_t = 0)]
        flows: u32,
    },
    /// One timed syscall loop (run by the two above in child processes).
    #[command(hide = true)]
    Loop {
        workload: String,
        path: PathBuf,
        #[arg(long)]
        until_ms: Option<u64>,
        #[arg(long)]
        count: Option<u64>,
    },
}

pub fn run(cmd: Cmd) -> Result<()> {
    let exe = std::env::current_exe().context("locating the heir binary")?;
    match cmd {
        Cmd::Overhead { rounds } => heir_agent::bench::overhead(&exe, rounds.max(1)),
        Cmd::Throughput { seconds } => heir_agent::bench::throughput(&exe, seconds.max(1)),
        Cmd::Flood {
            seconds,
            generators,
            rss_bound_mib,
            ring_bytes,
        } => heir_agent::bench_flood::run(
            &exe,
            &heir_agent::bench_flood::Plan {
                seconds: seconds.max(1),
                generators: generators.max(1),
                rss_bound_mib,
                ring_bytes,
            },
        ),
        Cmd::Xdp { repeat, flows } => {
            heir_agent::bench_xdp::print(&heir_agent::bench_xdp::run(repeat.max(1), flows)?);
            Ok(())
        }
        Cmd::Loop {
            workload,
            path,
            until_ms,
            count,
        } => {
            let w = heir_agent::bench::Workload::parse(&workload)
                .with_context(|| format!("unknown workload `{workload}`"))?;
            heir_agent::bench::loop_child(w, path, until_ms, count)
        }
    }
}
