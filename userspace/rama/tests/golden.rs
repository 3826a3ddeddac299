//! The worked examples of docs/RAMA.md, reproduced exactly from the fixture fleet.

mod common;

use std::time::Duration;

use heir_rama::{Band, Registry};

fn close(a: f64, b: f64, eps: f64) -> bool {
    (a - b).abs() < eps
}

#[test]
fn fleet_scores_match_the_published_worked_examples() {
    let r = common::fleet();
    let got: Vec<(String, f64, Band)> = r
        .scores()
        .into_iter()
        .map(|(id, s)| (id, s.value, s.band))
        .collect();
    let want = [
        ("pump-icu-3", 76.6, Band::Critical),
        ("ws-admin", 51.3, Band::High),
        ("pacs-1", 33.9, Band::Medium),
        ("monitor-icu-3", 9.0, Band::Low),
        ("mac:00:09:5c:00:00:07", 7.2, Band::Low),
    ];
    assert_eq!(got.len(), want.len(), "{got:?}");
    for ((id, v, b), (wid, wv, wb)) in got.iter().zip(want) {
        assert_eq!((id.as_str(), *v, *b), (wid, wv, wb));
    }

    let h = r.hospital();
    assert_eq!(h.value, 78.1);
    assert_eq!(h.band, Band::Critical);
    assert_eq!(h.bands, [2, 1, 1, 1]);
    assert_eq!(h.worst[0].0, "pump-icu-3");
}

#[test]
fn example_1_infusion_pump_factor_by_factor() {
    let r = common::fleet();
    let s = r.score("pump-icu-3").unwrap();
    let f = s.factors;
    assert!(close(f.exposure, 0.8537, 1e-12), "{f:?}");
    assert!(close(f.vulnerability, 0.9608, 1e-12), "{f:?}");
    assert!(close(f.threat, 0.454169, 1e-6), "{f:?}");
    assert_eq!(f.resilience, 0.25);
    assert_eq!(f.criticality, 1.0);

    let inputs = r.inputs("pump-icu-3").unwrap();
    assert!(close(inputs.threat_load, 0.605445, 1e-6));
    let v: Vec<(&str, f64, bool)> = inputs
        .vulnerabilities
        .iter()
        .map(|v| (v.id.as_str(), v.cvss, v.exploited))
        .collect();
    // CVE-2099-1002: CVSS 4.0 base 7.2, clinically adjusted to 9.3 (MSI:S/MSA:S on a
    // life-sustaining pump); KEV-listed. CVE-2099-1001: 8.8, unchanged, not exploited.
    assert_eq!(
        v,
        vec![("CVE-2099-1001", 8.8, false), ("CVE-2099-1002", 9.3, true)]
    );

    let rep = r.explain("pump-icu-3").unwrap();
    let best = &rep.explanation.actions[0];
    assert_eq!(
        best.action,
        "patch CVE-2099-1002 (update to 2.2.0 or later)"
    );
    assert_eq!(best.score_after, 67.0);
    let next: Vec<(&str, f64)> = rep.explanation.actions[1..4]
        .iter()
        .map(|a| (a.action.as_str(), a.score_after))
        .collect();
    assert_eq!(
        next,
        vec![
            ("move the device onto an isolated clinical segment", 70.4),
            ("enable encryption in transit (MDS2)", 71.6),
            ("enable patching (MDS2)", 72.9),
        ]
    );
    let points: Vec<(&str, f64)> = rep
        .explanation
        .contributions
        .iter()
        .map(|c| (c.factor.as_str(), c.points))
        .collect();
    assert_eq!(
        points,
        vec![
            ("exposure", 9.9),
            ("vulnerability", 17.8),
            ("threat", 11.0),
            ("resilience", 6.2),
            ("criticality", 23.0)
        ]
    );
    // The matcher found both, and not the zlib issue fixed before the shipped version.
    let ids: Vec<&str> = rep.matches.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, ["CVE-2099-1001", "CVE-2099-1002"]);
    assert!(rep.matches[1].ransomware);
    assert_eq!(rep.recent_alerts.len(), 1);
    let json = serde_json::to_string(&rep).unwrap();
    assert!(json.contains("\"band\":\"critical\""), "{json}");
}

