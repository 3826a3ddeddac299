//! Malformed knowledge files are refused with the file and field, and import nothing.

mod common;

use std::path::Path;

use heir_rama::Knowledge;
use heir_rama::import::Error;
use proptest::prelude::*;

/// Imports `text` as `name` into a knowledge base already holding the fixture knowledge, and
/// checks the refusal left it exactly as it was.
fn refuse(name: &str, text: &str) -> String {
    let mut k = Knowledge::default();
    for f in common::KNOWLEDGE {
        k.import(&common::fixture(f)).unwrap();
    }
    let before = serde_json::to_string(&k).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    let err = k.import(&path).expect_err("malformed file must be refused");
    assert_eq!(
        serde_json::to_string(&k).unwrap(),
        before,
        "a refused import changed the knowledge base"
    );
    let msg = err.to_string();
    assert!(
        msg.contains(&path.display().to_string()),
        "error does not name the file: {msg}"
    );
    msg
}

fn fixture_text(name: &str) -> String {
    std::fs::read_to_string(common::fixture(name)).unwrap()
}

#[test]
fn sbom_errors_name_the_field() {
    let good = fixture_text("infusia-300.cdx.json");
    let e = refuse("a.cdx.json", &good.replace("\"name\": \"busybox\", ", ""));
    assert!(e.contains("components[1]") && e.contains("name"), "{e}");
    let e = refuse(
        "b.cdx.json",
        &good.replace("pkg:generic/busybox@1.30.1", "busybox-1.30.1"),
    );
    assert!(e.contains("`components[1].purl`"), "{e}");
    let e = refuse(
        "c.cdx.json",
        &good.replace(
            "\"type\": \"library\", \"name\": \"zlib\"",
            "\"type\": \"gizmo\", \"name\": \"zlib\"",
        ),
    );
    assert!(e.contains("`components[2].components[0].type`"), "{e}");
    let e = refuse(
        "d.cdx.json",
        &good.replace("\"specVersion\": \"1.5\"", "\"specVersion\": \"0.9\""),
    );
    assert!(e.contains("`specVersion`"), "{e}");
    let e = refuse("e.cdx.json", &good.replace("\"component\": { \"type\": \"device\", \"name\": \"Infusia 300\", \"version\": \"2.1.4\" }", "\"authors\": []"));
    assert!(e.contains("`metadata.component`"), "{e}");
    let e = refuse(
        "f.cdx.json",
        &good.replace("\"version\": \"1.30.1\"", "\"version\": 1.30"),
    );
    assert!(
        e.contains("components[1].version") && e.contains("line"),
        "{e}"
    );
}

#[test]
fn mds2_errors_name_the_question_and_line() {
    let good = fixture_text("infusia-300.mds2.csv");
    let e = refuse(
        "a.csv",
        &good.replace(
            "Can the device encrypt data at rest?,No",
            "Can the device encrypt data at rest?,Maybe",
        ),
    );
    assert!(
        e.contains("`STCF-1, Answer`") && e.contains("line 8") && e.contains("Maybe"),
        "{e}"
    );
    let e = refuse(
        "b.csv",
        &good.replace("DOC-3,Device Model,Infusia 300,", "DOC-3,Device Model,,"),
    );
    assert!(e.contains("`DOC-3`"), "{e}");
    let e = refuse("c.csv", &good.replace("AUDT-1,", "PAUT-1,"));
    assert!(e.contains("PAUT-1") && e.contains("twice"), "{e}");
    let e = refuse("d.csv", &good.replace("MLDP-2,", "malware,"));
    assert!(e.contains("Question ID") && e.contains("malware"), "{e}");
}

#[test]
fn osv_errors_name_the_record_and_nothing_of_the_file_is_kept() {
    let good = fixture_text("osv.json");
    // Record 1 is broken; records 0 and 2 are fine but must not be imported either.
    let bad = good.replace(
        "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H",
        "CVSS:3.1/AV:Q/AC:L",
    );
    let fresh = bad
        .replace("HEIR-TEST-000", "HEIR-NEW-000")
        .replace("CVE-2099-", "CVE-2098-");
    let e = refuse("a.json", &fresh);
    assert!(e.contains("`[1].severity[0].score`"), "{e}");
    let mut k = Knowledge::default();
    let p = std::env::temp_dir().join(format!("heir-rama-osv-{}.json", std::process::id()));
    std::fs::write(&p, &fresh).unwrap();
    assert!(k.import(&p).is_err());
    std::fs::remove_file(&p).unwrap();
    assert!(
        k.vulnerability("HEIR-NEW-0001").is_none(),
        "record 0 of a refused file was kept"
    );
    assert_eq!(k.vulnerability_count(), 0);

    let e = refuse(
        "b.json",
        &good.replace(
            "{ \"fixed\": \"1.33.0\" }",
            "{ \"fixed\": \"1.33.0\", \"extra\": 1 }",
        ),
    );
    assert!(e.contains("[0].affected[0].ranges[0].events[1]"), "{e}");
    let e = refuse(
        "c.json",
        &good.replace(
            "\"type\": \"ECOSYSTEM\", \"events\": [ { \"introduced\": \"3.0.0\" }",
            "\"type\": \"RANGE\", \"events\": [ { \"introduced\": \"3.0.0\" }",
        ),
    );
    assert!(e.contains("`[1].affected[0].ranges[0].type`"), "{e}");
    let e = refuse(
        "d.json",
        &good.replace(
            "{ \"introduced\": \"0\" }, { \"fixed\": \"1.33.0\" }",
            "{ \"fixed\": \"1.33.0\" }",
        ),
    );
    assert!(e.contains("[0].affected[0].ranges[0].events[0]"), "{e}");
}

