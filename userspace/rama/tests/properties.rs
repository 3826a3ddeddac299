//! The formula's promises, checked on random inputs and random event sequences.

mod common;

use std::time::Duration;

use heir_model::{Alert, Category, Severity};
use heir_rama::import::mds2::Capability;
use heir_rama::score::{Explanation, Exposure, Inputs, VulnInput};
use heir_rama::{
    Band, Clock, Criticality, DeviceFact, Fact, Protocol, Score, Service, TlsVersion, Transport,
};
use proptest::prelude::*;

fn protocol() -> impl Strategy<Value = Protocol> {
    prop::sample::select(vec![
        Protocol::Telnet,
        Protocol::Ftp,
        Protocol::Tftp,
        Protocol::Http,
        Protocol::Https,
        Protocol::Ssh,
        Protocol::Dicom,
        Protocol::DicomTls,
        Protocol::Hl7Mllp,
        Protocol::Mqtt,
        Protocol::Smb,
        Protocol::Rdp,
        Protocol::Vnc,
        Protocol::Snmp,
        Protocol::Modbus,
        Protocol::Other,
    ])
}

fn exposure() -> impl Strategy<Value = Exposure> {
    let tls = prop::sample::select(vec![
        TlsVersion::Ssl3,
        TlsVersion::Tls10,
        TlsVersion::Tls11,
        TlsVersion::Tls12,
        TlsVersion::Tls13,
    ]);
    prop_oneof![
        (any::<u16>(), protocol(), any::<bool>(), any::<bool>()).prop_map(|(port, p, c, r)| {
            let mut s = Service::new(port, Transport::Tcp, p);
            s.cleartext |= c;
            s.risky |= r;
            Exposure::of_service(&s)
        }),
        (any::<u16>(), protocol())
            .prop_map(|(port, protocol)| Exposure::DefaultCredentials { port, protocol }),
        (any::<u16>(), tls).prop_map(|(port, version)| Exposure::ObsoleteTls { port, version }),
    ]
}

fn vuln() -> impl Strategy<Value = VulnInput> {
    (0u32..=100, any::<bool>()).prop_map(|(c, exploited)| VulnInput {
        id: format!("CVE-2099-{c:04}"),
        cvss: f64::from(c) / 10.0,
        exploited,
        fixed_in: None,
        advisory: None,
        remediation: None,
    })
}

fn criticality() -> impl Strategy<Value = Criticality> {
    prop::sample::select(vec![
        Criticality::Low,
        Criticality::Moderate,
        Criticality::High,
        Criticality::LifeSustaining,
    ])
}

fn inputs() -> impl Strategy<Value = Inputs> {
    (
        criticality(),
        prop::collection::vec(exposure(), 0..8),
        prop::collection::vec(vuln(), 0..8),
        0.0f64..20.0,
        prop::sample::subsequence(Capability::ALL.to_vec(), 0..=7),
    )
        .prop_map(
            |(criticality, exposures, vulnerabilities, threat_load, capabilities)| Inputs {
                criticality,
                exposures,
                vulnerabilities,
                threat_load,
                capabilities,
            },
        )
}

