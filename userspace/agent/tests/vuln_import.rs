//! `heir vuln import DIR` through the binary on CISA's 124 real ICS medical advisories
//! (shared/data/icsma): the import says what it added, `heir rama` names the advisory and its
//! remediation for the affected device only, and a directory holding one malformed advisory is
//! refused naming the file and the JSON path, leaving the knowledge imported before unchanged.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const HEIR: &str = env!("CARGO_BIN_EXE_heir");
const WITHIN: Duration = Duration::from_secs(120);

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The real advisories. Missing data fails the test: it must never pass by finding nothing.
fn icsma() -> PathBuf {
    let dir = root().join("../shared/data/icsma");
    assert!(
        dir.join("README.md").is_file(),
        "real CSAF data missing at {}",
        dir.display()
    );
    dir
}

/// Runs heir on the data directory `dir` (with its registry `devices.toml`); returns whether
/// it succeeded, its stdout and its stderr.
fn heir(dir: &Path, args: &[&str]) -> (bool, String, String) {
    heir_testkit::run_within(
        Command::new(HEIR).args(args).arg("--data-dir").arg(dir),
        dir,
        WITHIN,
    )
}

fn json(dir: &Path, args: &[&str]) -> serde_json::Value {
    let (ok, out, err) = heir(dir, args);
    assert!(ok, "heir {}: {err}", args.join(" "));
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("heir {}: {e}: {out}", args.join(" ")))
}

fn raw(name: &str) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(icsma().join(name)).unwrap()).unwrap()
}

#[test]
fn a_directory_of_real_advisories_imports_and_shows_in_rama() {
    let data = tempfile::tempdir().unwrap();
    let d = data.path();
    std::fs::copy(
        root().join("userspace/rama/tests/fixtures/icsma-devices.toml"),
        d.join("devices.toml"),
    )
    .unwrap();
    let dir = icsma();
    let (ok, out, err) = heir(d, &["vuln", "import", dir.to_str().unwrap()]);
    assert!(ok, "heir vuln import: {err}");
    assert!(
        out.contains("124 files: 124 advisories (382 vulnerabilities)"),
        "{out}"
    );

    // The affected ventilator: every CVE of ICSMA-21-047-01, each from that advisory, each
    // with the advisory's vendor fix as its one action.
    let doc = raw("icsma-21-047-01.json");
    let want: BTreeSet<String> = doc["vulnerabilities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["cve"].as_str().unwrap().to_owned())
        .collect();
    let rep = json(d, &["rama", "--json", "--device", "vent-affected"]);
    let matches = rep["matches"].as_array().unwrap();
    let got: BTreeSet<String> = matches
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(got, want, "{rep:#}");
    for m in matches {
        assert_eq!(
            m["advisories"],
            serde_json::json!(["ICSMA-21-047-01"]),
            "{m:#}"
        );
    }
    let fix = doc["vulnerabilities"][0]["remediations"][0]["details"]
        .as_str()
        .unwrap();
    let start: Vec<&str> = fix.split_whitespace().take(8).collect();
    let start = start.join(" ");
    let actions: Vec<&str> = rep["explanation"]["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    for cve in &want {
        let a: Vec<&&str> = actions
            .iter()
            .filter(|a| a.contains(cve.as_str()))
            .collect();
        assert_eq!(a.len(), 1, "{cve}: {actions:#?}");
        assert!(
            a[0].contains("ICSMA-21-047-01 vendor fix") && a[0].contains(&start),
            "{}",
            a[0]
        );
    }
    assert!(rep["explanation"]["score"]["factors"]["vulnerability"].as_f64() > Some(0.0));
    let (ok, text, err) = heir(d, &["rama", "--device", "vent-affected"]);
    assert!(ok, "{err}");
    assert!(
        text.contains("[ICSMA-21-047-01]") && text.contains(&start),
        "{text}"
    );

    // The fixed one: nothing.
    let rep = json(d, &["rama", "--json", "--device", "vent-fixed"]);
    assert!(
        rep["matches"].as_array().is_none_or(Vec::is_empty),
        "{rep:#}"
    );
    assert!(!rep.to_string().contains("ICSMA"), "{rep:#}");
    let (ok, text, _) = heir(d, &["rama", "--device", "vent-fixed"]);
    assert!(ok && !text.contains("ICSMA"), "{text}");

    // `--explain` over the fleet names the advisory for the affected device.
    let (ok, text, err) = heir(d, &["rama", "--explain"]);
    assert!(ok, "{err}");
    let vent = text
        .split("\n\n")
        .find(|s| s.starts_with("vent-affected"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(vent.contains("[ICSMA-21-047-01]"), "{vent}");
    let fixed = text
        .split("\n\n")
        .find(|s| s.starts_with("vent-fixed"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(!fixed.contains("ICSMA"), "{fixed}");

    // One malformed advisory refuses its directory; what was imported before stays.
    let state = d.join("rama.json");
    let before_state = std::fs::read(&state).unwrap();
    let before = json(d, &["rama", "--json"]);
    let bad_dir = tempfile::tempdir().unwrap();
    for f in ["icsma-20-170-02.json", "icsma-21-047-01.json"] {
        std::fs::copy(dir.join(f), bad_dir.path().join(f)).unwrap();
    }
    let mut doc = raw("icsma-19-248-01.json");
    doc["product_tree"]["branches"][0]["branches"][1]["branches"][0]["name"] = 7.into();
    let bad = bad_dir.path().join("icsma-19-248-01.json");
    std::fs::write(&bad, doc.to_string()).unwrap();
    let (ok, out, err) = heir(d, &["vuln", "import", bad_dir.path().to_str().unwrap()]);
    assert!(!ok, "a malformed advisory was accepted: {out}");
    assert!(err.contains(&bad.display().to_string()), "{err}");
    assert!(
        err.contains("`product_tree.branches[0].branches[1].branches[0].name`"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&state).unwrap(),
        before_state,
        "the refusal rewrote the state"
    );
    assert_eq!(json(d, &["rama", "--json"]), before);
    let rep = json(d, &["rama", "--json", "--device", "vent-affected"]);
    assert_eq!(rep["matches"].as_array().unwrap().len(), want.len());
}