#[test]
fn nvd_errors_name_the_json_path() {
    let good = fixture_text("nvd.json");
    let e = refuse(
        "a.json",
        &good.replace(
            "cpe:2.3:o:acme:infusia_300_firmware:*:*:*:*:*:*:*:*",
            "acme infusia",
        ),
    );
    assert!(
        e.contains("`vulnerabilities[0].cve.configurations[0].nodes[0].cpeMatch[0].criteria`"),
        "{e}"
    );
    let e = refuse("b.json", &good.replace("VI:H/VA:H/SC:N", "VI:H/VA:H/SC:Z"));
    assert!(
        e.contains("`vulnerabilities[0].cve.metrics.cvssMetricV40[0].cvssData.vectorString`"),
        "{e}"
    );
    let e = refuse(
        "c.json",
        &good.replace("\"id\": \"CVE-2099-1002\"", "\"id\": 1002"),
    );
    assert!(e.contains("vulnerabilities[0].cve.id"), "{e}");
    let e = refuse(
        "d.json",
        &good.replace(
            "\"version\": \"2.0\",\n  \"timestamp\"",
            "\"version\": \"1.1\",\n  \"timestamp\"",
        ),
    );
    assert!(e.contains("`version`"), "{e}");
}

#[test]
fn kev_errors_name_the_column_and_line_and_keep_nothing() {
    let good = fixture_text("kev.csv");
    let extra = "CVE-2098-0001,Example,Thing,Thing bug,2026-01-02,Bad.,Patch.,2026-01-23,Unknown,,\n\
                 CVE-2098-0002,Example,Thing,Thing bug,02/01/2026,Bad.,Patch.,2026-01-23,Unknown,,\n";
    let e = refuse("a.csv", &format!("{good}{extra}"));
    assert!(e.contains("`dateAdded`") && e.contains("line 4"), "{e}");
    let mut k = Knowledge::default();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("kev.csv");
    std::fs::write(&p, format!("{good}{extra}")).unwrap();
    assert!(k.import(&p).is_err());
    assert!(k.kev("CVE-2098-0001").is_none() && k.kev("CVE-2099-1002").is_none());
    let e = refuse(
        "b.csv",
        &good.replace("knownRansomwareCampaignUse", "ransomware"),
    );
    assert!(e.contains("knownRansomwareCampaignUse"), "{e}");
    let e = refuse(
        "c.csv",
        &good.replace("CVE-2099-1002,Acme", "2099-1002,Acme"),
    );
    assert!(e.contains("`cveID`") && e.contains("line 2"), "{e}");
}

#[test]
fn unrecognised_files_are_refused() {
    let e = refuse("x.json", "{\"hello\": 1}");
    assert!(e.contains("not a recognised"), "{e}");
    let e = refuse("x.csv", "a,b,c\n1,2,3\n");
    assert!(e.contains("not a recognised"), "{e}");
    let e = refuse("x.json", "{\"bomFormat\": ");
    assert!(e.contains("line 1"), "{e}");
    let mut k = Knowledge::default();
    assert!(matches!(
        k.import(Path::new("/nonexistent/heir-rama.json")),
        Err(Error::Io { .. })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    /// Any corruption of a valid file is either still valid or refused; never a panic, never
    /// a partial import.
    #[test]
    fn corrupted_files_never_panic_or_half_import(
        which in 0usize..common::KNOWLEDGE.len(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let name = common::KNOWLEDGE[which];
        let mut bytes = std::fs::read(common::fixture(name)).unwrap();
        for (at, b) in edits {
            let i = at.index(bytes.len());
            bytes[i] = b;
        }
        let mut k = Knowledge::default();
        let before = serde_json::to_string(&k).unwrap();
        match k.import_bytes(Path::new(name), &bytes) {
            Ok(_) => {}
            Err(e) => {
                prop_assert!(e.to_string().contains(name), "{}", e);
                prop_assert_eq!(serde_json::to_string(&k).unwrap(), before);
            }
        }
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        let mut k = Knowledge::default();
        let _ = k.import_bytes(Path::new("any"), text.as_bytes());
    }
}
