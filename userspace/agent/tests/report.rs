//! `heir report` on a stopped agent's data directory: real ICSMA advisories imported with
//! `heir vuln import`, alerts in the store, one HTML file per role with its sections; a bad
//! role and an unwritable destination are refused naming what and where.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use heir_model::{Alert, Category, Severity, Timestamp};

const HEIR: &str = env!("CARGO_BIN_EXE_heir");
const WITHIN: Duration = Duration::from_secs(120);

/// Runs heir with `args`; returns whether it succeeded, its stdout and its stderr.
fn heir(dir: &Path, args: &[&str]) -> (bool, String, String) {
    heir_testkit::run_within(Command::new(HEIR).args(args), dir, WITHIN)
}

fn data_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::fs::copy(
        root.join("userspace/rama/tests/fixtures/icsma-devices.toml"),
        dir.path().join("devices.toml"),
    )
    .unwrap();
    let icsma = root.join("../shared/data/icsma");
    assert!(
        icsma.join("README.md").is_file(),
        "real CSAF data missing at {}",
        icsma.display()
    );
    let d = dir.path().to_str().unwrap();
    let (ok, _, err) = heir(
        dir.path(),
        &["vuln", "import", icsma.to_str().unwrap(), "--data-dir", d],
    );
    assert!(ok, "heir vuln import: {err}");
    let store = heir_store::Store::open(
        &dir.path().join("heir.redb"),
        heir_store::Retention::default(),
    )
    .unwrap();
    let ago = |h: u64| Timestamp::from_nanos(Timestamp::now().as_nanos() - h * 3_600_000_000_000);
    let mut alerts = Vec::new();
    for (i, (cat, ip)) in [
        (Category::PortScan, "10.60.0.11"),
        (Category::PortScan, "10.60.0.13"),
        (Category::BruteForce, "10.60.0.16"),
    ]
    .into_iter()
    .enumerate()
    {
        let mut a = Alert::new(
            ago(2 + i as u64 * 24),
            "test.rule",
            "<b>scan</b>",
            cat,
            Severity::High,
            0.9,
        );
        a.id = format!("cli-{i}");
        a.dst_ip = Some(ip.parse().unwrap());
        a.taxonomy.attack = Some("T1046".into());
        alerts.push(a);
    }
    store.append_alerts(&alerts).unwrap();
    drop(store);
    dir
}

#[test]
fn heir_report_writes_each_role_s_page() {
    let dir = data_dir();
    let d = dir.path().to_str().unwrap();
    let sections: [(&str, &[&str]); 4] = [
        (
            "hospital",
            &[
                "rama",
                "devices",
                "alerts",
                "attack",
                "advisories",
                "actions",
                "consortium",
                "peers",
            ],
        ),
        (
            "manufacturer",
            &["products", "indicators", "vulnerabilities"],
        ),
        (
            "regulator",
            &[
                "by-category",
                "by-class",
                "by-owasp",
                "by-enisa",
                "rama-distribution",
            ],
        ),
        ("public", &["by-category", "bands"]),
    ];
    for (role, want) in sections {
        let out = dir.path().join(format!("{role}.html"));
        let out_s = out.to_str().unwrap();
        let (ok, stdout, err) = heir(
            dir.path(),
            &[
                "report",
                "--role",
                role,
                "--manufacturer",
                "Baxter",
                "--since",
                "30d",
                "--data-dir",
                d,
                "--out",
                out_s,
            ],
        );
        assert!(ok, "heir report --role {role}: {err}");
        assert!(stdout.contains(out_s), "{stdout}");
        let html = std::fs::read_to_string(&out)
            .unwrap_or_else(|e| panic!("{role}: no report at {out_s}: {e}"));
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(
            html.contains(&format!("<span id=\"role\">{role}</span>")),
            "{role}: cover"
        );
        assert!(
            html.contains("alert store (3 alert lines)"),
            "{role}: sources"
        );
        for s in want {
            assert!(
                html.contains(&format!("<section id=\"{s}\">")),
                "{role}: no section {s}"
            );
        }
        if role == "hospital" {
            assert!(html.contains("ICSMA-21-047-01"), "the ventilator advisory");
            assert!(html.contains("&lt;b&gt;scan&lt;/b&gt;"), "titles escaped");
            assert!(html.contains("T1046"));
        } else {
            assert!(!html.contains("10.60.0."), "{role}: an internal address");
            assert!(!html.contains("ICU bed"), "{role}: a device name");
        }
    }
}

