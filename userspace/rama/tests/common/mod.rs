//! The fixture fleet of docs/RAMA.md ("Worked examples"), built through the public API.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use heir_model::{Alert, Category, Severity, Timestamp};
use heir_rama::{
    DeviceFact, Fact, ManualClock, Protocol, Rama, Registry, Service, TlsVersion, Transport, oui,
};

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The instant the worked examples are scored at.
pub fn now() -> Timestamp {
    Timestamp::parse_rfc3339("2026-01-15T12:00:00Z").unwrap()
}

pub fn hours_before(h: u64) -> Timestamp {
    Timestamp::from_nanos(now().as_nanos() - h * 3_600_000_000_000)
}

pub const KNOWLEDGE: [&str; 7] = [
    "infusia-300.cdx.json",
    "archivepro.cdx.json",
    "osv.json",
    "nvd.json",
    "kev.csv",
    "infusia-300.mds2.csv",
    "vitalview-5.mds2.csv",
];

fn svc(port: u16, p: Protocol) -> Fact {
    Fact::Service(Service::new(port, Transport::Tcp, p))
}

pub fn observations() -> Vec<DeviceFact> {
    let t = hours_before(48);
    let o = |ip: &str, mac: Option<&str>, seen: Fact| DeviceFact {
        ts: t,
        ip: ip.parse().unwrap(),
        mac: mac.map(|m| m.parse().unwrap()),
        seen,
    };
    vec![
        o(
            "10.20.0.13",
            Some("02:00:5e:20:00:13"),
            svc(23, Protocol::Telnet),
        ),
        o("10.20.0.13", None, svc(443, Protocol::Https)),
        o(
            "10.20.0.13",
            None,
            Fact::Tls {
                port: 443,
                version: TlsVersion::Tls10,
            },
        ),
        o(
            "10.20.0.13",
            None,
            Fact::DefaultCredentials {
                port: 23,
                protocol: Protocol::Telnet,
            },
        ),
        o("10.20.0.23", None, svc(2575, Protocol::Hl7Mllp)),
        o("10.20.0.23", None, svc(22, Protocol::Ssh)),
        o("10.40.0.10", None, svc(104, Protocol::Dicom)),
        o("10.40.0.10", None, svc(2762, Protocol::DicomTls)),
        o(
            "10.40.0.10",
            None,
            Fact::Tls {
                port: 2762,
                version: TlsVersion::Tls12,
            },
        ),
        o(
            "10.40.0.10",
            None,
            Fact::DicomAeTitle {
                title: "ARCHIVEPRO".into(),
            },
        ),
        o("10.40.0.10", None, svc(445, Protocol::Smb)),
        o("10.30.0.5", None, svc(3389, Protocol::Rdp)),
        o(
            "10.50.0.7",
            Some("00:09:5c:00:00:07"),
            svc(80, Protocol::Http),
        ),
    ]
}

pub fn alerts() -> Vec<Alert> {
    let mut brute = Alert::new(
        hours_before(6),
        "net.brute_force",
        "Telnet password guessing",
        Category::BruteForce,
        Severity::High,
        0.9,
    );
    brute.dst_ip = Some("10.20.0.13".parse().unwrap());
    brute.dst_port = Some(23);
    let mut ransom = Alert::new(
        hours_before(1),
        "host.ransomware",
        "Mass file encryption",
        Category::Ransomware,
        Severity::Critical,
        1.0,
    );
    ransom.src_ip = Some("10.30.0.5".parse().unwrap());
    vec![brute, ransom]
}

/// The fleet with registry and knowledge loaded, before any observation or alert.
pub fn bare_fleet() -> Rama<ManualClock> {
    let mut r = Rama::new(ManualClock::new(now()), oui::Table::curated());
    r.load_registry(&Registry::load(&fixture("devices.toml")).unwrap());
    for f in KNOWLEDGE {
        r.import(&fixture(f)).unwrap_or_else(|e| panic!("{e}"));
    }
    r
}

/// The whole worked-example fleet.
pub fn fleet() -> Rama<ManualClock> {
    let mut r = bare_fleet();
    for o in observations() {
        r.observe(&o);
    }
    for a in alerts() {
        r.alert(&a).expect("alert maps to a fleet device");
    }
    r
}
