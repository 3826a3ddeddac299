//! Score update cost per alert and per observation with 10 000 devices, full fleet
//! recomputation time, and the import of CISA's 124 real ICS medical CSAF advisories beside
//! plain JSON parsing of the same bytes.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use heir_model::{Alert, Category, Severity, Timestamp};
use heir_rama::registry::Entry;
use heir_rama::{
    Class, Clock, DeviceFact, Fact, Knowledge, ManualClock, Protocol, Rama, Registry, Service,
    Transport, oui,
};

const DEVICES: u32 = 10_000;

fn ip(i: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i + 1))
}

fn fleet() -> Rama<ManualClock> {
    let now = Timestamp::parse_rfc3339("2026-01-15T12:00:00Z").unwrap();
    let mut r = Rama::new(ManualClock::new(now), oui::Table::curated());
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    for f in [
        "infusia-300.cdx.json",
        "archivepro.cdx.json",
        "osv.json",
        "nvd.json",
        "kev.csv",
        "infusia-300.mds2.csv",
        "vitalview-5.mds2.csv",
    ] {
        r.import(&fixtures.join(f)).unwrap();
    }
    let classes = [
        Class::InfusionPump,
        Class::PatientMonitor,
        Class::Pacs,
        Class::Workstation,
        Class::LabAnalyser,
    ];
    let models = [
        "Infusia 300",
        "VitalView 5",
        "ArchivePro",
        "Desk 1",
        "Lab 9",
    ];
    let mut devices = BTreeMap::new();
    for i in 0..DEVICES {
        let k = (i % 5) as usize;
        devices.insert(
            format!("dev-{i:05}"),
            Entry {
                name: format!("Device {i}"),
                class: classes[k],
                criticality: None,
                manufacturer: None,
                model: Some(models[k].into()),
                firmware: Some(if i % 2 == 0 {
                    "2.1.4".into()
                } else {
                    "2.3.0".into()
                }),
                location: None,
                protected: false,
                ip: Some(ip(i)),
                mac: None,
                segmented: i % 3 == 0,
                mitigated: Vec::new(),
            },
        );
    }
    r.load_registry(&Registry { devices });
    let protos = [
        Protocol::Telnet,
        Protocol::Https,
        Protocol::Dicom,
        Protocol::Hl7Mllp,
        Protocol::Ssh,
        Protocol::Rdp,
    ];
    for i in 0..DEVICES {
        for j in 0..3u32 {
            let p = protos[((i + j) % 6) as usize];
            r.observe(&DeviceFact {
                ts: now,
                ip: ip(i),
                mac: None,
                seen: Fact::Service(Service::new(1000 + j as u16, Transport::Tcp, p)),
            });
        }
    }
    r
}

fn bench(c: &mut Criterion) {
    let mut r = fleet();
    assert_eq!(r.inventory().len(), DEVICES as usize);
    let mut g = c.benchmark_group("rama_10k_devices");
    let mut n = 0u32;
    g.bench_function("alert_update", |b| {
        b.iter(|| {
            n = n.wrapping_add(7919) % DEVICES;
            let mut a = Alert::new(
                r.clock().now(),
                "bench",
                "bench",
                Category::PortScan,
                Severity::High,
                0.8,
            );
            a.dst_ip = Some(ip(n));
            r.alert(&a)
        })
    });
    // Each iteration opens or closes telnet on one device, so every observation changes that
    // device's exposure and is rescored.
    let mut m = 0u32;
    let mut open = vec![false; DEVICES as usize];
    g.bench_function("observation_update", |b| {
        b.iter(|| {
            m = m.wrapping_add(7919) % DEVICES;
            let o = &mut open[m as usize];
            *o = !*o;
            let seen = if *o {
                Fact::Service(Service::new(23, Transport::Tcp, Protocol::Telnet))
            } else {
                Fact::ServiceClosed {
                    port: 23,
                    transport: Transport::Tcp,
                }
            };
            let u = r.observe(&DeviceFact {
                ts: r.clock().now(),
                ip: ip(m),
                mac: None,
                seen,
            });
            assert!(u.is_some());
            u
        })
    });
    g.bench_function("tick_decay", |b| {
        b.iter(|| {
            r.clock().advance(Duration::from_secs(60));
            r.tick().len()
        })
    });
    g.bench_function("full_recompute", |b| b.iter(|| r.recompute_all()));
    g.finish();
}

/// The real advisories: shared/data/icsma beside the repository.
fn icsma() -> (std::path::PathBuf, Vec<std::path::PathBuf>) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/icsma");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("real CSAF data missing at {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 124, "shared/data/icsma changed");
    (dir, files)
}

/// `heir vuln import DIR` on the 124 advisories, beside reading and parsing the same files
/// into `serde_json::Value`: the difference is the importer's own cost (typed parse, product
/// tree, version ranges, checks, storing and one reindex).
fn csaf(c: &mut Criterion) {
    let (dir, files) = icsma();
    let bytes: u64 = files
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    let mut g = c.benchmark_group("csaf_124_icsma");
    g.throughput(criterion::Throughput::Bytes(bytes));
    g.bench_function("read_and_serde_json_value", |b| {
        b.iter(|| {
            files
                .iter()
                .map(|p| {
                    let x = std::fs::read(p).unwrap();
                    serde_json::from_slice::<serde_json::Value>(&x).unwrap()
                })
                .count()
        })
    });
    g.bench_function("import_directory", |b| {
        b.iter(|| {
            let mut k = Knowledge::default();
            k.import(&dir).unwrap();
            assert_eq!(k.vulnerability_count(), 382);
            k
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = bench, csaf
}
criterion_main!(benches);
