//! One report per role from the fixed fleet, alert history and real advisories of
//! `common`: the counts on each page are the fixture's.

mod common;

use heir_model::Category;
use heir_report::{
    HospitalView, ManufacturerView, Page, PublicView, RegulatorView, Releaser, Role,
};
use rand::SeedableRng;

fn releaser_rng() -> rand::rngs::StdRng {
    rand::rngs::StdRng::seed_from_u64(16)
}

#[test]
fn hospital_report_counts_the_fleet_alerts_and_advisories() {
    let r = common::fleet();
    let v: HospitalView = common::hospital_view(&r);
    assert_eq!(v.incidents.len(), common::INCIDENTS);
    assert_eq!(v.devices.len(), 12);
    let today = common::now().as_nanos() / common::DAY_NS;
    let want: std::collections::BTreeMap<(u64, Category), u64> = common::per_day()
        .into_iter()
        .map(|((d, c), n)| ((today - d, c), n))
        .collect();
    assert_eq!(v.per_day, want);
    assert_eq!(v.attack.get("T1046"), Some(&5));
    assert_eq!(v.attack.get("T1110"), Some(&2));
    assert_eq!(v.owasp.get("I3"), Some(&1));
    // The update line of scan-1 is the same incident, with its count.
    let scan1 = v.incidents.iter().find(|i| i.alert.id == "scan-1").unwrap();
    assert_eq!(scan1.alert.count, 5);
    assert_eq!(scan1.opened, common::hours_before(24));

    // Real advisories: the ventilators at 2.2.3 (ICSMA-21-047-01), the cabinets at 1.4.0
    // (ICSMA-19-248-01), the receivers at 1.0.2 (ICSMA-20-049-01); not the fixed ventilators.
    for (adv, n) in [
        ("ICSMA-21-047-01", 5),
        ("ICSMA-19-248-01", 3),
        ("ICSMA-20-049-01", 2),
    ] {
        let a = v
            .advisories
            .iter()
            .find(|a| a.advisories.iter().any(|x| x.eq_ignore_ascii_case(adv)))
            .unwrap_or_else(|| panic!("{adv} is not among the open advisories"));
        assert_eq!(a.devices.len(), n, "{adv}: {:?}", a.devices);
    }
    assert!(v.advisories.iter().all(|a| {
        !a.devices
            .iter()
            .any(|d| d == "idv-vent-6" || d == "idv-vent-7")
    }));
    assert!(!v.actions.is_empty());
    assert!(
        v.actions
            .windows(2)
            .all(|w| w[0].action.lowers_by >= w[1].action.lowers_by)
    );
    assert!(
        !v.history.is_empty(),
        "the hospital score changed within the window"
    );

    let html = v.render(&common::cover(Role::Hospital)).unwrap();
    for section in [
        "rama",
        "devices",
        "alerts",
        "attack",
        "taxonomy",
        "advisories",
        "actions",
        "consortium",
        "peers",
    ] {
        assert!(
            html.contains(&format!("<section id=\"{section}\">")),
            "no section {section}"
        );
    }
    assert!(html.contains(common::LABEL));
    assert!(html.contains("10.60.1.101"));
    // Alert titles are attacker-influenced: escaped, never markup.
    assert!(!html.contains("<script"), "unescaped alert title");
    assert!(html.contains("&lt;script&gt;"));
    // One bar per non-empty (day, category), one point per change of the hospital score.
    let chart = common::element(&html, "div", "chart-alerts-per-day");
    assert_eq!(
        common::bars(chart, &common::palette()),
        common::per_day().len()
    );
    let chart = common::element(&html, "div", "chart-rama-history");
    assert_eq!(chart.matches("<circle").count(), v.history.len());
    let peers = common::element(&html, "section", "peers");
    assert!(peers.contains("Not available"), "{peers}");
    let cats = common::element(&html, "table", "table-alert-categories");
    assert!(
        cats.contains("<td>port_scan</td><td class=\"n\">5</td>"),
        "{cats}"
    );
}