fn s(i: &Inputs) -> f64 {
    Score::of(i).value
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    #[test]
    fn always_within_0_and_100_and_banded(i in inputs()) {
        let sc = Score::of(&i);
        prop_assert!((0.0..=97.5).contains(&sc.value), "{}", sc.value);
        prop_assert_eq!(sc.band, Band::of(sc.value));
        for f in [sc.factors.exposure, sc.factors.vulnerability, sc.factors.threat, sc.factors.resilience] {
            prop_assert!((0.0..=1.0).contains(&f));
        }
    }

    #[test]
    fn a_new_vulnerability_never_lowers_risk(i in inputs(), v in vuln(), at in any::<prop::sample::Index>()) {
        let mut more = i.clone();
        more.vulnerabilities.insert(at.index(i.vulnerabilities.len() + 1), v);
        prop_assert!(s(&more) >= s(&i));
    }

    #[test]
    fn a_new_alert_never_lowers_risk(i in inputs(), extra in 0.0f64..5.0) {
        let mut more = i.clone();
        more.threat_load += extra;
        prop_assert!(s(&more) >= s(&i));
    }

    #[test]
    fn a_new_exposure_never_lowers_risk(i in inputs(), e in exposure()) {
        let mut more = i.clone();
        more.exposures.push(e);
        prop_assert!(s(&more) >= s(&i));
    }

    #[test]
    fn removing_a_service_or_patching_never_raises_risk(i in inputs(), a in any::<prop::sample::Index>(), b in any::<prop::sample::Index>()) {
        if !i.exposures.is_empty() {
            let mut less = i.clone();
            less.exposures.remove(a.index(i.exposures.len()));
            prop_assert!(s(&less) <= s(&i));
        }
        if !i.vulnerabilities.is_empty() {
            let mut patched = i.clone();
            patched.vulnerabilities.remove(b.index(i.vulnerabilities.len()));
            prop_assert!(s(&patched) <= s(&i));
        }
    }

    #[test]
    fn resilience_never_raises_and_criticality_never_lowers(i in inputs(), c in prop::sample::select(Capability::ALL.to_vec())) {
        let mut more = i.clone();
        more.capabilities.push(c);
        prop_assert!(s(&more) <= s(&i));
        let mut crit = i.clone();
        crit.criticality = Criticality::LifeSustaining;
        prop_assert!(s(&crit) >= s(&i));
    }

    #[test]
    fn every_proposed_action_lowers_the_score_best_first(i in inputs()) {
        let e = Explanation::of(&i);
        for w in e.actions.windows(2) {
            prop_assert!(w[0].lowers_by >= w[1].lowers_by);
        }
        for a in &e.actions {
            prop_assert!(a.score_after < e.score.value && a.lowers_by > 0.0);
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    Alert {
        device: usize,
        severity: Severity,
        confidence: f32,
    },
    Open {
        device: usize,
        port: u16,
        protocol: Protocol,
    },
    Close {
        device: usize,
        port: u16,
    },
    Wait {
        hours: u64,
    },
}

const IPS: [&str; 5] = [
    "10.20.0.13",
    "10.20.0.23",
    "10.40.0.10",
    "10.30.0.5",
    "10.50.0.7",
];

fn op() -> impl Strategy<Value = Op> {
    let sev = prop::sample::select(vec![
        Severity::Info,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ]);
    let ports = prop::sample::select(vec![21u16, 23, 80, 104, 445, 2575, 3389, 8080]);
    prop_oneof![
        (0..5usize, sev, 0.0f32..=1.0).prop_map(|(device, severity, confidence)| Op::Alert {
            device,
            severity,
            confidence
        }),
        (0..5usize, ports.clone(), protocol()).prop_map(|(device, port, protocol)| Op::Open {
            device,
            port,
            protocol
        }),
        (0..5usize, ports).prop_map(|(device, port)| Op::Close { device, port }),
        (0u64..48).prop_map(|hours| Op::Wait { hours }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    /// Live, incremental updates keep the promises, and end where a full recomputation does.
    #[test]
    fn live_updates_keep_the_promises_and_match_full_recomputation(ops in prop::collection::vec(op(), 1..40)) {
        let mut r = common::fleet();
        for op in ops {
            match op {
                Op::Alert { device, severity, confidence } => {
                    let id = r.inventory().by_ip(IPS[device].parse().unwrap()).unwrap().id.clone();
                    let before = Score::of(&r.inputs(&id).unwrap()).value;
                    let mut a = Alert::new(r.clock().now(), "t", "t", Category::Anomaly, severity, confidence);
                    a.dst_ip = Some(IPS[device].parse().unwrap());
                    r.alert(&a);
                    prop_assert!(r.score(&id).unwrap().value >= before);
                }
                Op::Open { device, port, protocol } => {
                    let o = DeviceFact { ts: r.clock().now(), ip: IPS[device].parse().unwrap(), mac: None, seen: Fact::Service(Service::new(port, Transport::Tcp, protocol)) };
                    let id = r.inventory().by_ip(o.ip).unwrap().id.clone();
                    let had = r.inventory().get(&id).unwrap().services.contains_key(&(port, Transport::Tcp));
                    let before = Score::of(&r.inputs(&id).unwrap()).value;
                    r.observe(&o);
                    if !had {
                        prop_assert!(r.score(&id).unwrap().value >= before);
                    }
                }
                Op::Close { device, port } => {
                    let o = DeviceFact { ts: r.clock().now(), ip: IPS[device].parse().unwrap(), mac: None, seen: Fact::ServiceClosed { port, transport: Transport::Tcp } };
                    let id = r.inventory().by_ip(o.ip).unwrap().id.clone();
                    let before = Score::of(&r.inputs(&id).unwrap()).value;
                    r.observe(&o);
                    prop_assert!(r.score(&id).unwrap().value <= before);
                }
                Op::Wait { hours } => {
                    r.clock().advance(Duration::from_secs(hours * 3600));
                    r.tick();
                }
            }
            let h = r.hospital();
            let worst = r.scores().first().map_or(0.0, |(_, s)| s.value);
            prop_assert!(h.value >= worst && h.value <= 100.0);
        }
        r.tick();
        let live: Vec<_> = r.scores().into_iter().map(|(id, s)| (id, s.value)).collect();
        let hospital = r.hospital().value;
        r.recompute_all();
        let full: Vec<_> = r.scores().into_iter().map(|(id, s)| (id, s.value)).collect();
        prop_assert_eq!(live, full);
        prop_assert_eq!(hospital, r.hospital().value);
    }
}
