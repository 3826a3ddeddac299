//! heir as a hospital installs it: the binary copied to a directory outside the source tree,
//! run from there. Its rules are built in, and the host's own rules directory adds to them or
//! replaces one by id; `heir rules list` says where each comes from. The agent test needs root
//! (the probes); without it it fails with NOT RUN.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use heir_testkit::{Reap, exit_within, poll};
use serde_json::Value;

const HEIR: &str = env!("CARGO_BIN_EXE_heir");
const ALERT_WITHIN: Duration = Duration::from_secs(20);

/// A rule of the hospital's own, and a replacement for a built-in rule.
const LOCAL_RULES: &str = r#"
- id: local.probe_tool
  title: The hospital's own probe tool ran
  category: anomaly
  severity: low
  owasp_iot: I8
  enisa: "Nefarious activity/abuse"
  attack: T1059.004
  kind: exec
  when: 'comm startswith "heirlocalprobe"'
  tests:
    fire:
      - {kind: exec, comm: heirlocalprobe, filename: /tmp/heirlocalprobe, argv: [heirlocalprobe]}
    quiet:
      - {kind: exec, comm: ls, filename: /bin/ls, argv: [ls]}

- id: host.netcat_exec
  title: Netcat ran (local policy)
  category: anomaly
  severity: medium
  owasp_iot: I8
  enisa: "Nefarious activity/abuse"
  attack: T1059.004
  kind: exec
  when: 'comm in ["nc", "ncat", "netcat"]'
  tests:
    fire:
      - {kind: exec, comm: nc, filename: /bin/nc, argv: [nc, -l]}
    quiet:
      - {kind: exec, comm: ls, filename: /bin/ls, argv: [ls]}
"#;

/// The binary, copied to a scratch directory with nothing else in it.
fn installed() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin/heir");
    std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
    heir_testkit::copy_executable(HEIR, &bin);
    (dir, bin)
}

/// The rule ids in the source tree's `rules/`, as written there.
fn shipped_ids() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rules");
    let mut ids = Vec::new();
    let mut stack = vec![root];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "yaml") {
                let text = std::fs::read_to_string(&p).unwrap();
                ids.extend(
                    text.lines()
                        .filter_map(|l| l.strip_prefix("- id: "))
                        .map(|id| id.trim().to_owned()),
                );
            }
        }
    }
    ids.sort();
    ids
}

fn list(bin: &Path, cwd: &Path, config: Option<&Path>) -> Vec<Value> {
    let mut cmd = Command::new(bin);
    cmd.current_dir(cwd).args(["rules", "list", "--json"]);
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    let out = cmd.stderr(Stdio::piped()).output().unwrap();
    assert!(
        out.status.success(),
        "heir rules list: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn config_with_data_dir(dir: &Path, data: &Path) -> PathBuf {
    let config = dir.join("heir.toml");
    std::fs::write(
        &config,
        format!("data_dir = {:?}\n", data.display().to_string()),
    )
    .unwrap();
    config
}

#[test]
fn a_copied_binary_lists_its_built_in_rules_and_the_hosts_own() {
    let (dir, bin) = installed();
    let listed = list(&bin, dir.path(), None);
    let mut ids: Vec<String> = listed
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    assert_eq!(ids, shipped_ids(), "every shipped rule, and only those");
    for r in &listed {
        assert_eq!(r["origin"], "built-in", "{r}");
        assert!(r["file"].as_str().unwrap().starts_with("built-in/"), "{r}");
    }

    // The hospital's rules directory (here `rules/` in the data directory) adds one rule and
    // replaces a built-in one.
    let data = dir.path().join("data");
    std::fs::create_dir_all(data.join("rules")).unwrap();
    std::fs::write(data.join("rules/local.yaml"), LOCAL_RULES).unwrap();
    let config = config_with_data_dir(dir.path(), &data);
    let listed = list(&bin, dir.path(), Some(&config));
    assert_eq!(listed.len(), shipped_ids().len() + 1);
    let own = listed
        .iter()
        .find(|r| r["id"] == "local.probe_tool")
        .expect("the local rule is listed");
    assert_eq!(own["origin"], "local");
    assert!(own["replaces"].is_null());
    let nc = listed
        .iter()
        .find(|r| r["id"] == "host.netcat_exec")
        .unwrap();
    assert_eq!(nc["origin"], "local");
    assert_eq!(nc["title"], "Netcat ran (local policy)");
    assert!(
        nc["replaces"]
            .as_str()
            .is_some_and(|s| s.starts_with("built-in/host/")),
        "{nc}"
    );

    // `heir rules test` runs the built-in and the local rules' cases.
    let out = Command::new(&bin)
        .current_dir(dir.path())
        .args(["rules", "test", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("local.probe_tool"), "{text}");
    assert!(text.contains(" 0 failed"), "{text}");

    // A broken local file is refused with its place, and nothing is listed from it.
    std::fs::write(
        data.join("rules/broken.yaml"),
        "- id: x\n  severity: dire\n",
    )
    .unwrap();
    let out = Command::new(&bin)
        .current_dir(dir.path())
        .args(["rules", "check", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("broken.yaml:"), "{err}");
}

#[test]
fn a_copied_agent_fires_its_built_in_and_local_rules() {
    // SAFETY: geteuid has no preconditions.
    assert!(
        unsafe { libc::geteuid() } == 0,
        "NOT RUN: the agent's probes need root (CI runs the tests as root)"
    );
    let (dir, bin) = installed();
    let data = dir.path().join("data");
    std::fs::create_dir_all(data.join("rules")).unwrap();
    std::fs::write(data.join("rules/local.yaml"), LOCAL_RULES).unwrap();
    let alerts = dir.path().join("alerts.jsonl");
    let _agent = heir_testkit::agent(&bin, &data, &alerts, dir.path());
    let expect = |what: &str, pred: &dyn Fn(&Value) -> bool| {
        poll(what, ALERT_WITHIN, || {
            heir_testkit::alert_lines(&alerts).into_iter().find(pred)
        })
    };

    // A built-in rule: shell history erased.
    let mut sh = Reap(
        Command::new("bash")
            .args(["-c", "history -c; true"])
            .spawn()
            .unwrap(),
    );
    exit_within(&mut sh.0, Duration::from_secs(20), "bash");
    let a = expect("the built-in history rule's alert", &|a| {
        a["rule"] == "host.history_tampering"
    });
    assert_eq!(a["attack"], "T1070.003", "{a}");

    // A built-in detector: /etc/shadow read by a program that has no business reading it.
    let cat = dir.path().join("shadowpeek");
    heir_testkit::copy_executable("/usr/bin/cat", &cat);
    let mut peek = Reap(
        Command::new(&cat)
            .arg("/etc/shadow")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    exit_within(&mut peek.0, Duration::from_secs(20), "shadowpeek");
    expect("the shadow read's credential_access alert", &|a| {
        a["category"] == "credential_access" && a["comm"] == "shadowpeek"
    });

    // The hospital's own rule, from the data directory's rules/.
    let probe = dir.path().join("heirlocalprobe");
    heir_testkit::copy_executable("/usr/bin/true", &probe);
    let mut p = Reap(Command::new(&probe).spawn().unwrap());
    exit_within(&mut p.0, Duration::from_secs(20), "heirlocalprobe");
    expect("the local rule's alert", &|a| {
        a["rule"] == "local.probe_tool"
    });
}
