//! A fixed fleet, alert history and knowledge base, scored at a fixed instant: products named
//! as in real CISA ICS medical advisories (shared/data/icsma), at affected and fixed versions.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use heir_model::{Alert, Category, Severity, Timestamp};
use heir_rama::{ManualClock, Rama, Registry, oui};
use heir_report::{Cover, HospitalView, Role, Sources, Window};

pub const HOUR_NS: u64 = 3_600_000_000_000;
pub const DAY_NS: u64 = 24 * HOUR_NS;

/// The instant the fixture is reported at.
pub fn now() -> Timestamp {
    Timestamp::parse_rfc3339("2026-01-15T12:00:00Z").unwrap()
}

pub fn hours_before(h: u64) -> Timestamp {
    Timestamp::from_nanos(now().as_nanos() - h * HOUR_NS)
}

/// The last seven days.
pub fn window() -> Window {
    Window {
        since: Timestamp::from_nanos(now().as_nanos() - 7 * DAY_NS),
        until: now(),
    }
}

/// The real advisories. Missing data fails the test: it must never pass by finding nothing.
pub fn icsma() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/icsma");
    assert!(
        dir.join("README.md").is_file(),
        "real CSAF test data missing at {} (shared/data/icsma beside the repository)",
        dir.display()
    );
    dir
}

/// Device names carry a marker no page text has otherwise, so a test can look for leaks.
pub const NAME_MARK: &str = "Ward-Secret";
pub const LABEL: &str = "Hopital-Saint-Fixture";

/// 5 ventilators at an affected firmware, 2 at a fixed one, 3 medication cabinet servers,
/// 2 telemetry receivers: 12 devices.
pub fn registry_toml() -> String {
    let mut s = String::new();
    let mut dev = |id: &str,
                   name: &str,
                   class: &str,
                   maker: &str,
                   model: &str,
                   fw: &str,
                   ip: &str| {
        s.push_str(&format!(
            "[device.{id}]\nname = \"{name} {NAME_MARK}\"\nclass = \"{class}\"\nmanufacturer = \"{maker}\"\nmodel = \"{model}\"\nfirmware = \"{fw}\"\nip = \"{ip}\"\n\n"
        ));
    };
    for i in 1..=7 {
        let fw = if i <= 5 { "2.2.3" } else { "2.2.4" };
        dev(
            &format!("idv-vent-{i}"),
            &format!("Ventilator ICU bed {i}"),
            "ventilator",
            "Hamilton Medical AG",
            "T1 Ventilator",
            fw,
            &format!("10.60.1.{}", 100 + i),
        );
    }
    for i in 1..=3 {
        dev(
            &format!("idv-pyxis-{i}"),
            &format!("Medication cabinet {i}"),
            "workstation",
            "Becton, Dickinson and Company (BD)",
            "Pyxis ES",
            "1.4.0",
            &format!("10.60.2.{}", 100 + i),
        );
    }
    for i in 1..=2 {
        dev(
            &format!("idv-xtr-{i}"),
            &format!("Telemetry receiver {i}"),
            "patient_monitor",
            "Spacelabs",
            "Xhibit Telemetry Receiver (XTR) Model number 96280",
            "1.0.2",
            &format!("10.60.3.{}", 100 + i),
        );
    }
    s
}

/// Every internal address of the fleet.
pub fn addresses() -> Vec<String> {
    let mut v: Vec<String> = (1..=7).map(|i| format!("10.60.1.{}", 100 + i)).collect();
    v.extend((1..=3).map(|i| format!("10.60.2.{}", 100 + i)));
    v.extend((1..=2).map(|i| format!("10.60.3.{}", 100 + i)));
    v
}

fn alert(
    id: &str,
    h: u64,
    cat: Category,
    dst: &str,
    attack: &str,
    owasp: &str,
    enisa: &str,
) -> Alert {
    let mut a = Alert::new(
        hours_before(h),
        format!("test.{}", cat.slug()),
        format!("<script>alert('{id}')</script> {}", cat.slug()),
        cat,
        Severity::High,
        0.9,
    );
    a.id = id.to_owned();
    a.dst_ip = Some(dst.parse().unwrap());
    a.src_ip = Some("203.0.113.66".parse().unwrap());
    a.taxonomy.attack = Some(attack.to_owned());
    a.taxonomy.owasp_iot = Some(owasp.to_owned());
    a.taxonomy.enisa = Some(enisa.to_owned());
    a
}