#[test]
fn manufacturer_report_shows_its_groups_of_k_and_nothing_else() {
    let r = common::fleet();
    let v = common::hospital_view(&r);
    let k = heir_mesh::privacy::Config::default().k_anonymity;
    assert_eq!(k, 5);
    let m = ManufacturerView::new("hamilton medical ag", v.products(), k);
    // 5 ventilators at 2.2.3 form a group; the 2 at 2.2.4 do not reach k.
    assert_eq!(m.rows.len(), 1, "{:?}", m.rows);
    assert!(m.withheld);
    let row = &m.rows[0];
    assert_eq!(
        (row.model.as_str(), row.firmware.as_str()),
        ("T1 Ventilator", "2.2.3")
    );
    assert_eq!(row.devices, 5);
    assert_eq!(row.incidents.get(&Category::PortScan), Some(&5));
    assert_eq!(row.incidents.get(&Category::C2Beacon), Some(&1));
    assert_eq!(row.incident_total(), 6);
    assert!(!row.vulnerabilities.is_empty());
    assert_eq!(row.bands.iter().sum::<u64>(), 5);

    let html = m.render(&common::cover(Role::Manufacturer)).unwrap();
    common::assert_no_identities("the manufacturer report", &html);
    assert!(!html.contains("Pyxis"), "another manufacturer's product");
    let table = common::element(&html, "table", "table-products");
    assert!(
        table.contains("<td class=\"n\">2.2.3</td><td class=\"n\">5</td><td class=\"n\">6</td>"),
        "{table}"
    );
    let chart = common::element(&html, "div", "chart-product-bands");
    assert_eq!(
        common::bars(chart, &common::band_colours()),
        row.bands.iter().filter(|n| **n > 0).count()
    );
    // A manufacturer with no group of k devices gets a plain sentence.
    let none = ManufacturerView::new("Spacelabs", v.products(), k);
    assert!(none.rows.is_empty());
    let html = none.render(&common::cover(Role::Manufacturer)).unwrap();
    assert!(html.contains("Not available"));
    common::assert_no_identities("the manufacturer report", &html);
}

#[test]
fn regulator_report_releases_noised_histograms_above_k() {
    let r = common::fleet();
    let v = common::hospital_view(&r);
    let mut rng = releaser_rng();
    let mut rel = Releaser::new(heir_mesh::privacy::Config::default(), &mut rng);
    let g = RegulatorView::release(&v, &mut rel);
    // 6 devices raised incidents (5 ventilators, 1 cabinet), 12 devices in the fleet.
    let cat = g.by_category.as_ref().expect("6 contributors ≥ k = 5");
    assert_eq!(cat.contributors(), 6);
    assert_eq!(cat.cells().len(), Category::ALL.len());
    assert_eq!(g.by_class.as_ref().unwrap().contributors(), 12);
    assert_eq!(g.rama.as_ref().unwrap().cells().len(), 10);
    for rel in [
        &g.by_category,
        &g.by_class,
        &g.by_owasp,
        &g.by_enisa,
        &g.rama,
    ]
    .into_iter()
    .flatten()
    {
        assert!(rel.shown().all(|(_, n)| n >= 5), "{rel:?}");
    }
    // Noise is bounded in practice: the ventilators (7) are within a few counts.
    let vent = g
        .by_class
        .as_ref()
        .unwrap()
        .cells()
        .iter()
        .find(|c| c.label == "ventilator")
        .unwrap();
    if let Some(n) = vent.value {
        assert!(n.abs_diff(7) <= 12, "{n}");
    }
    let html = g.render(&common::cover(Role::Regulator)).unwrap();
    common::assert_no_identities("the regulator report", &html);
    for s in [
        "by-category",
        "by-class",
        "by-owasp",
        "by-enisa",
        "rama-distribution",
    ] {
        assert!(
            html.contains(&format!("<section id=\"{s}\">")),
            "no section {s}"
        );
    }
    let shown = g.by_class.as_ref().unwrap().shown().count();
    let chart = common::element(&html, "div", "chart-by-class");
    assert_eq!(common::bars(chart, &common::palette()), shown);
}

#[test]
fn public_report_has_only_coarse_released_aggregates() {
    let r = common::fleet();
    let v = common::hospital_view(&r);
    let mut rng = releaser_rng();
    let mut rel = Releaser::new(heir_mesh::privacy::Config::default(), &mut rng);
    let p = PublicView::release(&v, &mut rel);
    assert_eq!(p.bands.as_ref().unwrap().cells().len(), 4);
    assert_eq!(p.by_category.as_ref().unwrap().contributors(), 6);
    let html = p.render(&common::cover(Role::Public)).unwrap();
    common::assert_no_identities("the public report", &html);
    assert!(
        !html.contains("T1 Ventilator"),
        "a product name in the public report"
    );
    assert!(!html.contains("ICSMA-"), "an advisory in the public report");
    assert!(html.contains("<section id=\"bands\">"));

    // With k above the fleet, everything is withheld, without the count below k.
    let mut rng = releaser_rng();
    let strict = heir_mesh::privacy::Config {
        k_anonymity: 50,
        ..Default::default()
    };
    let mut rel = Releaser::new(strict, &mut rng);
    let p = PublicView::release(&v, &mut rel);
    assert!(p.by_category.is_none() && p.bands.is_none());
    let html = p.render(&common::cover(Role::Public)).unwrap();
    assert!(html.contains("withheld: fewer than 50 contributors"));
    assert_eq!(common::bars(&html, &common::palette()), 0);
}
