//! `heir bench xdp`: the packet sensor's cost per packet, measured in the kernel with
//! `BPF_PROG_TEST_RUN` on crafted frames (no NIC, no traffic generator), and the memory and
//! scan time of a full flow table.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use heir_abi::packet::{TCP_ACK, TCP_PSH, TCP_SYN};

use crate::respond::{Origin, SystemClock, Tables};
use crate::sensor::frames::Frame;
use crate::sensor::xdp::{Options, Packets};
use heir_packet::samples::{dicom_associate, tls_client_hello};

/// One measured path.
#[derive(Debug, Clone)]
pub struct Figure {
    pub path: &'static str,
    pub ns_per_packet: f64,
    pub packets: u64,
}

struct Scratch {
    packets: Packets,
    dir: PathBuf,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn scratch(flow_entries: u32) -> Result<Scratch> {
    scratch_with(flow_entries, 16_384)
}

fn scratch_with(flow_entries: u32, device_entries: u32) -> Result<Scratch> {
    scratch_opts(flow_entries, device_entries, true)
}

fn scratch_opts(flow_entries: u32, device_entries: u32, devices: bool) -> Result<Scratch> {
    let dir = PathBuf::from(format!("/sys/fs/bpf/heir-bench-{}", std::process::id()));
    let options = Options {
        pin_dir: dir.clone(),
        flow_entries,
        device_entries,
        devices,
        // Large enough that no wake-up is forced: nobody drains the ring here.
        ring_bytes: 128 << 20,
        ..Options::default()
    };
    let packets = Packets::load(&options).inspect_err(|_| {
        let _ = std::fs::remove_dir_all(&dir);
    })?;
    Ok(Scratch { packets, dir })
}

/// Runs of each repeated path; the best is reported (the others carry the noise of a
/// shared machine).
const ROUNDS: u32 = 5;

/// A repeated path: the same frame `repeat` times; the kernel times the loop.
fn repeated(p: &Packets, path: &'static str, frame: &[u8], repeat: u32) -> Result<Figure> {
    p.test_run(frame, 1)?;
    best(path, repeat, || Ok(p.test_run(frame, repeat)?.1))
}

fn best(
    path: &'static str,
    repeat: u32,
    mut run: impl FnMut() -> Result<Duration>,
) -> Result<Figure> {
    let mut best = Duration::MAX;
    for _ in 0..ROUNDS {
        best = best.min(run()?);
    }
    Ok(Figure {
        path,
        ns_per_packet: best.as_nanos() as f64,
        packets: u64::from(repeat) * u64::from(ROUNDS),
    })
}

/// A path taken once per flow: `n` distinct frames, one run each.
fn distinct(
    p: &Packets,
    path: &'static str,
    n: u32,
    frame: impl Fn(u32) -> Vec<u8>,
) -> Result<Figure> {
    let mut total = Duration::ZERO;
    for i in 0..n {
        total += p.test_run(&frame(i), 1)?.1;
    }
    Ok(Figure {
        path,
        ns_per_packet: total.as_nanos() as f64 / f64::from(n),
        packets: u64::from(n),
    })
}

fn host(i: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from_bits(0x0a40_0000 | (i & 0x3f_ffff)))
}

/// Measures every path; `flows` > 0 also fills a table of that many flows and reports its
/// memory and the time userspace takes to read it.
pub fn run(repeat: u32, flows: u32) -> Result<Vec<Figure>> {
    let mut s = scratch(65_536).context("loading the XDP program")?;
    let gw = IpAddr::V4(Ipv4Addr::new(10, 9, 9, 1));
    let established = Frame::tcp(host(1), gw, 40000, 104, TCP_ACK, &[0u8; 64]).bytes();
    // An ARP frame: the parser's floor (Ethernet only, counters, no flow table), which
    // includes BPF_PROG_TEST_RUN's own cost per run.
    let mut arp = vec![0xff; 6];
    arp.extend_from_slice(&[2, 0, 0, 0, 0, 1, 0x08, 0x06]);
    arp.extend_from_slice(&[0; 28]);
    let floor = {
        let p = &mut s.packets;
        p.test_run_floor(&established, 1)?;
        best("floor (empty XDP program, same frame)", repeat, || {
            Ok(p.test_run_floor(&established, repeat)?.1)
        })?
    };
    let p = &s.packets;
    let mut out = vec![
        floor,
        repeated(p, "non-IP frame (parse + counters)", &arp, repeat)?,
    ];
    out.push(repeated(
        p,
        "pass (established flow)",
        &established,
        repeat,
    )?);
    out.push(distinct(p, "new flow (SYN)", 20_000, |i| {
        Frame::tcp(
            host(2),
            gw,
            (i % 60000) as u16 + 1024,
            104 + (i / 60000) as u16,
            TCP_SYN,
            b"",
        )
        .bytes()
    })?);
    let dicom = dicom_associate();
    out.push(distinct(p, "new flow + DICOM sample", 10_000, |i| {
        Frame::tcp(host(3), gw, i as u16 + 1024, 104, TCP_PSH | TCP_ACK, &dicom).bytes()
    })?);
    let tls = tls_client_hello();
    out.push(distinct(p, "new flow + TLS sample", 10_000, |i| {
        Frame::tcp(host(4), gw, i as u16 + 1024, 443, TCP_PSH | TCP_ACK, &tls).bytes()
    })?);
    let mut tables = Tables::open(&s.dir)?;
    tables.block(
        "10.64.0.66".parse()?,
        None,
        "bench",
        Origin::Operator,
        &SystemClock,
    )?;
    let attack = Frame::tcp(host(66), gw, 40000, 22, TCP_SYN, b"").bytes();
    anyhow::ensure!(
        p.test_run(&attack, 1)?.0 == 1,
        "the blocked frame was not dropped"
    );
    out.push(repeated(p, "drop (blocked source)", &attack, repeat)?);
    drop(s);
    let s = scratch_opts(65_536, 16_384, false).context("loading the XDP program")?;
    out.push(repeated(
        &s.packets,
        "pass (established flow), no per-device counts",
        &established,
        repeat,
    )?);
    drop(s);
    if flows > 0 {
        out.extend(table(flows)?);
    }
    Ok(out)
}

