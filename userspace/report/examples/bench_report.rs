//! Times report generation for a large hospital: 10 000 devices, 1 000 000 alert lines over
//! 30 days. `cargo run --release -p heir-report --example bench_report`.

use std::path::Path;
use std::time::Instant;

use heir_model::{Alert, Category, Severity, Timestamp};
use heir_rama::{ManualClock, Rama, Registry, oui};
use heir_report::{
    Cover, HospitalView, ManufacturerView, Page, PublicView, RegulatorView, Releaser, Role,
    Sources, Window,
};

const DEVICES: usize = 10_000;
const ALERTS: usize = 1_000_000;
const DAY_NS: u64 = 86_400_000_000_000;

fn main() {
    let now = Timestamp::parse_rfc3339("2026-01-15T12:00:00Z").unwrap();
    let window = Window {
        since: Timestamp::from_nanos(now.as_nanos() - 30 * DAY_NS),
        until: now,
    };
    let classes = [
        "infusion_pump",
        "ventilator",
        "patient_monitor",
        "pacs",
        "workstation",
    ];
    let mut toml = String::new();
    for i in 0..DEVICES {
        toml.push_str(&format!(
            "[device.d{i}]\nname = \"device {i}\"\nclass = \"{}\"\nmanufacturer = \"Maker {}\"\nmodel = \"Model {}\"\nfirmware = \"{}.0\"\nip = \"10.{}.{}.{}\"\n",
            classes[i % classes.len()],
            i % 7,
            i % 13,
            i % 3,
            (i >> 16) & 0xff,
            (i >> 8) & 0xff,
            i & 0xff
        ));
    }
    let mut rama = Rama::new(ManualClock::new(now), oui::Table::curated());
    rama.load_registry(&Registry::parse(&toml, Path::new("bench.toml")).unwrap());
    let alerts: Vec<Alert> = (0..ALERTS)
        .map(|i| {
            let cat = Category::ALL[i % Category::ALL.len()];
            let ts = Timestamp::from_nanos(
                now.as_nanos() - (i as u64 * 2_591_000_000_000 / ALERTS as u64),
            );
            let mut a = Alert::new(ts, "bench.rule", "bench alert", cat, Severity::High, 0.9);
            // One update line in four continues an earlier incident.
            a.id = format!("a{}", if i % 4 == 3 { i - 1 } else { i });
            let d = i % DEVICES;
            a.dst_ip = Some(
                format!("10.{}.{}.{}", (d >> 16) & 0xff, (d >> 8) & 0xff, d & 0xff)
                    .parse()
                    .unwrap(),
            );
            a.taxonomy.attack = Some(format!("T{}", 1000 + i % 50));
            a.taxonomy.owasp_iot = Some(format!("I{}", 1 + i % 10));
            a.taxonomy.enisa = Some("Nefarious activity/abuse: brute force".into());
            a
        })
        .collect();

    let cover = |role| Cover {
        role,
        window,
        generated: now,
        sources: vec!["bench".into()],
    };
    let t = Instant::now();
    let view = HospitalView::build(
        Sources {
            rama: &rama,
            alerts: &alerts,
            consortium: None,
            label: None,
        },
        window,
    );
    let build = t.elapsed();
    let mut rng = rand::rng();
    let mut figures = Vec::new();
    for role in Role::ALL {
        let t = Instant::now();
        let html = match role {
            Role::Hospital => view.render(&cover(role)).unwrap(),
            Role::Manufacturer => ManufacturerView::new("Maker 3", view.products(), 5)
                .render(&cover(role))
                .unwrap(),
            Role::Regulator => {
                let mut r = Releaser::new(heir_mesh::privacy::Config::default(), &mut rng);
                RegulatorView::release(&view, &mut r)
                    .render(&cover(role))
                    .unwrap()
            }
            Role::Public => {
                let mut r = Releaser::new(heir_mesh::privacy::Config::default(), &mut rng);
                PublicView::release(&view, &mut r)
                    .render(&cover(role))
                    .unwrap()
            }
        };
        figures.push((role, t.elapsed(), html.len()));
    }
    println!(
        "heir report: {DEVICES} devices, {ALERTS} alert lines ({} incidents in 30 days)",
        view.incidents.len()
    );
    println!(
        "  hospital view built in {:.0} ms",
        build.as_secs_f64() * 1e3
    );
    for (role, d, len) in figures {
        println!(
            "  {role:<12} page in {:>6.1} ms, {:>7} bytes",
            d.as_secs_f64() * 1e3,
            len
        );
    }
}
