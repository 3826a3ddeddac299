//! The flow sweeper over a 100k-entry flow table (50k connections, both directions): a sweep
//! where nothing moved (the common case: no record, no allocation) and one where every
//! connection is due. Prints nanoseconds per directional entry.

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use heir_abi::packet::{FAMILY_V4, FlowKey, PROTO_TCP, TCP_ACK, TCP_PSH, TCP_SYN};
use heir_model::BootClock;
use heir_packet::flows::{Config, FlowCounters, Sweeper};

const ENTRIES: usize = 100_000;
const S: u64 = 1_000_000_000;

fn table(packets: u64) -> Vec<(FlowKey, FlowCounters)> {
    let mut out = Vec::with_capacity(ENTRIES);
    for i in 0..ENTRIES / 2 {
        let mut dev = [0u8; 16];
        dev[..4].copy_from_slice(&[10, (i >> 16) as u8, (i >> 8) as u8, i as u8]);
        let mut server = [0u8; 16];
        server[..4].copy_from_slice(&[198, 51, 100, (i % 7) as u8]);
        let port = 32768 + (i % 28000) as u16;
        let f = FlowCounters {
            first_ns: S,
            last_ns: 2 * S,
            packets,
            bytes: packets * 800,
            tcp_flags: TCP_SYN | TCP_ACK | TCP_PSH,
        };
        let key = |src, sport, dst, dport| FlowKey {
            src,
            dst,
            sport,
            dport,
            proto: PROTO_TCP,
            family: FAMILY_V4,
            _pad: [0; 2],
        };
        out.push((key(dev, port, server, 443), f));
        out.push((key(server, 443, dev, port), f));
    }
    out
}

fn config() -> Config {
    Config {
        sweep: Duration::from_secs(5),
        update: Duration::from_secs(30),
        idle: Duration::from_secs(3600),
    }
}

fn sweep(c: &mut Criterion) {
    let clock = BootClock::with_offset(0);
    let unchanged = table(10);
    let mut g = c.benchmark_group("flow_sweep");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(3));
    g.throughput(Throughput::Elements(ENTRIES as u64));

    let mut steady = Sweeper::new(config());
    let mut out = Vec::new();
    steady.sweep(3 * S, unchanged.iter().copied(), &clock, &mut out);
    g.bench_function("100k_unchanged", |b| {
        b.iter(|| {
            out.clear();
            steady.sweep(4 * S, unchanged.iter().copied(), &clock, &mut out);
            assert!(out.is_empty());
        })
    });

    // Every connection moved and is due: one record each.
    let tables = [table(10), table(20)];
    let mut busy = Sweeper::new(config());
    let mut now = 100 * S;
    let mut k = 0;
    g.bench_function("100k_all_reported", |b| {
        b.iter(|| {
            k ^= 1;
            now += 31 * S;
            let mut out = Vec::with_capacity(ENTRIES / 2);
            busy.sweep(now, tables[k].iter().copied(), &clock, &mut out);
            out
        })
    });
    g.finish();

    // The figures, per directional entry, outside criterion's own report.
    let mut fresh = Sweeper::new(config());
    let mut out = Vec::new();
    let t = Instant::now();
    fresh.sweep(3 * S, unchanged.iter().copied(), &clock, &mut out);
    let first = t.elapsed();
    let t = Instant::now();
    let rounds = 20;
    for _ in 0..rounds {
        out.clear();
        fresh.sweep(4 * S, unchanged.iter().copied(), &clock, &mut out);
    }
    let steady_ns = t.elapsed().as_nanos() as f64 / f64::from(rounds) / ENTRIES as f64;
    let moved = table(20);
    let t = Instant::now();
    let mut due = Vec::new();
    fresh.sweep(40 * S, moved.iter().copied(), &clock, &mut due);
    let report_ns = t.elapsed().as_nanos() as f64 / ENTRIES as f64;
    println!(
        "flow sweep, {ENTRIES} entries ({} connections): first sweep {:.0} ns/entry, \
         unchanged {steady_ns:.0} ns/entry, all due {report_ns:.0} ns/entry ({} records)",
        fresh.len(),
        first.as_nanos() as f64 / ENTRIES as f64,
        due.len()
    );
}

criterion_group!(benches, sweep);
criterion_main!(benches);
