//! End to end through the engine: rules, every detector, aggregation. Attacks produce one
//! incident each with the right category; a busy benign stream produces nothing.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use heir_detect::scenario::{self, Rng, T0};
use heir_detect::{Config, Engine, ManualClock};
use heir_model::{Alert, Category, Event, Timestamp};

fn engine(clock: &ManualClock) -> Engine {
    let mut e = Engine::new(&Config::default(), Arc::new(clock.clone()));
    e.reload_rules(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rules"))
        .expect("shipped rules load");
    e
}

fn run(e: &mut Engine, clock: &ManualClock, mut events: Vec<Event>) -> Vec<Alert> {
    events.sort_by_key(|e| e.ts);
    let mut out = Vec::new();
    let mut next_tick = events.first().map_or(0, |e| e.ts.as_nanos());
    for ev in &events {
        e.process(ev, &mut out);
        if ev.ts.as_nanos() >= next_tick {
            clock.set(ev.ts);
            e.tick(&mut out);
            next_tick = ev.ts.as_nanos() + 1_000_000_000;
        }
    }
    clock.set(Timestamp::from_nanos(
        events.last().map_or(0, |e| e.ts.as_nanos()) + 3_600_000_000_000,
    ));
    e.tick(&mut out);
    out
}

fn by_category(alerts: &[Alert]) -> BTreeMap<Category, usize> {
    let mut m = BTreeMap::new();
    for a in alerts {
        *m.entry(a.category).or_default() += 1;
    }
    m
}

#[test]
fn a_busy_benign_day_raises_nothing() {
    let clock = ManualClock::new(Timestamp::from_nanos(T0));
    let mut e = engine(&clock);
    let mut rng = Rng::new(42);
    let events = scenario::benign_mix(0, 60_000, &mut rng);
    let alerts = run(&mut e, &clock, events);
    assert!(alerts.is_empty(), "{:#?}", &alerts[..alerts.len().min(5)]);
    assert_eq!(e.stats().events, 60_000);
}

#[test]
fn an_attack_campaign_is_a_handful_of_incidents() {
    let clock = ManualClock::new(Timestamp::from_nanos(T0));
    let mut e = engine(&clock);
    let mut rng = Rng::new(7);
    let mut events = scenario::benign_mix(0, 20_000, &mut rng);
    events.extend(scenario::nmap_syn_scan(
        1_000,
        "10.9.0.66",
        "10.9.0.5",
        1000,
        &[22, 104, 443, 4242],
    ));
    events.extend(scenario::hydra_ftp(5_000, "10.9.0.66", "10.9.0.8", 60));
    events.extend(scenario::bash_reverse_shell(20_000, 5000, "10.9.0.66"));
    events.extend(scenario::openssl_ransomware(25_000, 6000, 200));
    events.extend(scenario::curl_beacon(
        0,
        "10.9.0.77",
        "198.51.100.23",
        60_000,
        0.2,
        40,
        &mut rng,
    ));
    let total = events.len();
    let alerts = run(&mut e, &clock, events);
    let cats = by_category(&alerts);
    for c in [
        Category::PortScan,
        Category::BruteForce,
        Category::ReverseShell,
        Category::Ransomware,
        Category::C2Beacon,
        Category::CleartextProtocol,
    ] {
        assert!(cats.contains_key(&c), "{c} missing: {cats:?}");
    }
    assert!(
        alerts.len() <= 20,
        "{} alerts for {total} events: {cats:?}\n{:#?}",
        alerts.len(),
        alerts
            .iter()
            .map(|a| (&a.rule, a.count))
            .collect::<Vec<_>>()
    );
    // Closing updates carry the incident totals: ~1000 probed ports, 60 failed logins.
    let total = |c: Category| {
        alerts
            .iter()
            .filter(|a| a.category == c)
            .map(|a| a.count)
            .max()
            .unwrap_or(0)
    };
    assert!(
        total(Category::PortScan) >= 600,
        "{}",
        total(Category::PortScan)
    );
    assert!(
        total(Category::BruteForce) >= 40,
        "{}",
        total(Category::BruteForce)
    );
    assert!(
        !cats.contains_key(&Category::Cryptomining),
        "a reverse shell on 4444 is not a miner"
    );
    let scan = alerts
        .iter()
        .find(|a| a.category == Category::PortScan)
        .unwrap();
    assert!(
        scan.evidence.iter().any(|e| e.contains("SYN (-sS)")),
        "{scan:?}"
    );
    let beacon = alerts
        .iter()
        .find(|a| a.category == Category::C2Beacon)
        .unwrap();
    assert!(
        beacon.title.contains("every 6") || beacon.title.contains("every 5"),
        "{}",
        beacon.title
    );
    for a in &alerts {
        let line = a.to_json_line();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        for k in [
            "ts",
            "id",
            "rule",
            "title",
            "category",
            "severity",
            "confidence",
            "owasp_iot",
            "enisa",
            "attack",
            "evidence",
        ] {
            assert!(v.get(k).is_some(), "{k} missing in {line}");
        }
    }
}

#[test]
fn learnt_state_survives_a_restart() {
    let clock = ManualClock::new(Timestamp::from_nanos(T0));
    let mut e = engine(&clock);
    let mut rng = Rng::new(3);
    run(&mut e, &clock, scenario::benign_mix(0, 30_000, &mut rng));
    let state = e.save_state();
    assert!(
        state.len() > 100,
        "anomaly and exfiltration state saved ({} bytes)",
        state.len()
    );
    let mut fresh = engine(&clock);
    fresh.restore_state(&state).unwrap();
    assert!(
        fresh.save_state() == state,
        "restored state saves back identically"
    );
    let mut broken = state.clone();
    broken.truncate(state.len() / 2);
    assert!(fresh.restore_state(&broken).is_err());
}