/// CPU time (user and system) this thread has used.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and a timespec to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// How often the agent is assumed to read the whole flow table, for the steady CPU share.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(10);

/// Fills a table of `flows` flows through the program itself and reports its kernel
/// memory, and the CPU time userspace spends reading all of it, batched and key by key (as
/// figures whose "ns/packet" is per flow).
fn table(flows: u32) -> Result<Vec<Figure>> {
    let s = scratch_with(flows, 16_384).context("loading the XDP program")?;
    let gw = IpAddr::V4(Ipv4Addr::new(10, 9, 9, 1));
    let fill = Instant::now();
    for i in 0..flows {
        let f = Frame::tcp(
            host(i / 60000 + 100),
            gw,
            (i % 60000) as u16 + 1024,
            80,
            TCP_SYN,
            b"",
        )
        .bytes();
        s.packets.test_run(&f, 1)?;
    }
    eprintln!(
        "flow table: {flows} flows inserted in {:.1} s",
        fill.elapsed().as_secs_f64()
    );
    let bytes = s.packets.flow_table_bytes().unwrap_or(0);
    let mut out = Vec::new();
    let mut held = 0;
    for (path, walk) in [
        (
            "userspace read of the full flow table, batched (per flow)",
            false,
        ),
        (
            "userspace read of the full flow table, key by key (per flow)",
            true,
        ),
    ] {
        let (t, cpu) = (Instant::now(), thread_cpu());
        let n = if walk {
            s.packets.flows_walk()?.len()
        } else {
            s.packets.flows()?.len()
        };
        let (wall, cpu) = (t.elapsed(), thread_cpu() - cpu);
        held = n;
        eprintln!(
            "{path}: {n} flows in {:.0} ms wall, {:.0} ms CPU; one read every {} s is {:.2}% of a core",
            wall.as_secs_f64() * 1000.0,
            cpu.as_secs_f64() * 1000.0,
            SWEEP_INTERVAL.as_secs(),
            100.0 * cpu.as_secs_f64() / SWEEP_INTERVAL.as_secs_f64()
        );
        out.push(Figure {
            path,
            ns_per_packet: cpu.as_nanos() as f64 / n.max(1) as f64,
            packets: n as u64,
        });
    }
    let (t, cpu) = (Instant::now(), thread_cpu());
    let devices = s.packets.devices()?.len();
    eprintln!(
        "per-device counters: {devices} devices read in {:.2} ms wall, {:.2} ms CPU",
        t.elapsed().as_secs_f64() * 1000.0,
        (thread_cpu() - cpu).as_secs_f64() * 1000.0
    );
    eprintln!(
        "flow table: {held} flows held of {flows} inserted, {:.1} MiB kernel memory ({} bytes/flow with {} CPUs)",
        bytes as f64 / (1 << 20) as f64,
        bytes / u64::from(flows.max(1)),
        aya::util::nr_cpus().unwrap_or(1),
    );
    Ok(out)
}

pub fn print(figures: &[Figure]) {
    println!("{:<50}{:>12}{:>12}", "path", "ns/packet", "Mpps/core");
    for f in figures {
        println!(
            "{:<50}{:>12.1}{:>12.1}",
            f.path,
            f.ns_per_packet,
            1000.0 / f.ns_per_packet.max(0.001)
        );
    }
}