#[test]
fn heir_report_names_a_bad_role_and_an_unwritable_destination() {
    let dir = data_dir();
    let d = dir.path().to_str().unwrap();
    let out = dir.path().join("x.html");
    let (ok, _, err) = heir(
        dir.path(),
        &[
            "report",
            "--role",
            "boss",
            "--data-dir",
            d,
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(!ok);
    assert!(
        err.contains("boss") && err.contains("hospital, manufacturer, regulator or public"),
        "{err}"
    );
    assert!(!out.exists());

    let bad = dir.path().join("devices.toml/x.html");
    let (ok, _, err) = heir(
        dir.path(),
        &[
            "report",
            "--role",
            "public",
            "--data-dir",
            d,
            "--out",
            bad.to_str().unwrap(),
        ],
    );
    assert!(!ok);
    assert!(err.contains(bad.to_str().unwrap()), "{err}");

    let ro = dir.path().join("ro");
    std::fs::create_dir(&ro).unwrap();
    let gone = ro.join("missing/y.html");
    let (ok, _, err) = heir(
        dir.path(),
        &[
            "report",
            "--role",
            "hospital",
            "--data-dir",
            d,
            "--out",
            gone.to_str().unwrap(),
        ],
    );
    assert!(!ok);
    assert!(
        err.contains("does not exist") && err.contains(gone.to_str().unwrap()),
        "{err}"
    );

    let (ok, _, err) = heir(
        dir.path(),
        &[
            "report",
            "--role",
            "manufacturer",
            "--data-dir",
            d,
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(!ok);
    assert!(err.contains("--manufacturer"), "{err}");
}

/// A running agent holds its store: the report reads its alerts through the API instead,
/// including one it raised a moment ago from the real probes. Needs root (the probes).
#[test]
fn heir_report_reads_a_running_agents_alerts_through_its_api() {
    // SAFETY: geteuid has no preconditions.
    assert!(
        unsafe { libc::geteuid() } == 0,
        "NOT RUN: the agent's probes need root (CI runs the tests as root)"
    );
    let dir = data_dir();
    let alerts = dir.path().join("alerts.jsonl");
    let _agent = heir_testkit::agent(Path::new(HEIR), dir.path(), &alerts, dir.path());
    // An alert the agent raises now: a program with no business there reading /etc/shadow.
    let peek = dir.path().join("reportpeek");
    heir_testkit::copy_executable("/usr/bin/cat", &peek);
    let mut p = Command::new(&peek)
        .arg("/etc/shadow")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    heir_testkit::exit_within(&mut p, WITHIN, "reportpeek");
    heir_testkit::poll("the shadow read's alert", Duration::from_secs(20), || {
        heir_testkit::alert_lines(&alerts)
            .into_iter()
            .find(|a| a["comm"] == "reportpeek")
    });
    let out = dir.path().join("live.html");
    let (ok, _, err) = heir(
        dir.path(),
        &[
            "report",
            "--role",
            "hospital",
            "--data-dir",
            dir.path().to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(ok, "heir report on a running agent: {err}");
    let html = std::fs::read_to_string(&out).unwrap();
    assert!(
        html.contains("through its API"),
        "the cover names the source"
    );
    assert!(
        html.contains("credential_access"),
        "the live alert is counted"
    );
}
