//! Throughput of the full detection stage (shipped rules + every detector + aggregation) on a
//! mixed stream, and the latency from an event entering the engine to its alert coming out.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use heir_detect::scenario::{self, Rng};
use heir_detect::{Config, Engine, ManualClock};
use heir_model::{Event, Timestamp};

fn stream() -> Vec<Event> {
    let mut rng = Rng::new(1);
    let mut ev = scenario::benign_mix(0, 200_000, &mut rng);
    ev.extend(scenario::nmap_syn_scan(
        10_000,
        "10.9.0.66",
        "10.9.0.5",
        1000,
        &[22, 104],
    ));
    ev.extend(scenario::hydra_ftp(20_000, "10.9.0.66", "10.9.0.8", 200));
    ev.extend(scenario::bash_reverse_shell(30_000, 50_000, "10.9.0.66"));
    ev.extend(scenario::openssl_ransomware(40_000, 60_000, 500));
    ev.extend(scenario::curl_beacon(
        0,
        "10.9.0.77",
        "198.51.100.23",
        10_000,
        0.2,
        40,
        &mut rng,
    ));
    ev.sort_by_key(|e| e.ts);
    ev
}

fn engine() -> Engine {
    let clock = ManualClock::new(Timestamp::from_nanos(scenario::T0));
    let mut e = Engine::new(&Config::default(), Arc::new(clock));
    e.reload_rules(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rules"))
        .expect("rules");
    e
}

fn with_known() -> Engine {
    use heir_detect::known::{Known, Origin, Target, Update};
    let mut e = engine();
    let known = |id: String, target: Target| Known {
        id,
        target,
        reported_as: heir_model::Category::C2Beacon,
        reporters: vec!["hospital-7f3a".into()],
        tlp: "TLP:GREEN".into(),
        confidence: 90,
        severity: heir_model::Severity::High,
        attack: None,
        origin: Origin::Mesh,
    };
    for n in 0..100_000u32 {
        let ip = std::net::Ipv4Addr::from(0x2d00_0000 + n);
        e.known(Update::Add(known(
            format!("ip{n}"),
            Target::Address(ip.into()),
        )));
    }
    for n in 0..10_000 {
        let d = Target::domain(&format!("c2-{n}.example.net")).expect("a domain");
        e.known(Update::Add(known(format!("d{n}"), d)));
    }
    e
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

fn bench(c: &mut Criterion) {
    let events = stream();
    let n = events.len();
    let mut g = c.benchmark_group("detect");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8));
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function("mixed_stream", |b| {
        b.iter_batched(
            engine,
            |mut e| {
                let mut out = Vec::new();
                for ev in &events {
                    e.process(ev, &mut out);
                }
                (out.len(), e)
            },
            BatchSize::PerIteration,
        )
    });
    // The same stream against a knowledge base of 100 000 addresses and 10 000 domains (none
    // of them in the stream): what known-indicator matching adds per event.
    g.bench_function("mixed_stream_with_110k_known_indicators", |b| {
        b.iter_batched(
            with_known,
            |mut e| {
                let mut out = Vec::new();
                for ev in &events {
                    e.process(ev, &mut out);
                }
                // Dropped outside the measurement, as the baseline's small engine is.
                (out.len(), e)
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();

    // Event-to-alert latency: time each `process` call; the ones that published an alert are
    // the latency from that event's arrival to its alert.
    let mut e = engine();
    let mut out = Vec::new();
    let mut all = Vec::with_capacity(n);
    let mut alerting = Vec::new();
    let start = Instant::now();
    for ev in &events {
        let before = out.len();
        let t = Instant::now();
        e.process(ev, &mut out);
        let d = t.elapsed();
        all.push(d);
        if out.len() > before {
            alerting.push(d);
        }
    }
    let total = start.elapsed();
    all.sort_unstable();
    alerting.sort_unstable();
    println!(
        "detect: {n} events, {} alerts published ({} raw), single core: {:.2} M events/s",
        out.len(),
        e.stats().raw_alerts,
        n as f64 / total.as_secs_f64() / 1e6
    );
    println!(
        "latency per event: p50 {:?} p99 {:?} max {:?}",
        pct(&all, 0.5),
        pct(&all, 0.99),
        all[all.len() - 1]
    );
    if !alerting.is_empty() {
        println!(
            "event-to-alert latency ({} alerting events): p50 {:?} p99 {:?} max {:?}",
            alerting.len(),
            pct(&alerting, 0.5),
            pct(&alerting, 0.99),
            alerting[alerting.len() - 1]
        );
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
