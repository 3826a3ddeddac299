//! Rules engine tests: positions of errors, the shipped rules' own cases, hot reload.

use std::path::{Path, PathBuf};

use heir_model::{Event, EventKind, Process, Timestamp};

use super::*;

const GOOD: &str = r#"
- id: test.telnet_fail
  title: Telnet failures
  category: brute_force
  severity: high
  owasp_iot: I1
  enisa: "brute force"
  attack: T1110.001
  kind: protocol
  when: 'protocol == "telnet" && outcome == "failure"'
  threshold: {count: 3, window: 60s, group_by: [src_ip]}
  tests:
    fire:
      - - {kind: protocol, src: 10.0.0.9, dst: 10.0.0.1, dst_port: 23, observation: {protocol: telnet, outcome: failure}}
        - {kind: protocol, src: 10.0.0.9, dst: 10.0.0.1, dst_port: 23, observation: {protocol: telnet, outcome: failure}}
        - {kind: protocol, src: 10.0.0.9, dst: 10.0.0.1, dst_port: 23, observation: {protocol: telnet, outcome: failure}}
    quiet:
      - {kind: protocol, src: 10.0.0.9, dst: 10.0.0.1, dst_port: 23, observation: {protocol: telnet, outcome: success}}
"#;

fn repo_rules() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rules")
}

fn diags(text: &str) -> Vec<Diagnostic> {
    match parse_str(Path::new("r.yaml"), text) {
        Err(Error::Invalid(d)) => d,
        Err(e) => panic!("unexpected {e}"),
        Ok(_) => panic!("accepted:\n{text}"),
    }
}

#[test]
fn every_shipped_rule_passes_its_own_cases() {
    let set = check(&Sources::dir(repo_rules())).unwrap_or_else(|e| panic!("{e}"));
    assert!(set.len() >= 12, "{} rules", set.len());
    let results = test_set(&set);
    let failed: Vec<String> = results
        .iter()
        .filter(|r| !r.passed())
        .map(ToString::to_string)
        .collect();
    assert!(failed.is_empty(), "{}", failed.join("\n"));
    for r in &set.rules {
        assert!(
            r.cases.iter().any(|c| c.expect_fire) && r.cases.iter().any(|c| !c.expect_fire),
            "{}",
            r.id
        );
    }
}

#[test]
fn condition_errors_point_at_line_and_column() {
    let bad = GOOD.replace(
        r#"protocol == "telnet" && outcome"#,
        r#"protocol == "telnet" && outcom"#,
    );
    let d = diags(&bad);
    assert_eq!(d.len(), 1, "{d:?}");
    // Line 10 is the `when:` line; the condition starts after `  when: '` (column 10).
    assert_eq!((d[0].line, d[0].column), (10, 10 + 24), "{}", d[0]);
    assert!(d[0].message.contains("did you mean `outcome`"), "{}", d[0]);
    assert!(
        d[0].to_string().starts_with("r.yaml:10:34: unknown field"),
        "{}",
        d[0]
    );
}

#[test]
fn block_scalar_condition_errors_find_their_line() {
    let bad = GOOD.replace(
        r#"  when: 'protocol == "telnet" && outcome == "failure"'"#,
        "  when: |\n    protocol == \"telnet\" &&\n      outcome == 23",
    );
    let d = diags(&bad);
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!((d[0].line, d[0].column), (12, 18), "{}", d[0]);
}

