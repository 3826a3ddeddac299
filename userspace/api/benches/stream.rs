//! The live stream's per-item cost: what the agent pays to send an alert or event to each
//! subscriber, and what a client pays to read it back.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use heir_api::Live;
use heir_api::fixture;
use heir_api::lines::Lines;
use heir_model::{Event, EventKind, Process};

fn items() -> Vec<Live> {
    let mut v: Vec<Live> = fixture::alerts().into_iter().map(Live::Alert).collect();
    v.extend((0..5).map(|i| {
        Live::Event(Event {
            ts: fixture::NOW,
            process: Process {
                pid: 1000 + i,
                comm: "dcmqrscp".into(),
                ..Process::default()
            },
            kind: EventKind::Fork {
                child_pid: 2000 + i,
            },
        })
    }));
    v
}

fn bench(c: &mut Criterion) {
    let items = items();
    let mut g = c.benchmark_group("stream");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500))
        .throughput(Throughput::Elements(items.len() as u64));
    g.bench_function("encode", |b| {
        b.iter(|| {
            for i in &items {
                let mut line = serde_json::to_vec(black_box(i)).unwrap();
                line.push(b'\n');
                black_box(line);
            }
        })
    });
    let wire: Vec<u8> = items
        .iter()
        .flat_map(|i| {
            let mut l = serde_json::to_vec(i).unwrap();
            l.push(b'\n');
            l
        })
        .collect();
    g.bench_function("split_and_decode", |b| {
        b.iter(|| {
            let mut lines = Lines::default();
            // Chunks as a socket might deliver them.
            for chunk in wire.chunks(700) {
                lines.push(chunk);
                while let Some(l) = lines.next_line() {
                    black_box(serde_json::from_slice::<Live>(&l.unwrap()).unwrap());
                }
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
