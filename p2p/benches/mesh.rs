//! Mesh benchmarks: validation throughput, bytes per indicator on the wire, and propagation
//! time to 95 % / 100 % of N nodes on loopback (N = 10 and 50).
//!
//! `cargo bench -p heir-mesh --bench mesh` (set `HEIR_BENCH_NODES=10` to skip N = 50).

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput};
use heir_mesh::group::{GroupKey, Keyring};
use heir_mesh::indicator::{Indicator, Item, Observable, Product};
use heir_mesh::membership::{ConsortiumKey, Credential, Revocations, Terms};
use heir_mesh::node::Event;
use heir_mesh::validate::{Origin, Validator};
use heir_mesh::wire::Envelope;
use heir_mesh::{Identity, ManualClock, Tlp, trust};
use heir_model::{Category, Severity, Timestamp};

const T0: u64 = 1_800_000_000;

fn members(ck: &ConsortiumKey, n: u64) -> Vec<(Identity, Credential)> {
    (0..n)
        .map(|s| {
            let id = Identity::generate();
            let c = ck.issue(
                &id.join_request(),
                Terms {
                    hospital: format!("H-{s}"),
                    groups: vec!["icu".into()],
                    serial: s,
                    issued: Timestamp::from_secs(0),
                    expires: Timestamp::from_secs(T0 * 2),
                },
            );
            (id, c)
        })
        .collect()
}

fn typical(n: u32) -> Indicator {
    let mut i = Indicator::new(
        Observable::Ip(std::net::Ipv4Addr::from(0xCB00_7100 + n).into()),
        Category::C2Beacon,
        Severity::High,
        Timestamp::from_secs(T0),
    );
    i.confidence = 85;
    i.valid_until = Some(Timestamp::from_secs(T0 + 7 * 86_400));
    i.rule = "net.c2_beacon".into();
    i.attack = Some("T1071".into());
    i
}