#[test]
fn schema_errors_name_the_place() {
    let d = diags(&GOOD.replace("category: brute_force", "category: bruteforce"));
    assert_eq!((d[0].line, d[0].column), (4, 13), "{}", d[0]);
    assert!(d[0].message.contains("brute_force"), "{}", d[0]);
    let d = diags(&GOOD.replace("severity: high", "severity: severe"));
    assert_eq!(d[0].line, 5);
    let d = diags(&GOOD.replace("attack: T1110.001", "attack: brute"));
    assert_eq!(d[0].line, 8);
    let d = diags(&GOOD.replace("kind: protocol\n", "kind: packet\n"));
    assert_eq!(d[0].line, 9);
    assert!(d[0].message.contains("unknown event kind `packet`"));
    let d = diags(&GOOD.replace("window: 60s", "window: 60y"));
    assert!(d[0].message.contains("unknown unit"), "{}", d[0]);
    let d = diags(&GOOD.replace(
        "  title: Telnet failures\n",
        "  title: Telnet failures\n  colour: red\n",
    ));
    assert!(d[0].message.contains("colour"), "{}", d[0]);
    assert_eq!(d[0].line, 4, "{}", d[0]);
    let d = diags("- id: [unclosed\n");
    assert_eq!(d[0].line, 1, "{}", d[0]);
    let d = diags(&GOOD.replace("    quiet:\n      - {kind: protocol, src: 10.0.0.9, dst: 10.0.0.1, dst_port: 23, observation: {protocol: telnet, outcome: success}}\n", ""));
    assert!(
        d[0].message.contains("at least one `fire` and one `quiet`"),
        "{}",
        d[0]
    );
    let d = diags(&GOOD.replace(
        "observation: {protocol: telnet, outcome: success}",
        "observation: {protocol: telnet, outcome: maybe}",
    ));
    assert!(d[0].message.starts_with("test case: event 1"), "{}", d[0]);
    let twice = format!("{GOOD}{}", GOOD.trim_start_matches('\n'));
    let d = diags(&twice);
    assert!(d[0].message.contains("duplicate rule id"), "{}", d[0]);
}

#[test]
fn failing_cases_are_reported_not_hidden() {
    let wrong = GOOD
        .replace("outcome: success}}\n", "outcome: failure}}\n")
        .replace("count: 3", "count: 1");
    let set = parse_str(Path::new("r.yaml"), &wrong).unwrap();
    let results = test_set(&set);
    assert_eq!(results.len(), 2);
    assert!(results[0].passed());
    assert!(!results[1].passed());
    assert!(
        results[1].to_string().starts_with("FAIL r.yaml:"),
        "{}",
        results[1]
    );
}

fn telnet_fail(s: u64) -> Event {
    serde_json::from_value(serde_json::json!({
        "ts": Timestamp::from_secs(s).to_rfc3339(), "pid": 0, "tid": 0, "ppid": 0, "uid": 0, "euid": 0, "gid": 0, "comm": "",
        "kind": "protocol", "src": "10.0.0.9", "src_port": 1, "dst": "10.0.0.1", "dst_port": 23,
        "observation": {"protocol": "telnet", "outcome": "failure"}
    }))
    .unwrap()
}

#[test]
fn hot_reload_keeps_windows_and_a_broken_file_keeps_the_previous_rules() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("auth.yaml");
    std::fs::write(&file, GOOD).unwrap();
    let mut engine = crate::Engine::with_detectors(
        Vec::new(),
        &crate::Config::default(),
        std::sync::Arc::new(crate::ManualClock::default()),
    );
    assert_eq!(engine.reload_rules(dir.path()).unwrap().rules, 1);
    let mut out = Vec::new();
    engine.process(&telnet_fail(100), &mut out);
    engine.process(&telnet_fail(101), &mut out);
    assert!(out.is_empty());
    // An unrelated edit (a new rule) reloads; the telnet rule's window survives.
    let extra = GOOD
        .replace("test.telnet_fail", "test.other")
        .replace("protocol == \"telnet\"", "protocol == \"ftp\"");
    std::fs::write(&file, format!("{GOOD}{}", extra.trim_start_matches('\n'))).unwrap();
    std::fs::write(dir.path().join("touch.yaml"), "[]\n").unwrap();
    assert_eq!(engine.reload_if_changed().unwrap().unwrap().rules, 2);
    assert!(engine.reload_if_changed().is_none(), "no change, no reload");
    engine.process(&telnet_fail(102), &mut out);
    assert_eq!(
        out.len(),
        1,
        "third failure after the reload completes the window"
    );
    // A broken edit is refused with its position; the two rules stay active.
    std::fs::write(&file, GOOD.replace("outcome ==", "outcome ===")).unwrap();
    let err = engine.reload_if_changed().unwrap().unwrap_err().to_string();
    assert!(err.contains("auth.yaml:10:44: expected `==`"), "{err}");
    assert_eq!(engine.rules().len(), 2);
    for s in 200..203 {
        engine.process(&telnet_fail(s), &mut out);
    }
    assert_eq!(engine.stats().rule_reload_failures, 1);
    assert_eq!(
        out.len(),
        2,
        "same incident, going on: one update line, the rest folded within its cadence"
    );
    assert_eq!(out[1].id, out[0].id);
    assert!(out[1].count > out[0].count, "{:?}", out[1]);
    let mut flushed = Vec::new();
    let clock = crate::ManualClock::new(Timestamp::from_secs(10_000));
    let mut e2 = crate::Engine::with_detectors(
        Vec::new(),
        &crate::Config::default(),
        std::sync::Arc::new(clock),
    );
    e2.set_rules(engine.rules().clone());
    for s in 0..9 {
        e2.process(&telnet_fail(s), &mut flushed);
    }
    e2.tick(&mut flushed);
    assert_eq!(flushed.len(), 2, "live alert, then the closing update");
    assert_eq!(flushed[1].count, 3);
    assert_eq!(flushed[0].id, flushed[1].id);
}

