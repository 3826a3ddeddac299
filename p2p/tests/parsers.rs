//! Property tests of everything that parses untrusted input.

use heir_mesh::exchange;
use heir_mesh::indicator::{Observable, Product};
use heir_mesh::membership::{ConsortiumKey, Invite, JoinRequest, Terms};
use heir_mesh::wire::Envelope;
use heir_mesh::{Identity, Item};
use heir_model::{Category, Severity, Timestamp};
use proptest::prelude::*;

fn observable() -> impl Strategy<Value = Observable> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(|b| Observable::Ip(std::net::IpAddr::from(b))),
        any::<[u8; 16]>().prop_map(|b| Observable::Ip(std::net::IpAddr::from(b))),
        "[a-z0-9'\\\\.-]{1,40}".prop_map(Observable::Domain),
        "[ -~]{1,60}".prop_map(Observable::Url),
        any::<[u8; 32]>().prop_map(Observable::Sha256),
        (
            "[ -~]{1,20}",
            "[ -~]{1,20}",
            proptest::option::of("[ -~]{1,10}")
        )
            .prop_map(|(vendor, model, firmware)| Observable::Product(Product {
                vendor,
                model,
                firmware
            })),
    ]
}

proptest! {
    #[test]
    fn stix_patterns_round_trip(o in observable()) {
        // Values containing the conjunction keyword are outside the subset.
        let texts = match &o {
            Observable::Domain(s) | Observable::Url(s) => vec![s.clone()],
            Observable::Product(p) => vec![p.vendor.clone(), p.model.clone(), p.firmware.clone().unwrap_or_default()],
            _ => vec![],
        };
        prop_assume!(texts.iter().all(|t| !t.contains(" AND ")));
        prop_assert_eq!(Observable::from_stix_pattern(&o.stix_pattern()), Some(o));
    }

    #[test]
    fn pattern_parser_never_panics(s in "\\PC{0,80}") {
        let _ = Observable::from_stix_pattern(&s);
    }

    #[test]
    fn envelope_decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = Envelope::decode(&bytes);
    }

    #[test]
    fn mutated_envelopes_never_verify(pos in any::<prop::sample::Index>(), bit in 0u8..8) {
        let ck = ConsortiumKey::generate();
        let id = Identity::generate();
        let cred = ck.issue(&id.join_request(), Terms { hospital: "H".into(), groups: vec![], serial: 1, issued: Timestamp::from_secs(0), expires: Timestamp::from_secs(9) });
        let item = Item::Indicator(heir_mesh::Indicator::new(Observable::Domain("x.example".into()), Category::Anomaly, Severity::Low, Timestamp::from_secs(1)));
        let mut bytes = Envelope::clear(&id, &cred, Timestamp::from_secs(1), item).encode();
        let i = pos.index(bytes.len());
        bytes[i] ^= 1 << bit;
        if let Ok(env) = Envelope::decode(&bytes) {
            let cred_ok = env.credential.verify_signature(&ck.public()).is_ok();
            prop_assert!(!(cred_ok && env.verify_signature().is_ok()), "a flipped bit at {i} still verified");
        }
    }

    #[test]
    fn import_never_panics(s in "\\PC{0,200}") {
        let _ = exchange::import(&s);
        let _ = exchange::import(&format!("{{\"type\":\"bundle\",\"id\":\"b\",\"objects\":[{s}]}}"));
    }

    #[test]
    fn text_codes_never_panic(s in "\\PC{0,120}") {
        let _ = Invite::decode(&s);
        let _ = JoinRequest::decode(&format!("heir-join1:{s}"));
    }
}
