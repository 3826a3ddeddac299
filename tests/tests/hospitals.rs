//! Three hospitals in a box, end to end: what `cargo xtask demo` shows, asserted.
//!
//! Real namespaces and links, real dcmtk, openssl, nmap (its scan and telnet-brute) and curl, three real `heir
//! agent` processes with their XDP programs, a real libp2p mesh formed with `heir mesh
//! invite/join`, the real terminal UI in tmux. Needs root (CI is root); without it, or
//! without a tool, it fails saying so.

use std::path::PathBuf;
use std::time::Duration;

use heir_e2e::hospitals::{self, ATTACKER, C2_PORT, World, device_factor, from_attacker};
use serde_json::Value;

/// The `heir` binary `cargo test --workspace` built beside this test.
fn heir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target directory");
    let heir = dir.join("heir");
    assert!(
        heir.exists(),
        "NOT RUN: no heir binary at {} (`cargo xtask test` builds it with the workspace)",
        heir.display()
    );
    heir
}

fn count(alerts: &[Value], pred: impl Fn(&Value) -> bool) -> usize {
    alerts.iter().filter(|a| pred(a)).count()
}

fn is_internal(a: &Value, key: &str) -> bool {
    a[key].as_str().is_some_and(|ip| ip.starts_with("10."))
}