/// The alert lines, as the store keeps them: 5 port scans (one ventilator each) a day ago,
/// one of them with an update line; 2 brute-force incidents on a cabinet two days ago; one
/// beacon from ventilator 1 three days ago; one port scan ten days ago (outside the window).
pub fn alerts() -> Vec<Alert> {
    let recon = "Nefarious activity/abuse: network reconnaissance";
    let mut v = Vec::new();
    for i in 1..=5 {
        v.push(alert(
            &format!("scan-{i}"),
            24,
            Category::PortScan,
            &format!("10.60.1.{}", 100 + i),
            "T1046",
            "I2",
            recon,
        ));
    }
    let mut update = v[0].clone();
    update.ts = hours_before(23);
    update.count = 5;
    v.push(update);
    for i in 1..=2 {
        v.push(alert(
            &format!("brute-{i}"),
            48 + i,
            Category::BruteForce,
            "10.60.2.101",
            "T1110",
            "I1",
            "Nefarious activity/abuse: brute force",
        ));
    }
    v.push(alert(
        "beacon-1",
        72,
        Category::C2Beacon,
        "10.60.1.101",
        "T1071",
        "I3",
        "Nefarious activity/abuse: command and control",
    ));
    v.push(alert(
        "old-scan",
        240,
        Category::PortScan,
        "10.60.1.102",
        "T1046",
        "I2",
        recon,
    ));
    v
}

/// Incidents in the window (one per id): 5 + 2 + 1.
pub const INCIDENTS: usize = 8;

/// Incidents per (days before now's day, category) in the window.
pub fn per_day() -> BTreeMap<(u64, Category), u64> {
    BTreeMap::from([
        ((1, Category::PortScan), 5),
        ((2, Category::BruteForce), 2),
        ((3, Category::C2Beacon), 1),
    ])
}

/// The fleet scored through its alerts, the clock following them.
pub fn fleet() -> Rama<ManualClock> {
    let mut r = Rama::new(ManualClock::new(window().since), oui::Table::curated());
    r.load_registry(&Registry::parse(&registry_toml(), Path::new("fixture.toml")).unwrap());
    r.import(&icsma()).unwrap_or_else(|e| panic!("{e}"));
    let mut alerts = alerts();
    alerts.sort_by_key(|a| a.ts);
    for a in &alerts {
        r.clock().set(a.ts);
        r.alert(a);
    }
    r.clock().set(now());
    r.tick();
    r
}

pub fn hospital_view(r: &Rama<ManualClock>) -> HospitalView {
    let alerts = alerts();
    HospitalView::build(
        Sources {
            rama: r,
            alerts: &alerts,
            consortium: None,
            label: Some(LABEL.to_owned()),
        },
        window(),
    )
}

pub fn cover(role: Role) -> Cover {
    Cover {
        role,
        window: window(),
        generated: now(),
        sources: vec!["fixture fleet".to_owned()],
    }
}

/// The text of the element with `id` in `html`, up to its closing `tag`.
pub fn element<'a>(html: &'a str, tag: &str, id: &str) -> &'a str {
    let start = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no element with id {id}"));
    let end = html[start..]
        .find(&format!("</{tag}>"))
        .unwrap_or_else(|| panic!("element {id} is not closed"));
    &html[start..start + end]
}

/// `<rect` elements in `svg` filled with one of `colours` (as `#RRGGBB`).
pub fn bars(svg: &str, colours: &[String]) -> usize {
    svg.split("<rect")
        .skip(1)
        .filter(|r| {
            let tag = &r[..r.find('>').unwrap_or(r.len())];
            colours
                .iter()
                .any(|c| tag.contains(&format!("fill=\"{c}\"")))
        })
        .count()
}

pub fn palette() -> Vec<String> {
    heir_report::charts::PALETTE
        .iter()
        .map(|c| heir_report::charts::hex(*c))
        .collect()
}

pub fn band_colours() -> Vec<String> {
    heir_report::charts::BANDS
        .iter()
        .map(|c| heir_report::charts::hex(*c))
        .collect()
}

/// Identities that must never reach a role below the hospital.
pub fn assert_no_identities(what: &str, text: &str) {
    for a in addresses() {
        assert!(!text.contains(&a), "{what} holds the internal address {a}");
    }
    assert!(!text.contains(NAME_MARK), "{what} holds a device name");
    assert!(!text.contains(LABEL), "{what} holds the hospital's label");
    assert!(!text.contains("idv-"), "{what} holds a device id");
}
