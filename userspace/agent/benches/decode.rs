//! Decode + enrich throughput on one core, from recorded kernel records.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use heir_agent::decode::{self, fixtures};
use heir_agent::proctable::{Lookup, ProcessTable};
use heir_model::BootClock;

fn decode_enrich(c: &mut Criterion) {
    let records = fixtures::mixed(100_000);
    let clock = BootClock::now();
    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Elements(records.len() as u64));
    g.sample_size(10);
    g.bench_function("decode", |b| {
        b.iter(|| {
            for r in &records {
                std::hint::black_box(decode::decode(r, &clock).unwrap());
            }
        })
    });
    g.bench_function("decode+enrich", |b| {
        let mut table = ProcessTable::new(Lookup::None);
        b.iter(|| {
            for r in &records {
                let mut e = decode::decode(r, &clock).unwrap();
                table.enrich(&mut e);
                std::hint::black_box(e);
            }
        })
    });
    g.finish();
}

criterion_group!(benches, decode_enrich);
criterion_main!(benches);