#[test]
fn example_2_segmented_monitor_and_example_3_attacked_workstation() {
    let r = common::fleet();
    let m = r.score("monitor-icu-3").unwrap();
    assert!(close(m.factors.exposure, 0.2875, 1e-12));
    assert_eq!(m.factors.resilience, 0.75);
    assert_eq!(m.value, 9.0);
    let w = r.inputs("ws-admin").unwrap();
    assert!(close(w.threat_load, 1.457298, 1e-6));
    assert_eq!(r.score("ws-admin").unwrap().value, 51.3);
    // The clinical adjustment of the PACS' openssl DoS (AR:H on a moderate device): 7.5 → 9.3.
    let p = r.inputs("pacs-1").unwrap();
    assert_eq!(p.vulnerabilities[0].cvss, 9.3);
    let pacs = r.explain("pacs-1").unwrap();
    assert_eq!(pacs.matches[0].vector.as_ref().unwrap().base_score(), 7.5);
    assert_eq!(
        pacs.explanation.actions[0].action,
        "patch CVE-2099-1003 (update to 3.0.7 or later)"
    );
    assert_eq!(pacs.explanation.actions[0].score_after, 18.0);
    let monitor = r.explain("monitor-icu-3").unwrap();
    assert_eq!(
        monitor.explanation.actions[0].action,
        "disable cleartext hl7_mllp on 2575/tcp or move it behind TLS"
    );
    assert_eq!(monitor.explanation.actions[0].score_after, 1.6);
}

#[test]
fn inventory_merges_sensors_registry_and_oui() {
    let r = common::fleet();
    let inv = r.inventory();
    assert_eq!(inv.len(), 5);
    let pump = inv.get("pump-icu-3").unwrap();
    assert_eq!(pump.manufacturer.as_deref(), Some("Acme Medical"));
    assert!(pump.is_protected());
    assert_eq!(pump.services.len(), 2);
    let found = inv.get("mac:00:09:5c:00:00:07").unwrap();
    assert_eq!(
        found.manufacturer.as_deref(),
        Some("Philips Medical Systems")
    );
    assert!(inv.get("pacs-1").unwrap().ae_titles.contains("ARCHIVEPRO"));
    let listing = r.listing();
    assert!(
        listing.oui_source.contains("built-in"),
        "{}",
        listing.oui_source
    );
    assert_eq!(listing.devices[0].id, "mac:00:09:5c:00:00:07");
}

#[test]
fn decay_rescores_only_attacked_devices_and_history_keeps_the_path() {
    let mut r = common::fleet();
    let before_pacs = r.history("pacs-1").unwrap().len();
    r.clock().advance(Duration::from_secs(24 * 3600));
    let updates = r.tick();
    let mut ids: Vec<&str> = updates.iter().map(|u| u.device.as_str()).collect();
    ids.sort();
    assert_eq!(ids, ["pump-icu-3", "ws-admin"]);
    for u in &updates {
        assert!(u.score.value < u.before.unwrap(), "{u:?}");
    }
    assert_eq!(r.history("pacs-1").unwrap().len(), before_pacs);
    let pump = r.history("pump-icu-3").unwrap();
    assert_eq!(
        pump.last().unwrap().value,
        r.score("pump-icu-3").unwrap().value
    );
    assert!(pump.len() >= 3);
    assert!(r.hospital_history().len() >= 2);
    // A month later the alerts have faded completely and ticking stops touching anything.
    r.clock().advance(Duration::from_secs(30 * 24 * 3600));
    r.tick();
    assert!(r.tick().is_empty());
    assert_eq!(r.inputs("ws-admin").unwrap().threat_load, 0.0);
}

#[test]
fn marking_a_cve_mitigated_in_the_registry_lowers_the_score_as_the_action_promised() {
    let mut r = common::fleet();
    let text = std::fs::read_to_string(common::fixture("devices.toml"))
        .unwrap()
        .replace(
            "mac = \"02:00:5e:20:00:13\"",
            "mac = \"02:00:5e:20:00:13\"\nmitigated = [\"CVE-2099-1002\"]",
        );
    r.load_registry(&Registry::parse(&text, std::path::Path::new("devices.toml")).unwrap());
    assert_eq!(r.score("pump-icu-3").unwrap().value, 67.0);
}

#[test]
fn text_renderings_show_what_the_cli_prints() {
    let r = common::fleet();
    let d = heir_rama::text::devices(&r.listing());
    assert!(d.starts_with("manufacturers from: built-in"), "{d}");
    let pump = d.lines().find(|l| l.starts_with("pump-icu-3")).unwrap();
    for part in [
        "infusion_pump",
        "life_sustaining",
        "10.20.0.13",
        "Acme Medical",
        "23/tcp telnet (cleartext)",
        "443/tcp https TLS 1.0",
        "default password on 23",
        "protected",
    ] {
        assert!(pump.contains(part), "{part} missing from {pump}");
    }
    assert!(d.contains("AE ARCHIVEPRO"), "{d}");

    let s = heir_rama::text::scores(&r.hospital(), &r.scores());
    assert!(
        s.starts_with(
            "hospital RAMA 78.1 critical (5 devices: 1 critical, 1 high, 1 medium, 2 low)"
        ),
        "{s}"
    );
    assert!(
        s.lines()
            .nth(2)
            .unwrap()
            .starts_with("pump-icu-3                76.6 critical"),
        "{s}"
    );

    let e = heir_rama::text::report(&r.explain("pump-icu-3").unwrap());
    assert!(e.contains("RAMA 76.6 critical"), "{e}");
    assert!(
        e.contains("CVE-2099-1002 in Infusia 300 2.1.4: CVSS 9.3 adjusted, exploited (KEV)"),
        "{e}"
    );
    assert!(
        e.contains("-9.6   →  67.0  patch CVE-2099-1002 (update to 2.2.0 or later)"),
        "{e}"
    );
    assert!(e.contains("Telnet password guessing"), "{e}");
}

