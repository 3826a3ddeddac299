//! CSAF 2.0 advisories: CISA's 124 real ICS medical advisories (shared/data/icsma) import,
//! match the registry's devices at affected versions only, and show in `--explain` with their
//! advisory id and remediation; malformed advisories are refused whole with the field path.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use heir_rama::vuln::{Feed, RemediationCategory};
use heir_rama::{Imported, Knowledge, ManualClock, Rama, Registry, oui};
use serde_json::Value;

const ADVISORIES: usize = 124;

/// The real advisories. Missing data fails the test: it must never pass by finding nothing.
fn icsma() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/icsma");
    assert!(
        dir.join("README.md").is_file(),
        "real CSAF test data missing at {} (shared/data/icsma beside the repository)",
        dir.display()
    );
    dir
}

fn advisory_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(icsma())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert_eq!(files.len(), ADVISORIES, "shared/data/icsma changed");
    files
}

fn raw(name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(icsma().join(name)).unwrap()).unwrap()
}

/// The CVEs an advisory lists as known_affected for a product name: read straight from the
/// JSON, independently of the importer.
fn affected_cves(doc: &Value, product: &str) -> BTreeSet<String> {
    fn ids(b: &Value, product: &str, under: bool, out: &mut Vec<String>) {
        for x in b.as_array().into_iter().flatten() {
            let here = under || (x["category"] == "product_name" && x["name"] == product);
            if here && let Some(id) = x["product"]["product_id"].as_str() {
                out.push(id.to_owned());
            }
            ids(&x["branches"], product, here, out);
        }
    }
    let mut pids = Vec::new();
    ids(&doc["product_tree"]["branches"], product, false, &mut pids);
    assert!(!pids.is_empty(), "{product} is not in the advisory");
    doc["vulnerabilities"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| {
            v["product_status"]["known_affected"]
                .as_array()
                .is_some_and(|a| a.iter().any(|p| pids.iter().any(|q| p == q)))
        })
        .map(|v| v["cve"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn every_real_icsma_advisory_imports() {
    let mut k = Knowledge::default();
    let mut ok = 0;
    let mut vulns = 0;
    let mut refused = Vec::new();
    for f in advisory_files() {
        match k.import(&f) {
            Ok(Imported::Advisory {
                id,
                vulnerabilities,
                ..
            }) => {
                assert!(id.starts_with("ICSMA-"), "{}: {id}", f.display());
                ok += 1;
                vulns += vulnerabilities;
            }
            Ok(other) => panic!("{} imported as {other}", f.display()),
            Err(e) => {
                let msg = e.to_string();
                assert!(
                    msg.contains(&f.display().to_string()) && msg.contains('`'),
                    "refusal names neither the file nor the field: {msg}"
                );
                refused.push(msg);
            }
        }
    }
    println!("imported {ok} of {ADVISORIES} ICSMA advisories ({vulns} vulnerabilities)");
    assert!(refused.is_empty(), "refused: {refused:#?}");
    assert_eq!(ok, ADVISORIES);
    assert_eq!(vulns, 382, "every vulnerability of every advisory");
    assert_eq!(k.vulnerability_count(), 382);

    let v = k
        .vulnerability("ICSMA-20-049-01/CVE-2019-0708")
        .expect("keyed by advisory and CVE");
    assert_eq!(v.feed, Feed::Csaf);
    assert_eq!(v.canonical_id(), "CVE-2019-0708");
    assert_eq!(v.advisory.as_deref(), Some("ICSMA-20-049-01"));
    assert!(v.cwe.as_deref().is_some_and(|c| c.starts_with("CWE-")));
    assert!(v.preferred_vector().is_some());
    assert!(
        v.affected
            .iter()
            .flat_map(|a| &a.remediations)
            .any(|r| r.category == RemediationCategory::VendorFix)
    );
}

#[test]
fn a_directory_imports_whole_and_skips_what_is_not_a_document() {
    let mut k = Knowledge::default();
    // The directory holds a README.md beside the advisories: not a knowledge file.
    let done = k.import(&icsma()).unwrap_or_else(|e| panic!("{e}"));
    let Imported::Batch(items) = &done else {
        panic!("a directory imports as a batch, got {done}");
    };
    assert_eq!(items.len(), ADVISORIES);
    assert_eq!(k.vulnerability_count(), 382);
    assert!(
        done.to_string() == "124 files: 124 advisories (382 vulnerabilities)",
        "{done}"
    );
}

fn fleet() -> Rama<ManualClock> {
    let mut r = Rama::new(ManualClock::new(common::now()), oui::Table::curated());
    r.load_registry(&Registry::load(&common::fixture("icsma-devices.toml")).unwrap());
    r.import(&icsma()).unwrap_or_else(|e| panic!("{e}"));
    r
}

fn cves(r: &Rama<ManualClock>, device: &str) -> BTreeSet<String> {
    r.explain(device)
        .unwrap_or_else(|| panic!("{device} not in the fleet"))
        .matches
        .iter()
        .map(|m| m.id.clone())
        .collect()
}

#[test]
fn affected_versions_match_and_fixed_versions_do_not() {
    let r = fleet();
    for (device, file, product) in [
        ("vent-affected", "icsma-21-047-01.json", "T1 Ventilator"),
        ("pyxis-affected", "icsma-19-248-01.json", "Pyxis ES"),
        ("prismax-affected", "icsma-20-170-02.json", "PrisMax"),
        (
            "xtr-affected",
            "icsma-20-049-01.json",
            "Xhibit Telemetry Receiver (XTR) Model number 96280",
        ),
    ] {
        let want = affected_cves(&raw(file), product);
        assert!(!want.is_empty());
        assert_eq!(cves(&r, device), want, "{device}");
        let rep = r.explain(device).unwrap();
        let id = file.trim_end_matches(".json").to_ascii_uppercase();
        assert!(
            rep.matches.iter().all(|m| m.advisories == [id.clone()]),
            "{device}: {:?}",
            rep.matches
        );
        assert!(r.score(device).unwrap().factors.vulnerability > 0.0);
    }
    for device in [
        "vent-fixed",
        "pyxis-fixed",
        "pyxis-older",
        "prismax-fixed",
        "xtr-fixed",
    ] {
        assert!(
            cves(&r, device).is_empty(),
            "{device}: {:?}",
            cves(&r, device)
        );
        assert_eq!(r.score(device).unwrap().factors.vulnerability, 0.0);
    }
    // "< 1.5.3": the range's end is the fix to update to.
    let pyxis = r.explain("pyxis-affected").unwrap();
    assert_eq!(pyxis.matches[0].fixed_in.as_deref(), Some("1.5.3"));
}

#[test]
fn explain_names_the_advisory_and_proposes_its_remediation() {
    let r = fleet();
    let rep = r.explain("vent-affected").unwrap();
    let text = heir_rama::text::report(&rep);
    println!("{text}");
    assert!(text.contains("[ICSMA-21-047-01]"), "{text}");
    let doc = raw("icsma-21-047-01.json");
    let fix = doc["vulnerabilities"][0]["remediations"][0]["details"]
        .as_str()
        .unwrap();
    let words: Vec<&str> = fix.split_whitespace().take(8).collect();
    let start = words.join(" ");
    let action = rep
        .explanation
        .actions
        .iter()
        .find(|a| a.action.contains("ICSMA-21-047-01 vendor fix"))
        .unwrap_or_else(|| panic!("no remediation action: {:#?}", rep.explanation.actions));
    assert!(action.action.contains(&start), "{}", action.action);
    assert!(action.lowers_by > 0.0);
    assert!(text.contains(&start), "{text}");
    let m = &rep.matches[0];
    assert_eq!(
        m.preferred_remediation().unwrap().category,
        RemediationCategory::VendorFix
    );
}

#[test]
fn fixed_and_not_affected_products_exclude_their_versions() {
    // A real advisory, with the fixed release added as CSAF says it: a product under `fixed`
    // and one under `known_not_affected` beside an affected range.
    let mut doc = raw("icsma-20-170-02.json");
    let branches = doc["product_tree"]["branches"][0]["branches"]
        .as_array_mut()
        .unwrap();
    let prismax = branches
        .iter_mut()
        .find(|b| b["name"] == "PrisMax")
        .unwrap();
    let versions = prismax["branches"].as_array_mut().unwrap();
    versions[0]["name"] = "vers:generic/<3.2".into();
    versions.push(serde_json::json!({
        "category": "product_version", "name": "3.0",
        "product": { "name": "PrisMax 3.0", "product_id": "FIXED-3.0" }
    }));
    versions.push(serde_json::json!({
        "category": "product_version", "name": "2.5",
        "product": { "name": "PrisMax 2.5", "product_id": "NA-2.5" }
    }));
    for v in doc["vulnerabilities"].as_array_mut().unwrap() {
        v["product_status"]["fixed"] = serde_json::json!(["FIXED-3.0"]);
        v["product_status"]["known_not_affected"] = serde_json::json!(["NA-2.5"]);
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("icsma-20-170-02.json");
    std::fs::write(&file, serde_json::to_vec(&doc).unwrap()).unwrap();
    let mut r = Rama::new(ManualClock::new(common::now()), oui::Table::curated());
    r.load_registry(&Registry::load(&common::fixture("icsma-devices.toml")).unwrap());
    r.import(&file).unwrap_or_else(|e| panic!("{e}"));
    // prismax-affected is at 2.9 (in range), prismax-fixed at 3.0 (fixed though < 3.2).
    assert!(!cves(&r, "prismax-affected").is_empty());
    assert!(cves(&r, "prismax-fixed").is_empty());
    let m = &r.explain("prismax-affected").unwrap().matches[0];
    assert_eq!(
        m.fixed_in.as_deref(),
        Some("3.0"),
        "fixed release above 2.9"
    );
}

/// Imports `text` as an advisory into a knowledge base holding the fixtures and one real
/// advisory; checks the refusal changed nothing and named the file, and returns it.
fn refuse(text: &str) -> String {
    let mut k = Knowledge::default();
    for f in common::KNOWLEDGE {
        k.import(&common::fixture(f)).unwrap();
    }
    k.import(&icsma().join("icsma-21-047-01.json")).unwrap();
    let before = serde_json::to_string(&k).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("advisory.json");
    std::fs::write(&path, text).unwrap();
    let msg = k.import(&path).expect_err("must be refused").to_string();
    assert_eq!(
        serde_json::to_string(&k).unwrap(),
        before,
        "refusal changed state"
    );
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    msg
}

#[test]
fn malformed_advisories_are_refused_with_the_field_path() {
    let good = std::fs::read_to_string(icsma().join("icsma-19-248-01.json")).unwrap();
    // Truncated.
    let e = refuse(&good[..good.len() / 2]);
    assert!(e.contains("line"), "{e}");
    // Wrong type deep in the tree.
    let mut doc: Value = serde_json::from_str(&good).unwrap();
    doc["product_tree"]["branches"][0]["branches"][1]["branches"][0]["name"] = 7.into();
    let e = refuse(&doc.to_string());
    assert!(
        e.contains("`product_tree.branches[0].branches[1].branches[0].name`"),
        "{e}"
    );
    let mut doc: Value = serde_json::from_str(&good).unwrap();
    doc["vulnerabilities"][0]["scores"][0]["cvss_v3"]["vectorString"] = "CVSS:3.1/AV:Q".into();
    let e = refuse(&doc.to_string());
    assert!(
        e.contains("`vulnerabilities[0].scores[0].cvss_v3.vectorString`"),
        "{e}"
    );
    let mut doc: Value = serde_json::from_str(&good).unwrap();
    doc["vulnerabilities"][0]["product_status"]["known_affected"][1] = "CSAFPID-9999".into();
    let e = refuse(&doc.to_string());
    assert!(
        e.contains("`vulnerabilities[0].product_status.known_affected[1]`")
            && e.contains("CSAFPID-9999"),
        "{e}"
    );
    let mut doc: Value = serde_json::from_str(&good).unwrap();
    doc["vulnerabilities"][0]["remediations"][0]["category"] = "pray".into();
    let e = refuse(&doc.to_string());
    assert!(
        e.contains("`vulnerabilities[0].remediations[0].category`"),
        "{e}"
    );
    let mut doc: Value = serde_json::from_str(&good).unwrap();
    doc["product_tree"]["branches"][0]["branches"][0]["branches"][0]["name"] =
        "vers:generic/!=1.4".into();
    let e = refuse(&doc.to_string());
    assert!(
        e.contains("`product_tree.branches[0].branches[0].branches[0].name`"),
        "{e}"
    );
    let mut doc: Value = serde_json::from_str(&good).unwrap();
    doc["document"]["csaf_version"] = "2.1".into();
    let e = refuse(&doc.to_string());
    assert!(e.contains("`document.csaf_version`"), "{e}");
    let mut doc: Value = serde_json::from_str(&good).unwrap();
    doc["vulnerabilities"][0]["cve"] = "2019-13517".into();
    let e = refuse(&doc.to_string());
    assert!(e.contains("`vulnerabilities[0].cve`"), "{e}");
}

#[test]
fn one_bad_file_refuses_the_whole_directory() {
    let dir = tempfile::tempdir().unwrap();
    for f in ["icsma-21-047-01.json", "icsma-19-248-01.json"] {
        std::fs::copy(icsma().join(f), dir.path().join(f)).unwrap();
    }
    std::fs::write(dir.path().join("notes.txt"), "not a document").unwrap();
    let sub = dir.path().join("2020");
    std::fs::create_dir(&sub).unwrap();
    let bad = sub.join("icsma-20-170-02.json");
    let text = std::fs::read_to_string(icsma().join("icsma-20-170-02.json")).unwrap();
    std::fs::write(
        &bad,
        text.replace("\"known_affected\"", "\"known_affected\": 1, \"x\""),
    )
    .unwrap();

    let mut k = Knowledge::default();
    let e = k
        .import(dir.path())
        .expect_err("a bad file refuses the directory");
    assert!(e.to_string().contains(&bad.display().to_string()), "{e}");
    assert_eq!(
        k.vulnerability_count(),
        0,
        "files before the bad one were kept"
    );

    std::fs::write(&bad, text).unwrap();
    let done = k.import(dir.path()).unwrap();
    assert!(
        done.to_string().starts_with("3 files: 3 advisories"),
        "{done}"
    );
    let empty = tempfile::tempdir().unwrap();
    assert!(
        k.import(empty.path())
            .unwrap_err()
            .to_string()
            .contains("no .json")
    );
}

#[test]
fn reimporting_a_revised_advisory_replaces_it_and_state_round_trips() {
    let mut k = Knowledge::default();
    let file = icsma().join("icsma-21-047-01.json");
    k.import(&file).unwrap();
    assert_eq!(k.vulnerability_count(), 3);
    // The revision drops two CVEs: they go.
    let mut doc = raw("icsma-21-047-01.json");
    doc["vulnerabilities"].as_array_mut().unwrap().truncate(1);
    let dir = tempfile::tempdir().unwrap();
    let rev = dir.path().join("rev.json");
    std::fs::write(&rev, doc.to_string()).unwrap();
    k.import(&rev).unwrap();
    assert_eq!(k.vulnerability_count(), 1);

    // Stored state survives a round trip, and state stored before CSAF existed still loads.
    k.import(&icsma()).unwrap();
    let stored = serde_json::to_string(&k).unwrap();
    let back: Knowledge = serde_json::from_str(&stored).unwrap();
    assert_eq!(serde_json::to_string(&back).unwrap(), stored);
    let old = r#"{"sboms":{},"forms":{},"kev":{},"vulns":{"CVE-2099-1":{"id":"CVE-2099-1",
        "affected":[{"target":{"kind":"cpe","vendor":"acme","product":"x"},"versions":["1.0"]}],
        "feed":"nvd"}}}"#;
    let old: Knowledge = serde_json::from_str(old).unwrap();
    assert_eq!(old.vulnerability("CVE-2099-1").unwrap().advisory, None);
}

/// A fleet of `registry` (TOML) with only the advisory `files` and `extra` feed files imported.
fn fleet_of(registry: &str, files: &[&str], extra: &[(&str, String)]) -> Rama<ManualClock> {
    let mut r = Rama::new(ManualClock::new(common::now()), oui::Table::curated());
    r.load_registry(&Registry::parse(registry, Path::new("devices.toml")).unwrap());
    for f in files {
        r.import(&icsma().join(f)).unwrap_or_else(|e| panic!("{e}"));
    }
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in extra {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        r.import(&p).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    r
}

const VENT: &str = r#"
[device.vent]
name = "Ventilator, ICU bed 1"
class = "ventilator"
manufacturer = "Hamilton Medical AG"
model = "T1 Ventilator"
firmware = "2.2.3"
ip = "10.60.0.11"
"#;

#[test]
fn a_cve_from_an_advisory_and_from_osv_and_nvd_counts_once_and_keeps_every_source() {
    let doc = raw("icsma-21-047-01.json");
    let cve = doc["vulnerabilities"][0]["cve"]
        .as_str()
        .unwrap()
        .to_owned();
    let vector = doc["vulnerabilities"][0]["scores"][0]["cvss_v3"]["vectorString"]
        .as_str()
        .unwrap()
        .to_owned();
    // The same CVE for the same product, as an OSV record under its own id and as an NVD
    // record under the CVE id, with the advisory's vector so the score can be compared.
    let osv = serde_json::json!([{
        "schema_version": "1.6.0", "id": "HEIR-TEST-9001", "aliases": [cve],
        "modified": "2026-01-01T00:00:00Z",
        "severity": [{ "type": "CVSS_V3", "score": vector }],
        "affected": [{ "package": { "ecosystem": "Generic", "name": "T1 Ventilator" },
            "ranges": [{ "type": "ECOSYSTEM",
                "events": [{ "introduced": "0" }, { "fixed": "2.2.4" }] }] }]
    }])
    .to_string();
    let nvd = serde_json::json!({
        "format": "NVD_CVE", "version": "2.0",
        "vulnerabilities": [{ "cve": {
            "id": cve, "published": "2021-02-16T00:00:00.000",
            "lastModified": "2021-02-16T00:00:00.000",
            "descriptions": [{ "lang": "en", "value": "T1 ventilator" }],
            "metrics": { "cvssMetricV31": [{ "source": "nvd@nist.gov", "type": "Primary",
                "cvssData": { "version": "3.1", "vectorString": vector } }] },
            "configurations": [{ "nodes": [{ "operator": "OR", "negate": false, "cpeMatch": [{
                "vulnerable": true,
                "criteria": "cpe:2.3:o:hamiltonmedical:t1_ventilator_firmware:*:*:*:*:*:*:*:*",
                "versionEndIncluding": "2.2.3",
                "matchCriteriaId": "00000000-0000-0000-0000-000000000009" }] }] }]
        } }]
    })
    .to_string();
    let alone = fleet_of(VENT, &["icsma-21-047-01.json"], &[]);
    let both = fleet_of(
        VENT,
        &["icsma-21-047-01.json"],
        &[("osv.json", osv), ("nvd.json", nvd)],
    );
    let rep = both.explain("vent").unwrap();
    let listed: Vec<&str> = rep.matches.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(
        listed.iter().filter(|id| **id == cve).count(),
        1,
        "{listed:?}"
    );
    assert_eq!(listed.len(), alone.explain("vent").unwrap().matches.len());
    let m = rep.matches.iter().find(|m| m.id == cve).unwrap();
    let sources: Vec<(Feed, &str)> = m.sources.iter().map(|s| (s.feed, s.id.as_str())).collect();
    for want in [
        (Feed::Csaf, "ICSMA-21-047-01"),
        (Feed::Osv, "HEIR-TEST-9001"),
        (Feed::Nvd, cve.as_str()),
    ] {
        assert!(sources.contains(&want), "{want:?} not in {sources:?}");
    }
    assert_eq!(sources.len(), 3, "{sources:?}");
    assert_eq!(m.advisories, ["ICSMA-21-047-01"]);
    // Counted once: the vulnerability factor is the advisory's alone.
    assert_eq!(
        both.score("vent").unwrap().factors.vulnerability,
        alone.score("vent").unwrap().factors.vulnerability
    );
    let e = &rep.explanation;
    assert_eq!(
        e.vulnerabilities
            .iter()
            .filter(|(v, _)| v.id == cve)
            .count(),
        1
    );
    let patches: Vec<&str> = e
        .actions
        .iter()
        .map(|a| a.action.as_str())
        .filter(|a| a.contains(&cve))
        .collect();
    assert_eq!(patches.len(), 1, "{patches:#?}");
    let text = heir_rama::text::report(&rep);
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.trim_start().starts_with("vulnerability") && l.contains(&cve))
        .collect();
    assert_eq!(lines.len(), 1, "{text}");
    assert!(
        lines[0].contains("ICSMA-21-047-01")
            && lines[0].contains("OSV HEIR-TEST-9001")
            && lines[0].contains("NVD"),
        "{}",
        lines[0]
    );
}

#[test]
fn the_vendor_fix_is_proposed_over_mitigations_listed_before_it() {
    // ICSMA-20-254-01 lists a mitigation first, then the vendor fixes, then nine mitigations;
    // ICSMA-20-296-02's vendor fix for SpaceCom carries a URL.
    let reg = r#"
[device.picix]
name = "Central station, cardiology"
class = "patient_monitor"
manufacturer = "Philips"
model = "Patient Information Center iX (PICiX)"
firmware = "C.02"
ip = "10.60.0.21"

[device.spacecom]
name = "Infusion rack, ICU"
class = "infusion_pump"
manufacturer = "B. Braun Medical"
model = "SpaceCom"
firmware = "U61"
ip = "10.60.0.22"
"#;
    let doc = raw("icsma-20-254-01.json");
    let rems = doc["vulnerabilities"][0]["remediations"]
        .as_array()
        .unwrap();
    assert_eq!(rems[0]["category"], "mitigation", "the data changed");
    let r = fleet_of(reg, &["icsma-20-254-01.json", "icsma-20-296-02.json"], &[]);

    let rep = r.explain("picix").unwrap();
    assert_eq!(
        rep.matches.len(),
        affected_cves(&doc, "Patient Information Center iX (PICiX)").len()
    );
    for m in &rep.matches {
        let p = m.preferred_remediation().unwrap();
        assert_eq!(p.category, RemediationCategory::VendorFix, "{}", m.id);
        assert_eq!(
            p.details,
            "Patient Information Center iX (PICiX) Version C.03"
        );
        // The others stay in the details.
        assert!(
            m.remediations
                .iter()
                .filter(|x| x.category == RemediationCategory::Mitigation)
                .count()
                >= 9,
            "{:#?}",
            m.remediations
        );
        let actions: Vec<&str> = rep
            .explanation
            .actions
            .iter()
            .map(|a| a.action.as_str())
            .filter(|a| a.contains(&m.id))
            .collect();
        assert_eq!(
            actions.len(),
            1,
            "one action per vulnerability: {actions:#?}"
        );
        assert!(
            actions[0].contains(
                "ICSMA-20-254-01 vendor fix: Patient Information Center iX (PICiX) Version C.03"
            ) && !actions[0].contains("mitigation"),
            "{}",
            actions[0]
        );
    }
    let text = heir_rama::text::report(&rep);
    assert!(text.contains("more remediations"), "{text}");

    let rep = r.explain("spacecom").unwrap();
    assert!(!rep.matches.is_empty());
    let doc = raw("icsma-20-296-02.json");
    let url = doc["vulnerabilities"][0]["remediations"][0]["url"]
        .as_str()
        .unwrap();
    let m = &rep.matches[0];
    assert_eq!(m.preferred_remediation().unwrap().url.as_deref(), Some(url));
    let action = rep
        .explanation
        .actions
        .iter()
        .find(|a| a.action.contains(&m.id))
        .unwrap();
    assert!(
        action.action.contains("ICSMA-20-296-02 vendor fix") && action.action.contains(url),
        "{}",
        action.action
    );
}
