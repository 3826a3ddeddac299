//! Property: whatever alert the detectors produce, no outgoing message carries an internal
//! address or an inventory field marked private.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use heir_mesh::indicator::{Item, Metric, Product};
use heir_mesh::membership::{ConsortiumKey, Terms};
use heir_mesh::privacy::{Config, DeviceContext, Filter};
use heir_mesh::wire::Envelope;
use heir_mesh::{Identity, group::GroupKey};
use heir_model::{Alert, Category, Severity, Timestamp};
use proptest::prelude::*;

fn internal_ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 3]>().prop_map(|b| IpAddr::V4(Ipv4Addr::new(10, b[0], b[1], b[2]))),
        (16u8..32, any::<[u8; 2]>())
            .prop_map(|(s, b)| IpAddr::V4(Ipv4Addr::new(172, s, b[0], b[1]))),
        any::<[u8; 2]>().prop_map(|b| IpAddr::V4(Ipv4Addr::new(192, 168, b[0], b[1]))),
        any::<[u8; 2]>().prop_map(|b| IpAddr::V4(Ipv4Addr::new(198, 18 + (b[0] & 1), b[1], 7))),
        any::<[u16; 4]>().prop_map(|s| IpAddr::V6(Ipv6Addr::new(
            0xfd00 | (s[0] & 0xff),
            s[1],
            s[2],
            s[3],
            0,
            0,
            0,
            1
        ))),
        any::<[u16; 2]>()
            .prop_map(|s| IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, s[0], s[1], 0, 1))),
        any::<[u8; 3]>()
            .prop_map(|b| IpAddr::V6(Ipv4Addr::new(10, b[0], b[1], b[2]).to_ipv6_mapped())),
    ]
}

fn external_ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        (1u8..=9, any::<[u8; 3]>())
            .prop_map(|(a, b)| IpAddr::V4(Ipv4Addr::new(a, b[0], b[1], b[2]))),
        (11u8..=99, any::<[u8; 3]>())
            .prop_map(|(a, b)| IpAddr::V4(Ipv4Addr::new(a, b[0], b[1], b[2]))),
        any::<[u16; 3]>().prop_map(|s| IpAddr::V6(Ipv6Addr::new(
            0x2001,
            0x0db8 ^ s[0],
            s[1],
            s[2],
            0,
            0,
            0,
            1
        ))),
    ]
}

fn any_ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![internal_ip(), external_ip()]
}

/// Private inventory strings: long enough not to occur by chance in signatures.
fn private_name() -> impl Strategy<Value = String> {
    "[a-z]{4}-(icu|ward|room|bed)-[0-9]{3}-[A-Z][a-z]{5}"
}