#[test]
fn a_snapshot_restores_scores_threat_and_history() {
    let r = common::fleet();
    let snap = serde_json::to_string(&r.snapshot()).unwrap();
    let back: heir_rama::Snapshot = serde_json::from_str(&snap).unwrap();
    let clock = heir_rama::ManualClock::new(common::now());
    let restored = heir_rama::Rama::restore(clock.clone(), heir_rama::oui::Table::curated(), back);
    assert_eq!(restored.scores(), r.scores());
    assert_eq!(restored.hospital(), r.hospital());
    assert_eq!(restored.history("pump-icu-3"), r.history("pump-icu-3"));
    assert_eq!(
        restored.explain("pump-icu-3").unwrap().recent_alerts.len(),
        1
    );
    // The restored threat keeps decaying.
    let mut restored = restored;
    clock.advance(Duration::from_secs(3600));
    assert_eq!(restored.tick().len(), 2);
}

#[test]
fn operator_fixes_lower_the_score() {
    let mut r = common::fleet();
    let before = r.score("pump-icu-3").unwrap().value;
    let u = r.clear_default_credentials("pump-icu-3", 23).unwrap();
    assert!(u.score.value < before);
    assert!(r.clear_default_credentials("pump-icu-3", 23).is_none());
    // Nothing re-announced the services within the last hour: they expire.
    let updates = r.expire_services(common::hours_before(1));
    assert_eq!(updates.len(), 5);
    assert!(r.inventory().devices().all(|d| d.services.is_empty()));
}

#[test]
fn alerts_find_their_device_and_default_password_alerts_become_findings() {
    use heir_model::{Alert, Category, Severity};
    let mut r = common::fleet();
    let before = r.score("monitor-icu-3").unwrap().value;
    let mut a = Alert::new(
        common::now(),
        "net.default_credentials",
        "Default password accepted",
        Category::DefaultCredentials,
        Severity::High,
        1.0,
    );
    a.dst_ip = Some("10.20.0.23".parse().unwrap());
    a.dst_port = Some(2575);
    let u = r.alert(&a).unwrap();
    assert_eq!(u.device, "monitor-icu-3");
    assert!(u.score.value > before);
    let dev = r.inventory().get("monitor-icu-3").unwrap();
    assert!(dev.default_credentials.contains_key(&2575));

    // By the `device` field, and not at all for an address heir has never seen.
    let mut b = Alert::new(
        common::now(),
        "r",
        "t",
        Category::Anomaly,
        Severity::Low,
        1.0,
    );
    b.device = Some("pacs-1".into());
    assert_eq!(r.alert(&b).unwrap().device, "pacs-1");
    let mut c = Alert::new(
        common::now(),
        "r",
        "t",
        Category::Anomaly,
        Severity::Low,
        1.0,
    );
    c.dst_ip = Some("192.0.2.1".parse().unwrap());
    assert!(r.alert(&c).is_none());
}

#[test]
fn devices_discovered_before_the_registry_keep_their_findings_and_rank() {
    let mut r = heir_rama::Rama::new(
        heir_rama::ManualClock::new(common::now()),
        heir_rama::oui::Table::curated(),
    );
    for f in common::KNOWLEDGE {
        r.import(&common::fixture(f)).unwrap();
    }
    for o in common::observations() {
        r.observe(&o);
    }
    for a in common::alerts() {
        r.alert(&a).unwrap();
    }
    assert_eq!(r.scores().len(), 5);
    assert!(r.score("ip:10.30.0.5").is_some());
    r.load_registry(&Registry::load(&common::fixture("devices.toml")).unwrap());
    // Same fleet, same scores as when the registry came first.
    let want = common::fleet().scores();
    assert_eq!(r.scores(), want);
    assert_eq!(r.hospital(), common::fleet().hospital());
    assert!(r.history("ws-admin").is_some() && r.history("ip:10.30.0.5").is_none());
}