#[test]
fn an_attack_on_one_hospital_is_seen_shared_and_blocked_at_the_next() {
    if let Err(e) = hospitals::check_tools() {
        panic!("NOT RUN: {e}");
    }
    let dir = tempfile::tempdir().expect("scratch dir");
    let mut world = World::build(&heir(), dir.path(), false).unwrap_or_else(|e| panic!("{e}"));
    let id = world.id.clone();
    let story = hospitals::run(&mut world, 16).unwrap_or_else(|e| panic!("{e}"));
    let (a, b, c) = (0, 1, 2);
    let alerts_a = world.hospitals[a].alerts();
    let alerts_b = world.hospitals[b].alerts();
    let alerts_c = world.hospitals[c].alerts();

    // A sees each step of the attack, with the right category and source.
    assert!(
        count(&alerts_a, |x| from_attacker(x, "port_scan")) >= 1,
        "{alerts_a:#?}"
    );
    let brute = alerts_a
        .iter()
        .find(|x| from_attacker(x, "brute_force"))
        .unwrap_or_else(|| panic!("no brute force at A: {alerts_a:#?}"));
    assert_eq!(
        brute["dst_ip"],
        world.hospitals[a].device_addr(1).to_string()
    );
    assert!(
        brute["title"].as_str().unwrap_or("").contains("telnet"),
        "{brute}"
    );
    assert!(
        story.found_password,
        "the brute force should find the factory password"
    );
    let beacon = alerts_a
        .iter()
        .find(|x| x["category"] == "c2_beacon")
        .unwrap_or_else(|| panic!("no beacon at A: {alerts_a:#?}"));
    assert_eq!(
        beacon["src_ip"],
        world.hospitals[a].device_addr(1).to_string()
    );
    assert_eq!(beacon["dst_ip"], ATTACKER.to_string());
    assert_eq!(beacon["dst_port"], C2_PORT);
    assert!(
        beacon["title"].as_str().unwrap_or("").contains("every 1"),
        "the beacon names its period: {beacon}"
    );
    assert!(story.beacons_answered >= 12, "{story:?}");
    for x in &alerts_a {
        for key in ["owasp_iot", "enisa", "attack"] {
            assert!(
                x[key].as_str().is_some_and(|v| !v.is_empty()),
                "{key} missing: {x}"
            );
        }
    }
    // Routine DICOM, HL7 and the devices' own traffic are never taken for an attack: the
    // only attack-category alert with a hospital source is the compromised pump's beacon.
    for (h, alerts) in [(a, &alerts_a), (b, &alerts_b), (c, &alerts_c)] {
        for x in alerts.iter() {
            if is_internal(x, "src_ip") {
                let posture = x["category"] == "cleartext_protocol" || x["category"] == "weak_tls";
                let the_beacon = h == a && x["category"] == "c2_beacon";
                assert!(posture || the_beacon, "hospital {h}: {x}");
            }
        }
    }

    // The weaknesses are reported as what they are: the console's TLS 1.0, seen from a real
    // openssl handshake; dcmtk's association, with its AE titles, from the packet sensor.
    let console = world.hospitals[a].device_addr(3).to_string();
    assert!(
        alerts_a
            .iter()
            .any(|x| x["category"] == "weak_tls" && x.to_string().contains(&console)),
        "no weak TLS on the console: {alerts_a:#?}"
    );
    let packets = std::fs::read_to_string(world.hospitals[a].data.join("packets.jsonl"))
        .expect("A's packet events");
    assert!(
        packets.lines().any(|l| l.contains("\"protocol\":\"dicom\"")
            && l.contains("\"calling_ae\":\"HL7ENGINE\"")
            && l.contains("\"called_ae\":\"PACS_A\"")),
        "no DICOM association from dcmtk in A's packet events"
    );

    // A's syscall probes watch the PACS host only: they saw its DICOM associations (accept),
    // the stored object (an open for write under the PACS store) and the HL7 message it sent
    // (connect), and not one of the many programs run in the other namespaces meanwhile.
    let host = &story.pacs_host_events;
    let n = |k: &str| host.get(k).copied().unwrap_or(0);
    assert!(n("accept") >= 2, "{host:?}");
    assert!(n("open") >= 1, "{host:?}");
    assert!(n("connect") >= 1, "{host:?}");
    assert_eq!(
        n("exec"),
        0,
        "execs outside the PACS host were reported: {host:?}"
    );

    // C saw its own sweep; the consortium heard about it from A and C within seconds.
    assert!(count(&alerts_c, |x| from_attacker(x, "port_scan")) >= 1);
    let (scan_a, at_b, at_c) = (
        story.scan_alert_a.expect("A's alert"),
        story.indicator_at_b.expect("the indicator reached B"),
        story.indicator_at_c.expect("the indicator reached C"),
    );
    assert!(at_b - scan_a < Duration::from_secs(10), "{story:?}");
    assert!(
        at_c.saturating_sub(scan_a) < Duration::from_secs(10),
        "{story:?}"
    );
    let shared = world.indicators(b);
    let entry = shared
        .iter()
        .find(|e| {
            e["indicator"]["category"] == "port_scan"
                && e["indicator"]["observable"]
                    .to_string()
                    .contains(&ATTACKER.to_string())
        })
        .expect("B knows the scanner");
    assert!(
        entry["reports"].as_array().map_or(0, Vec::len) >= 2,
        "corroborated by A and C: {entry}"
    );
    // Nothing identifying a hospital's devices crossed the mesh.
    let text = serde_json::to_string(&shared).unwrap();
    for n in 1..=3 {
        assert!(
            !text.contains(&format!("\"10.{n}.")),
            "internal address shared: {text}"
        );
    }

    // B blocked the attacker in its kernel, on the mesh's word, before the attacker came.
    let block = world.attacker_block(b).expect("B blocks the attacker");
    assert_eq!(block["origin"], "mesh", "{block}");
    assert!(story.block_at_b.expect("block time") < story.attack_on_b.expect("attack time"));
    assert!(!story.attacker_reached_b, "the attacker got through to B");
    assert!(
        story.attacker_reached_a,
        "A only observes: the drop at B is B's block, not a broken network"
    );
    assert!(world.attacker_block(a).is_none() && world.attacker_block(c).is_none());
    assert_eq!(
        count(&alerts_b, |x| x["src_ip"] == ATTACKER.to_string()),
        0,
        "the attacker never got far enough into B to raise an alert: {alerts_b:#?}"
    );
    let data_b = world.hospitals[b].data.to_string_lossy().into_owned();
    let audit = world
        .heir(&["audit", "--json", "--data-dir", &data_b])
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        audit.lines().any(|l| l.contains("\"block\"")
            && l.contains("\"mesh\"")
            && l.contains(&ATTACKER.to_string())),
        "the mesh block is in B's audit log: {audit}"
    );

    // A's pump gateway scores higher, and the explanation says it is the threat.
    let (before, after) = story.pump_rama;
    assert!(after > before + 10.0, "{before} → {after}");
    let (ref rb, ref ra) = story.rama_a;
    let threat = |r: &Value| device_factor(r, "a-pump", "threat").unwrap_or(0.0);
    assert!(threat(ra) > threat(rb), "{ra}");
    let data_a = world.hospitals[a].data.to_string_lossy().into_owned();
    let explained = world
        .heir(&["rama", "--device", "a-pump", "--data-dir", &data_a])
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(explained.to_lowercase().contains("threat"), "{explained}");

    // The terminal UIs show it: A's alerts, B's block.
    world.open_tuis().unwrap_or_else(|e| panic!("{e}"));
    std::thread::sleep(Duration::from_secs(2));
    world.tui_keys('a', &["3"]).unwrap();
    world.tui_keys('b', &["6"]).unwrap();
    let mut screens = (String::new(), String::new());
    let shown = (0..20).any(|_| {
        std::thread::sleep(Duration::from_millis(500));
        screens = (
            world.tui_screen('a').unwrap_or_default(),
            world.tui_screen('b').unwrap_or_default(),
        );
        let lower = screens.0.to_lowercase();
        (lower.contains("port") && lower.contains("scan") && lower.contains("beacon"))
            && screens.1.contains(&ATTACKER.to_string())
            && screens.1.to_lowercase().contains("mesh")
    });
    assert!(
        shown,
        "A's alerts view:\n{}\nB's response view:\n{}",
        screens.0, screens.1
    );

    // Tearing down leaves nothing behind.
    drop(world);
    let left = World::leftovers(&id);
    assert!(left.is_empty(), "left behind: {left:?}");
}