prop_compose! {
    fn alert()(
        src in proptest::option::of(any_ip()),
        dst in proptest::option::of(any_ip()),
        device in private_name(),
        patient in "(Mme|M\\.) [A-Z][a-z]{6} [A-Z][a-z]{6}",
        comm in "[a-z]{9,14}",
        rule in prop_oneof![Just("net.port_scan".to_string()), "[a-z]{3}\\.[a-z_]{3,12}", private_name()],
        cat in 0usize..Category::ALL.len(),
        conf in 0.0f32..=1.0,
        with_product in any::<bool>(),
        model_private in any::<bool>(),
    ) -> (Alert, String, String, Option<DeviceContext>) {
        let mut a = Alert::new(Timestamp::from_secs(1_800_000_000), rule, format!("{device} attacked from {}", src.map(|s| s.to_string()).unwrap_or_default()), Category::ALL[cat], Severity::High, conf);
        a.src_ip = src;
        a.dst_ip = dst;
        a.device = Some(device.clone());
        a.comm = Some(comm.clone());
        a.pid = Some(31337);
        a.evidence = vec![format!("patient {patient} on {device}"), format!("{} -> {}", src.map(|s| s.to_string()).unwrap_or_default(), dst.map(|s| s.to_string()).unwrap_or_default())];
        a.taxonomy.attack = Some("T1046".into());
        let ctx = with_product.then(|| DeviceContext {
            product: Some(Product { vendor: "Acme".into(), model: if model_private { format!("Infuse {device}") } else { "Infuse 3".into() }, firmware: Some("2.4".into()) }),
            cves: vec!["CVE-2024-12345".into()],
        });
        (a, patient, comm, ctx)
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

fn ip_bytes(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn no_outgoing_message_leaks((alert, patient, comm, ctx) in alert()) {
        let device = alert.device.clone().unwrap();
        let cfg = Config {
            internal_networks: vec!["198.18.0.0/15".parse().unwrap()],
            private_terms: vec![device.clone()],
            ..Config::default()
        };
        let filter = Filter::new(cfg, zeroize::Zeroizing::new([3; 32]));
        let ck = ConsortiumKey::generate();
        let id = Identity::generate();
        let cred = ck.issue(&id.join_request(), Terms { hospital: "H-1".into(), groups: vec![], serial: 1, issued: Timestamp::from_secs(0), expires: Timestamp::from_secs(4_000_000_000) });
        let external = [alert.src_ip, alert.dst_ip].into_iter().flatten().any(|ip| !filter.is_internal(ip));
        // The outside party, by direction: what the device reached out to, or what came in.
        let outside = match alert.category {
            Category::C2Beacon | Category::Exfiltration | Category::Cryptomining | Category::ReverseShell => alert.dst_ip.filter(|ip| !filter.is_internal(*ip)),
            Category::PortScan | Category::BruteForce | Category::DefaultCredentials | Category::DosFlood => alert.src_ip.filter(|ip| !filter.is_internal(*ip)),
            _ => [alert.src_ip, alert.dst_ip].into_iter().flatten().find(|ip| !filter.is_internal(*ip)),
        };
        let candidate = filter.candidate(&alert, ctx.as_ref());
        if outside.is_some() && alert.category != Category::KnownIndicator {
            // Not vacuous: an attacker address outside the hospital is always shared.
            prop_assert!(candidate.is_ok(), "{candidate:?}");
        }
        if let Ok(ind) = &candidate && let Some(ip) = outside {
            prop_assert_eq!(&ind.observable, &heir_mesh::indicator::Observable::Ip(ip));
        }
        let Ok(ind) = candidate else { return Ok(()) };
        let item = Item::Indicator(ind);
        if external {
            prop_assert!(filter.check(&item).is_ok(), "{:?}", filter.check(&item));
        }
        if filter.check(&item).is_err() {
            return Ok(());
        }
        let wire = Envelope::clear(&id, &cred, alert.ts, item.clone()).encode();
        let plain = postcard::to_allocvec(&item).unwrap();
        // Sealed payloads are checked before encryption, as the group will read them.
        let _ = Envelope::sealed(&id, &cred, alert.ts, &item, &GroupKey::generate("icu", 1));
        for bytes in [&wire, &plain] {
            for ip in [alert.src_ip, alert.dst_ip].into_iter().flatten().filter(|ip| filter.is_internal(*ip)) {
                prop_assert!(!contains(bytes, ip.to_string().as_bytes()), "internal {ip} as text");
                prop_assert!(!contains(bytes, &ip_bytes(ip)), "internal {ip} as bytes");
            }
            prop_assert!(!contains(bytes, device.as_bytes()), "device name {device}");
            prop_assert!(!contains(bytes, patient.as_bytes()), "patient name");
            prop_assert!(!contains(bytes, comm.as_bytes()), "process name");
            for e in &alert.evidence {
                prop_assert!(!contains(bytes, e.as_bytes()), "evidence");
            }
            prop_assert!(!contains(bytes, alert.title.as_bytes()), "title");
        }
    }

    #[test]
    fn statistics_respect_k(counts in proptest::collection::vec(0u64..50, 1..20), contributors in 0u32..20, seed in any::<u64>()) {
        use rand::SeedableRng;
        let filter = Filter::new(Config::default(), zeroize::Zeroizing::new([1; 32]));
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let period = (Timestamp::from_secs(0), Timestamp::from_secs(1));
        match filter.release(Metric::RamaScores, &counts, contributors, period, &mut rng) {
            Ok(a) => {
                prop_assert!(contributors >= filter.config().k_anonymity);
                prop_assert_eq!(a.buckets.len(), counts.len());
                // Discrete noise on integer counts: every released value is an integer.
                prop_assert!(a.buckets.iter().all(|b| b.fract() == 0.0), "{:?}", a.buckets);
                prop_assert!(filter.check(&Item::Aggregate(a)).is_ok());
            }
            Err(_) => prop_assert!(contributors < filter.config().k_anonymity),
        }
    }
}