#[test]
fn process_events_fill_pid_comm_and_evidence() {
    let set = check(&Sources::dir(repo_rules())).unwrap();
    let mut rt = Runtime::new(&set);
    let ev = Event {
        ts: Timestamp::from_secs(5),
        process: Process {
            pid: 77,
            comm: "nc".into(),
            ..Default::default()
        },
        kind: EventKind::Exec {
            filename: "/usr/bin/nc".into(),
            argv: vec!["nc".into(), "-e".into(), "/bin/sh".into()],
            argv_truncated: false,
            ret: 0,
        },
    };
    let mut out = Vec::new();
    rt.inspect(&ev, &mut out);
    assert_eq!(out.len(), 1);
    let a = &out[0];
    assert_eq!(
        (a.rule.as_str(), a.pid, a.comm.as_deref()),
        ("host.netcat_exec", Some(77), Some("nc"))
    );
    assert!(
        a.evidence.iter().any(|e| e == "argv=nc -e /bin/sh"),
        "{:?}",
        a.evidence
    );
    assert_eq!(a.taxonomy.attack.as_deref(), Some("T1059.004"));
}

#[test]
fn the_built_in_rules_are_the_shipped_files() {
    let built_in = built_in().unwrap_or_else(|e| panic!("{e}"));
    let shipped = check(&Sources::dir(repo_rules())).unwrap();
    let ids = |s: &RuleSet| s.rules.iter().map(|r| r.id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&built_in), ids(&shipped));
    assert!(built_in.rules.iter().all(|r| r.origin == Origin::BuiltIn));
    assert!(
        built_in.rules[0].file.starts_with(BUILT_IN_ROOT),
        "{}",
        built_in.rules[0].file.display()
    );
}

#[test]
fn a_local_directory_adds_rules_and_overrides_built_in_ones_by_id() {
    let dir = tempfile::tempdir().unwrap();
    let base = built_in().unwrap();
    let victim = base.rules[0].id.clone();
    // The same id, made quiet on everything; plus a rule of the hospital's own.
    let replacement = GOOD.replace("test.telnet_fail", &victim);
    std::fs::write(dir.path().join("local.yaml"), &replacement).unwrap();
    std::fs::write(
        dir.path().join("own.yaml"),
        GOOD.replace("test.telnet_fail", "local.telnet_fail"),
    )
    .unwrap();
    let missing = dir.path().join("absent");
    let set = load(&Sources::built_in_and(vec![missing, dir.path().to_owned()])).unwrap();
    assert_eq!(set.len(), base.len() + 1, "one added, one replaced");
    let replaced = set.get(&victim).unwrap();
    assert_eq!(replaced.origin, Origin::Local);
    assert_eq!(replaced.title, "Telnet failures");
    assert_eq!(set.overridden.len(), 1);
    assert_eq!(set.overridden[0].origin, Origin::BuiltIn);
    assert_eq!(set.get("local.telnet_fail").unwrap().origin, Origin::Local);
}

#[test]
fn a_broken_local_file_rejects_the_whole_set_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.yaml"),
        GOOD.replace("severity: high", "severity: dire"),
    )
    .unwrap();
    let err = load(&Sources::built_in_and(vec![dir.path().to_owned()])).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("bad.yaml:"), "{msg}");
    // A directory given alone must exist.
    let gone = dir.path().join("gone");
    assert!(matches!(load(&Sources::dir(&gone)), Err(Error::Io { .. })));
}
