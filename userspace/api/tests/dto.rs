//! The JSON shapes scripts rely on, and round trips of the DTOs.

use heir_api::fixture;
use heir_api::{Availability, Indicator, Live, Stored};
use heir_model::{Alert, Category, Severity, Timestamp};
use proptest::prelude::*;
use serde_json::json;

#[test]
fn shapes_are_stable() {
    let nb: Availability<Vec<Indicator>> = Availability::not_built("the mesh is not built");
    assert_eq!(
        serde_json::to_value(&nb).unwrap(),
        json!({"not_built": {"what": "the mesh is not built"}})
    );
    let av: Availability<Vec<u8>> = Availability::Available(vec![1]);
    assert_eq!(
        serde_json::to_value(&av).unwrap(),
        json!({"available": [1]})
    );

    let s = fixture::alerts().remove(0);
    let v = serde_json::to_value(Live::Alert(s.clone())).unwrap();
    assert_eq!(v["type"], "alert");
    assert_eq!(v["seq"], 1);
    assert_eq!(v["acknowledged"]["at"], "2026-11-28T07:00:00Z");
    assert_eq!(
        v["alert"]["category"], "port_scan",
        "the alert line inside, unchanged"
    );
    assert_eq!(
        serde_json::to_value(Live::Lagged { missed: 3 }).unwrap(),
        json!({"type": "lagged", "missed": 3})
    );
    let fresh = Stored {
        acknowledged: None,
        ..s
    };
    assert!(
        serde_json::to_value(&fresh)
            .unwrap()
            .get("acknowledged")
            .is_none()
    );
    let status = serde_json::to_value(fixture::status()).unwrap();
    assert_eq!(status["sensors"][2]["lost"], 312);
    assert_eq!(
        status["probes"]["failed"][0]["program"],
        "sys_enter_init_module"
    );
}

fn category() -> impl Strategy<Value = Category> {
    (0..Category::ALL.len()).prop_map(|i| Category::ALL[i])
}

proptest! {
    #[test]
    fn stored_alerts_round_trip_through_the_stream_format(
        secs in 0u64..4_000_000_000,
        title in "\\PC{0,40}",
        cat in category(),
        conf in 0f32..=1.0,
        port in proptest::option::of(any::<u16>()),
        evidence in prop::collection::vec("\\PC{0,30}", 0..4),
        seq in any::<u64>(),
        acked in any::<bool>(),
        count in 1u64..1000,
    ) {
        let mut a = Alert::new(Timestamp::from_secs(secs), "r", title, cat, Severity::High, conf);
        a.dst_port = port;
        a.evidence = evidence;
        a.count = count;
        let live = Live::Alert(Stored {
            seq,
            acknowledged: acked.then_some(heir_api::Ack::at(Timestamp::from_secs(secs))),
            alert: a,
        });
        let line = serde_json::to_string(&live).unwrap();
        prop_assert!(!line.contains('\n'), "one item per line");
        let back: Live = serde_json::from_str(&line).unwrap();
        prop_assert_eq!(back, live);
    }

    #[test]
    fn garbage_lines_are_errors_not_panics(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = serde_json::from_slice::<Live>(&bytes);
    }
}
