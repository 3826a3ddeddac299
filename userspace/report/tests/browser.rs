//! Every role's report in a real browser: headless Chromium renders it to a PNG (not blank)
//! and dumps the DOM it built (the SVG charts are there, with one bar or point per fixture
//! count), and the page asks for nothing from the network.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use heir_report::{ManufacturerView, Page, PublicView, RegulatorView, Releaser, Role};
use rand::SeedableRng;

const CHROMIUM: &str = "chromium";
const WITHIN: Duration = Duration::from_secs(90);

/// Runs chromium with `args`; fails loudly when it is missing or hangs.
fn chromium(args: &[&str], out: &Path) -> std::process::Output {
    let stdout = std::fs::File::create(out).unwrap();
    let mut child = Command::new(CHROMIUM)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--host-resolver-rules=MAP * ~NOTFOUND"])
        .args(args)
        .stdout(stdout)
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("`{CHROMIUM}` cannot be run ({e}): install it (`cargo xtask setup` does, or apt-get install chromium)")
        });
    let status = heir_testkit::exit_within(&mut child, WITHIN, "chromium");
    assert!(status.success(), "chromium {args:?}: {status}");
    std::process::Output {
        status,
        stdout: std::fs::read(out).unwrap(),
        stderr: Vec::new(),
    }
}

/// Share of pixels that are not (near) white, and the number of distinct colours.
fn ink(png_path: &Path) -> (f64, usize) {
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(png_path).unwrap(),
    ));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let px = &buf[..info.buffer_size()];
    let mut colours = std::collections::HashSet::new();
    let mut inked = 0usize;
    let n = px.len() / channels;
    for p in px.chunks(channels) {
        let rgb = [p[0], p[1.min(channels - 1)], p[2.min(channels - 1)]];
        colours.insert(rgb);
        if rgb.iter().any(|c| *c < 230) {
            inked += 1;
        }
    }
    (inked as f64 / n as f64, colours.len())
}

/// Renders `html` as `name` and checks the picture and the DOM; returns the DOM.
fn in_browser(dir: &Path, name: &str, html: &str) -> String {
    // Nothing to fetch: no scripts, no external stylesheets, fonts or images.
    for bad in [
        "<script",
        "<link",
        "@import",
        "url(",
        "src=\"http",
        "href=\"http",
        "src='http",
        "href='http",
    ] {
        assert!(
            !html.contains(bad),
            "{name}: the page fetches or runs something ({bad})"
        );
    }
    let file: PathBuf = dir.join(format!("{name}.html"));
    std::fs::write(&file, html).unwrap();
    let url = format!("file://{}", file.display());
    let png = dir.join(format!("{name}.png"));
    chromium(
        &[
            &format!("--screenshot={}", png.display()),
            "--window-size=1200,3000",
            &url,
        ],
        &dir.join(format!("{name}.shot.out")),
    );
    assert!(png.is_file(), "{name}: chromium wrote no screenshot");
    let (share, colours) = ink(&png);
    assert!(colours > 8, "{name}: the screenshot has {colours} colours");
    assert!(
        share > 0.02,
        "{name}: the screenshot is blank ({:.3} inked)",
        share
    );
    let dom = chromium(&["--dump-dom", &url], &dir.join(format!("{name}.dom")));
    let dom = String::from_utf8(dom.stdout).unwrap();
    assert!(dom.contains("<svg"), "{name}: no SVG in the rendered DOM");
    assert!(dom.contains("id=\"cover\""), "{name}: no cover");
    dom
}

#[test]
fn every_role_renders_in_chromium_with_its_charts() {
    let dir = tempfile::tempdir().unwrap();
    let r = common::fleet();
    let v = common::hospital_view(&r);

    let dom = in_browser(
        dir.path(),
        "hospital",
        &v.render(&common::cover(Role::Hospital)).unwrap(),
    );
    let chart = common::element(&dom, "div", "chart-alerts-per-day");
    assert_eq!(
        common::bars(chart, &common::palette()),
        common::per_day().len(),
        "bars per (day, category)"
    );
    let chart = common::element(&dom, "div", "chart-rama-history");
    assert_eq!(
        chart.matches("<circle").count(),
        v.history.len(),
        "points of the hospital score"
    );
    let chart = common::element(&dom, "div", "chart-top-devices");
    let scored = v
        .devices
        .iter()
        .take(10)
        .filter(|d| d.score.value > 0.0)
        .count();
    assert_eq!(
        common::bars(chart, &common::band_colours()),
        scored,
        "bars per top device"
    );
    assert!(
        !dom.contains("<script"),
        "an alert title became markup in the DOM"
    );

    let m = ManufacturerView::new("Hamilton Medical AG", v.products(), 5);
    let dom = in_browser(
        dir.path(),
        "manufacturer",
        &m.render(&common::cover(Role::Manufacturer)).unwrap(),
    );
    let chart = common::element(&dom, "div", "chart-product-indicators");
    assert_eq!(
        common::bars(chart, &common::palette()),
        2,
        "port_scan and c2_beacon on one product row"
    );
    common::assert_no_identities("the manufacturer DOM", &dom);

    let mut rng = rand::rngs::StdRng::seed_from_u64(16);
    let mut rel = Releaser::new(heir_mesh::privacy::Config::default(), &mut rng);
    let g = RegulatorView::release(&v, &mut rel);
    let dom = in_browser(
        dir.path(),
        "regulator",
        &g.render(&common::cover(Role::Regulator)).unwrap(),
    );
    let chart = common::element(&dom, "div", "chart-by-class");
    assert_eq!(
        common::bars(chart, &common::palette()),
        g.by_class.as_ref().unwrap().shown().count()
    );
    common::assert_no_identities("the regulator DOM", &dom);

    let p = PublicView::release(&v, &mut rel);
    let dom = in_browser(
        dir.path(),
        "public",
        &p.render(&common::cover(Role::Public)).unwrap(),
    );
    let chart = common::element(&dom, "div", "chart-bands");
    assert_eq!(
        common::bars(chart, &common::palette()),
        p.bands.as_ref().unwrap().shown().count()
    );
    common::assert_no_identities("the public DOM", &dom);
}
