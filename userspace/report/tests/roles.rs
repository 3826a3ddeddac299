//! The role boundary, for any fleet and alert history: no view below the hospital's (nor its
//! page) holds an internal address, a device name or the hospital's label, and none releases
//! a group or a count below k. Alert titles, device fields and taxonomy strings are made to
//! quote names and addresses, as an attacker's traffic can.

use std::path::Path;

use heir_model::{Alert, Category, Severity, Timestamp};
use heir_rama::{ManualClock, Rama, Registry, oui};
use heir_report::{
    Cover, HospitalView, ManufacturerView, Page, PublicView, RegulatorView, Releaser, Role,
    Sources, Window,
};
use proptest::prelude::*;
use rand::SeedableRng;

const CLASSES: [&str; 5] = [
    "infusion_pump",
    "ventilator",
    "patient_monitor",
    "pacs",
    "workstation",
];
const MAKERS: [&str; 3] = ["Acme Medical", "Baxter", "Spacelabs"];
const MODELS: [&str; 2] = ["Model A", "Model B"];
const FIRMWARE: [&str; 2] = ["1.0", "2.0"];

#[derive(Debug, Clone)]
struct Dev {
    name: String,
    ip: [u8; 3],
    class: usize,
    maker: usize,
    model: usize,
    firmware: usize,
}

impl Dev {
    fn ip(&self) -> String {
        format!("10.{}.{}.{}", self.ip[0], self.ip[1], self.ip[2])
    }
}

fn dev() -> impl Strategy<Value = Dev> {
    (
        "[A-Z]{8}",
        [100u8..=254, 100u8..=254, 100u8..=254],
        0..CLASSES.len(),
        0..MAKERS.len(),
        0..MODELS.len(),
        0..FIRMWARE.len(),
    )
        .prop_map(|(n, ip, class, maker, model, firmware)| Dev {
            name: format!("DEVNAME{n}"),
            ip,
            class,
            maker,
            model,
            firmware,
        })
}

/// (device index, category index, hours before now, quote identities in free text)
type Al = (usize, usize, u64, bool);

fn now() -> Timestamp {
    Timestamp::parse_rfc3339("2026-01-15T12:00:00Z").unwrap()
}

fn build(devs: &[Dev], als: &[Al]) -> (Rama<ManualClock>, Vec<Alert>) {
    let mut toml = String::new();
    let mut seen = std::collections::HashSet::new();
    for (i, d) in devs.iter().enumerate() {
        if !seen.insert(d.ip) {
            continue;
        }
        toml.push_str(&format!(
            "[device.devid{i}]\nname = \"{}\"\nclass = \"{}\"\nmanufacturer = \"{}\"\nmodel = \"{}\"\nfirmware = \"{}\"\nip = \"{}\"\nlocation = \"LOCATION{i}\"\n\n",
            d.name, CLASSES[d.class], MAKERS[d.maker], MODELS[d.model], FIRMWARE[d.firmware], d.ip()
        ));
    }
    let start = Timestamp::from_nanos(now().as_nanos() - 10 * 86_400_000_000_000);
    let mut r = Rama::new(ManualClock::new(start), oui::Table::curated());
    r.load_registry(&Registry::parse(&toml, Path::new("prop.toml")).unwrap());
    let mut alerts = Vec::new();
    for (n, &(d, c, h, quote)) in als.iter().enumerate() {
        let d = &devs[d % devs.len()];
        let cat = Category::ALL[c % Category::ALL.len()];
        let ts = Timestamp::from_nanos(now().as_nanos() - h * 3_600_000_000_000);
        let title = if quote {
            format!("{} at {} of {}", cat, d.ip(), d.name)
        } else {
            cat.to_string()
        };
        let mut a = Alert::new(ts, "prop.rule", title, cat, Severity::High, 0.9);
        a.id = format!("al{n}");
        a.dst_ip = Some(d.ip().parse().unwrap());
        if quote {
            a.device = Some(d.name.clone());
            a.taxonomy.enisa = Some(format!("Nefarious activity/abuse: {} {}", d.name, d.ip()));
            a.taxonomy.owasp_iot = Some(d.name.clone());
            a.taxonomy.attack = Some(format!("T1046 {}", d.ip()));
            a.evidence = vec![d.ip()];
        } else {
            a.taxonomy.owasp_iot = Some("I2".into());
            a.taxonomy.enisa = Some("Nefarious activity/abuse: brute force".into());
        }
        alerts.push(a);
    }
    alerts.sort_by_key(|a| a.ts);
    for a in &alerts {
        r.clock().set(a.ts);
        r.alert(a);
    }
    r.clock().set(now());
    (r, alerts)
}