fn bench_validation(c: &mut Criterion) {
    let ck = ConsortiumKey::generate();
    let ms = members(&ck, 20);
    let envs: Vec<(Vec<u8>, libp2p::PeerId)> = (0..2000u32)
        .map(|n| {
            let (id, cred) = &ms[n as usize % ms.len()];
            (
                Envelope::clear(
                    id,
                    cred,
                    Timestamp::from_secs(T0),
                    Item::Indicator(typical(n)),
                )
                .encode(),
                id.peer_id(),
            )
        })
        .collect();
    let cfg = trust::Config {
        burst: 1_000_000,
        per_minute: 1_000_000,
        ..trust::Config::default()
    };
    let clock = ManualClock::new(Timestamp::from_secs(T0));
    let keys = Keyring::default();
    let fresh = || {
        Validator::new(
            ck.public(),
            Revocations::empty(ck.public()),
            &cfg,
            Arc::new(clock.clone()),
        )
    };

    let mut g = c.benchmark_group("validate");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_millis(500));
    g.throughput(Throughput::Elements(envs.len() as u64));
    g.bench_function("2000 indicators from 20 members", |b| {
        b.iter_batched(
            fresh,
            |mut v| {
                for (bytes, author) in &envs {
                    v.validate(
                        bytes,
                        Origin::Gossip {
                            author: Some(*author),
                            propagation: *author,
                        },
                        &keys,
                    )
                    .expect("valid");
                }
                v
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();

    // Plain figure for the report, credentials cached as in steady state.
    let mut v = fresh();
    let t = Instant::now();
    for (bytes, author) in &envs {
        v.validate(
            bytes,
            Origin::Gossip {
                author: Some(*author),
                propagation: *author,
            },
            &keys,
        )
        .expect("valid");
    }
    let rate = envs.len() as f64 / t.elapsed().as_secs_f64();
    println!(
        "FIGURE validation: {rate:.0} messages/s on one core (decode + credential + signature + replay + rate + schema)"
    );
}

fn bytes_per_indicator() {
    let ck = ConsortiumKey::generate();
    let (id, cred) = members(&ck, 1).pop().unwrap();
    let now = Timestamp::from_secs(T0);
    let ip = Item::Indicator(typical(1));
    let mut dom = typical(2);
    dom.observable = Observable::Domain("update-check.example-c2.net".into());
    dom.id = heir_mesh::indicator::IndicatorId::derive(&dom.observable, dom.category);
    let mut prod = typical(3);
    prod.observable = Observable::Product(Product {
        vendor: "Acme Medical".into(),
        model: "Infuse 3000".into(),
        firmware: Some("4.2.1".into()),
    });
    prod.id = heir_mesh::indicator::IndicatorId::derive(&prod.observable, prod.category);
    prod.cves = vec!["CVE-2024-12345".into(), "CVE-2023-4567".into()];
    let key = GroupKey::generate("icu", 1);
    let item_only = postcard::to_allocvec(&ip).unwrap().len();
    let clear = Envelope::clear(&id, &cred, now, ip.clone()).encode().len();
    let mut amber = typical(1);
    amber.tlp = Tlp::Amber;
    let sealed = Envelope::sealed(&id, &cred, now, &Item::Indicator(amber), &key)
        .encode()
        .len();
    let domain = Envelope::clear(&id, &cred, now, Item::Indicator(dom))
        .encode()
        .len();
    let product = Envelope::clear(&id, &cred, now, Item::Indicator(prod))
        .encode()
        .len();
    let entry = heir_mesh::knowledge::Entry {
        indicator: typical(1),
        reports: vec![],
        sightings: 0,
        false_positive: Default::default(),
        withdrawn: false,
        confidence: 0.85,
        first_seen: now,
        last_seen: now,
    };
    let stix = heir_mesh::exchange::to_stix(&[entry], &[], &[], now);
    let stix_obj = serde_json::to_string(
        &serde_json::from_str::<serde_json::Value>(&stix).unwrap()["objects"][0],
    )
    .unwrap()
    .len();
    println!(
        "FIGURE wire: IPv4 indicator item alone {item_only} B (postcard); signed envelope with credential: clear {clear} B, sealed AMBER {sealed} B; domain {domain} B; product+2 CVEs {product} B; same indicator as compact STIX 2.1 JSON object {stix_obj} B"
    );
}

fn propagation(n: usize, rounds: usize) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let consortium = common::Consortium::new();
        let setup_start = Instant::now();
        let mut nodes = common::network(&consortium, n, common::config()).await;
        // Let the mesh settle past a few heartbeats.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let setup = setup_start.elapsed();
        let mut degrees = Vec::new();
        let mut conns = Vec::new();
        for node in &nodes {
            let st = node.client.status().await.unwrap();
            degrees.push(st.mesh_peers);
            conns.push(st.connected);
        }
        degrees.sort();
        conns.sort();
        let mut p95s = Vec::new();
        let mut p100s = Vec::new();
        for r in 0..rounds {
            for node in nodes.iter_mut() {
                common::drain(node);
            }
            let ind = common::indicator(200 + r as u8);
            let from = (r * 7) % n;
            let start = Instant::now();
            nodes[from].client.publish(Item::Indicator(ind.clone()), None).await.unwrap();
            let mut times = vec![Duration::ZERO];
            let mut handles = Vec::new();
            for (i, node) in nodes.iter_mut().enumerate() {
                if i == from {
                    continue;
                }
                let mut rx = std::mem::replace(&mut node.events, tokio::sync::mpsc::channel(1).1);
                let id = ind.id;
                handles.push(tokio::spawn(async move {
                    let got = tokio::time::timeout(Duration::from_secs(20), async {
                        while let Some(ev) = rx.recv().await {
                            if let Event::Received { item, .. } = &ev
                                && let Item::Indicator(i) = item.as_ref()
                                && i.id == id
                            {
                                return Some(start.elapsed());
                            }
                        }
                        None
                    })
                    .await
                    .ok()
                    .flatten();
                    (got, rx)
                }));
            }
            let mut handles = handles.into_iter();
            for (i, node) in nodes.iter_mut().enumerate() {
                if i == from {
                    continue;
                }
                let (got, rx) = handles.next().unwrap().await.unwrap();
                node.events = rx;
                times.push(got.expect("node did not receive within 20 s"));
            }
            times.sort();
            let p95 = times[(times.len() * 95).div_ceil(100) - 1];
            let p100 = *times.last().unwrap();
            p95s.push(p95);
            p100s.push(p100);
        }
        p95s.sort();
        p100s.sort();
        let med = |v: &[Duration]| v[v.len() / 2];
        println!(
            "FIGURE propagation N={n}: 95% of nodes in {:.1} ms, 100% in {:.1} ms (median of {rounds} publications; worst 100% {:.1} ms; network set up in {:.1} s; gossipsub mesh degree min/median/max {}/{}/{}, connections min/median/max {}/{}/{})",
            med(&p95s).as_secs_f64() * 1e3,
            med(&p100s).as_secs_f64() * 1e3,
            p100s.last().unwrap().as_secs_f64() * 1e3,
            setup.as_secs_f64(),
            degrees[0],
            degrees[n / 2],
            degrees[n - 1],
            conns[0],
            conns[n / 2],
            conns[n - 1]
        );
        for node in &nodes {
            let _ = node.client.shutdown().await;
        }
    });
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench_validation(&mut c);
    c.final_summary();
    bytes_per_indicator();
    let sizes: Vec<usize> = std::env::var("HEIR_BENCH_NODES")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![10, 50]);
    for n in sizes {
        propagation(n, 7);
    }
}