fn leaks(text: &str, devs: &[Dev], label: &str) -> Option<String> {
    for d in devs {
        if text.contains(&d.ip()) {
            return Some(format!("internal address {}", d.ip()));
        }
        if text.contains(&d.name) {
            return Some(format!("device name {}", d.name));
        }
    }
    if text.contains("devid") || text.contains("LOCATION") {
        return Some("a device id or location".into());
    }
    text.contains(label)
        .then(|| format!("hospital label {label}"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn no_role_below_the_hospital_sees_identities_or_counts_below_k(
        devs in prop::collection::vec(dev(), 1..24),
        als in prop::collection::vec((0usize..64, 0usize..18, 0u64..240, any::<bool>()), 0..60),
        k in 2u32..7,
        epsilon in 0.2f64..3.0,
        seed in any::<u64>(),
        label in "[A-Z]{10}",
    ) {
        let label = format!("HOSPITAL{label}");
        let (r, alerts) = build(&devs, &als);
        let window = Window {
            since: Timestamp::from_nanos(now().as_nanos() - 7 * 86_400_000_000_000),
            until: now(),
        };
        let v = HospitalView::build(
            Sources { rama: &r, alerts: &alerts, consortium: None, label: Some(label.clone()) },
            window,
        );
        let cover = |role| Cover { role, window, generated: now(), sources: vec!["store".into()] };
        // The hospital's own page does hold them (the checks below are not vacuous).
        let own = v.render(&cover(Role::Hospital)).unwrap();
        prop_assert!(own.contains(&label));
        if let Some(d) = v.devices.first() {
            prop_assert!(own.contains(&d.name));
        }

        let config = heir_mesh::privacy::Config { k_anonymity: k, epsilon, ..Default::default() };
        for maker in MAKERS {
            let m = ManufacturerView::new(maker, v.products(), k);
            for row in &m.rows {
                prop_assert!(row.devices >= u64::from(k), "group of {} < k = {k}", row.devices);
            }
            let html = m.render(&cover(Role::Manufacturer)).unwrap();
            for (what, text) in [("view", format!("{m:?}")), ("page", html)] {
                if let Some(l) = leaks(&text, &devs, &label) {
                    prop_assert!(false, "manufacturer {what} holds {l}");
                }
            }
        }
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut rel = Releaser::new(config, &mut rng);
        let g = RegulatorView::release(&v, &mut rel);
        let p = PublicView::release(&v, &mut rel);
        let released = [&g.by_category, &g.by_class, &g.by_owasp, &g.by_enisa, &g.rama, &p.by_category, &p.bands];
        for x in released.into_iter().flatten() {
            prop_assert!(x.contributors() >= k);
            for (label, n) in x.shown() {
                prop_assert!(n >= u64::from(k), "{label}: {n} < k = {k}");
            }
        }
        let pages = [
            ("regulator", format!("{g:?}"), g.render(&cover(Role::Regulator)).unwrap()),
            ("public", format!("{p:?}"), p.render(&cover(Role::Public)).unwrap()),
        ];
        for (role, debug, html) in pages {
            for (what, text) in [("view", debug), ("page", html)] {
                if let Some(l) = leaks(&text, &devs, &label) {
                    prop_assert!(false, "{role} {what} holds {l}");
                }
            }
        }
    }
}
