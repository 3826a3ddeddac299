//! The Linux host techniques an EDR on an EMD server is expected to see, through the real
//! probes and the real agent at its defaults: each one done with the real tool where doing it
//! is harmless here (bash, shred, touch, chmod, env, writes to /etc/sudoers.d, /etc/cron.d,
//! /etc/systemd/system and /var/log), and otherwise by a copy of `/bin/true` carrying the
//! tool's name and arguments (`systemctl stop auditd` must not stop this machine's auditd): the
//! sensor sees the same exec either way. Each alert carries the exact ATT&CK sub-technique.
//!
//! Then the benign twins (`history | tail`, `touch -r` in a build tree, `systemctl status`,
//! `chmod 755`, a service stopped by dpkg, …) run, each carrying a marker in its arguments or
//! file names, and a canary after them: once the canary's alert is in, no alert may mention a
//! marker. Needs root; without it the test fails with NOT RUN.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use heir_testkit::{Reap, exit_within, poll, unique};
use serde_json::Value;

const HEIR: &str = env!("CARGO_BIN_EXE_heir");
const ALERT_WITHIN: Duration = Duration::from_secs(20);

/// Files and directories the test made outside its scratch directory, removed at the end
/// whatever happens.
struct Cleanup(Vec<PathBuf>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p);
            let _ = std::fs::remove_dir_all(p);
        }
    }
}

struct Host {
    _agent: Reap,
    alerts: PathBuf,
    /// Copies of /bin/true named after tools (outside /tmp, so no "run from /tmp" alert).
    fakes: PathBuf,
    scratch: PathBuf,
}

impl Host {
    fn start(u: &str, cleanup: &mut Cleanup) -> (Host, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let alerts = dir.path().join("alerts.jsonl");
        let agent = heir_testkit::agent(
            Path::new(HEIR),
            &dir.path().join("data"),
            &alerts,
            dir.path(),
        );
        let root = PathBuf::from(format!("/run/heir-techniques-{u}"));
        cleanup.0.push(root.clone());
        let fakes = root.join("bin");
        let scratch = root.join("work");
        std::fs::create_dir_all(&fakes).unwrap();
        std::fs::create_dir_all(&scratch).unwrap();
        (
            Host {
                _agent: agent,
                alerts,
                fakes,
                scratch,
            },
            dir,
        )
    }

    /// A copy of `from` named `name` in the fakes directory.
    fn tool(&self, name: &str, from: &str) -> PathBuf {
        let p = self.fakes.join(name);
        if !p.exists() {
            heir_testkit::copy_executable(from, &p);
        }
        p
    }

    fn fake(&self, name: &str) -> PathBuf {
        self.tool(name, "/bin/true")
    }

    fn alerts(&self) -> Vec<Value> {
        heir_testkit::alert_lines(&self.alerts)
    }

    /// Waits for an alert of `rule` whose evidence mentions `marker`, and checks its technique.
    #[track_caller]
    fn expect(&self, rule: &str, attack: &str, marker: &str) {
        let a = poll(
            &format!("a {rule} alert mentioning {marker}"),
            ALERT_WITHIN,
            || {
                self.alerts()
                    .into_iter()
                    .find(|a| a["rule"] == rule && a.to_string().contains(marker))
            },
        );
        assert_eq!(a["attack"], attack, "{rule}: {a}");
    }
}

/// Runs a command to completion within a bound; its output is discarded.
#[track_caller]
fn run(program: impl AsRef<std::ffi::OsStr>, args: &[&str]) {
    let program = program.as_ref().to_owned();
    let what = format!("{} {}", program.to_string_lossy(), args.join(" "));
    let mut child = Reap(
        Command::new(&program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{what}: {e}")),
    );
    exit_within(&mut child.0, Duration::from_secs(30), &what);
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn each_host_technique_fires_with_its_sub_technique_and_routine_twins_stay_quiet() {
    // SAFETY: geteuid has no preconditions.
    assert!(
        unsafe { libc::geteuid() } == 0,
        "NOT RUN: the agent's probes need root (CI runs the tests as root)"
    );
    let u = unique();
    let mut cleanup = Cleanup(Vec::new());
    let (h, _dir) = Host::start(&u, &mut cleanup);

    // Indicator removal.
    run("bash", &["-c", &format!("history -c; : hist{u}")]);
    h.expect("host.history_tampering", "T1070.003", &format!("hist{u}"));
    run("bash", &["-c", &format!("unset HISTFILE; : nohist{u}")]);
    h.expect("host.history_disabled", "T1562.003", &format!("nohist{u}"));
    let log = PathBuf::from(format!("/var/log/heir-techniques-{u}.log"));
    cleanup.0.push(log.clone());
    std::fs::write(&log, "routine line\n").unwrap();
    run("bash", &["-c", &format!(": > {}", s(&log))]);
    h.expect("host.audit_log_cleared", "T1070.002", s(&log));
    let implant = h.scratch.join(format!("implant{u}"));
    std::fs::write(&implant, b"payload").unwrap();
    run("shred", &["-u", s(&implant)]);
    h.expect("host.file_shredded", "T1070.004", &format!("implant{u}"));
    let planted = PathBuf::from(format!("/etc/heir-techniques-{u}"));
    cleanup.0.push(planted.clone());
    run("touch", &["-r", "/etc/hostname", s(&planted)]);
    h.expect("host.timestomp", "T1070.006", s(&planted));

    // Impairing defences.
    run(h.fake("systemctl"), &["stop", &format!("auditd{u}")]);
    h.expect(
        "host.security_service_stopped",
        "T1562.001",
        &format!("auditd{u}"),
    );
    run(h.fake("ufw"), &["disable", &format!("--x{u}")]);
    h.expect("host.firewall_disabled", "T1562.004", &format!("--x{u}"));
    run(
        h.fake("bpftool"),
        &["map", "delete", "pinned", &format!("/sys/fs/bpf/heir/x{u}")],
    );
    h.expect("host.heir_tampered", "T1562.001", &format!("x{u}"));

    // Library injection.
    run(
        "env",
        &[&format!("LD_PRELOAD=/nonexistent/l{u}.so"), "/bin/true"],
    );
    h.expect("host.ld_preload", "T1574.006", &format!("l{u}.so"));

    // Accounts and privileges.
    run(h.fake("useradd"), &[&format!("svc{u}")]);
    h.expect("host.account_created", "T1136.001", &format!("svc{u}"));
    let suid = h.scratch.join(format!("suid{u}"));
    heir_testkit::copy_executable("/bin/true", &suid);
    run("chmod", &["u+s", s(&suid)]);
    h.expect("host.setuid_bit_set", "T1548.001", &format!("suid{u}"));
    // sudo ignores sudoers.d files whose names contain a dot; this one only holds a comment.
    let sudoers = PathBuf::from(format!("/etc/sudoers.d/heir.techniques{u}"));
    cleanup.0.push(sudoers.clone());
    run("bash", &["-c", &format!("echo '# test' > {}", s(&sudoers))]);
    h.expect("host.sudoers_modified", "T1548.003", s(&sudoers));

    // Permissions.
    run(h.fake("chattr"), &["+i", &format!("/etc/cron.d/lock{u}")]);
    h.expect("host.immutable_attribute", "T1222.002", &format!("lock{u}"));
    let fake_chmod = h.fakes.join("perm").join("chmod");
    std::fs::create_dir_all(fake_chmod.parent().unwrap()).unwrap();
    heir_testkit::copy_executable("/bin/true", &fake_chmod);
    run(&fake_chmod, &["o+r", "/etc/shadow", &format!("--p{u}")]);
    h.expect(
        "host.sensitive_permissions",
        "T1222.002",
        &format!("--p{u}"),
    );

    // Autostart (cron ignores /etc/cron.d files with a dot; systemd loads no unit unasked).
    let cron = PathBuf::from(format!("/etc/cron.d/heir.techniques{u}"));
    cleanup.0.push(cron.clone());
    run("bash", &["-c", &format!("echo '# test' > {}", s(&cron))]);
    h.expect("host.persistence", "T1053.003", s(&cron));
    let timer = PathBuf::from(format!("/etc/systemd/system/heir-techniques-{u}.timer"));
    cleanup.0.push(timer.clone());
    run("bash", &["-c", &format!("echo '# test' > {}", s(&timer))]);
    h.expect("host.persistence", "T1053.006", s(&timer));

    // Credential dumping from process memory.
    run(h.fake("gcore"), &["-o", &format!("/run/core{u}"), "1"]);
    h.expect("host.process_memory_dump", "T1003.007", &format!("core{u}"));

    // The routine twins, each with a marker.
    let m = format!("routine{u}");
    run("bash", &["-c", &format!("history | tail -n 1; : {m}")]);
    let build = h.scratch.join(format!("{m}-build"));
    std::fs::create_dir_all(&build).unwrap();
    std::fs::write(build.join("main.c"), "int main;").unwrap();
    run(
        "touch",
        &["-r", s(&build.join("main.c")), s(&build.join("main.o"))],
    );
    run(h.fake("systemctl"), &["status", "auditd", &m]);
    run(h.fake("systemctl"), &["stop", &format!("nginx-{m}")]);
    run("chmod", &["755", s(&build.join("main.c"))]);
    run(
        "env",
        &[&format!("LD_LIBRARY_PATH=/opt/{m}/lib"), "/bin/true"],
    );
    run(h.fake("iptables"), &["-L", "-n", &m]);
    // A package upgrade restarting the syslog daemon: dpkg (here a bash named dpkg) runs
    // systemctl as its child.
    let dpkg = h.tool("dpkg", "/bin/bash");
    run(
        &dpkg,
        &[
            "-c",
            &format!("{} stop rsyslog-{m}; true", s(&h.fake("systemctl"))),
        ],
    );

    // The canary: a program reading /etc/shadow, after every twin.
    heir_testkit::shadow_canary(&h.fakes, &h.alerts);
    let noisy: Vec<Value> = h
        .alerts()
        .into_iter()
        .filter(|a| a.to_string().contains(&m))
        .collect();
    assert!(noisy.is_empty(), "routine work raised alerts: {noisy:#?}");
}

/// Spawns `cmd` and returns it running, reaped at the end of the test.
fn spawn(cmd: &mut Command) -> Reap {
    Reap(
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

#[test]
fn debuggers_attaching_to_a_running_daemon_are_reported_and_tracing_ones_own_child_is_not() {
    // SAFETY: geteuid has no preconditions.
    assert!(
        unsafe { libc::geteuid() } == 0,
        "NOT RUN: the agent's probes need root (CI runs the tests as root)"
    );
    for tool in ["/usr/bin/gdb", "/usr/bin/strace"] {
        assert!(
            Path::new(tool).exists(),
            "NOT RUN: {tool} is not installed (run `cargo xtask setup`)"
        );
    }
    let u = unique();
    let mut cleanup = Cleanup(Vec::new());
    let (h, _dir) = Host::start(&u, &mut cleanup);
    // A device daemon: a copy of sleep, running.
    let daemon = spawn(Command::new(h.tool("pacsd", "/bin/sleep")).arg("600"));
    let pid = daemon.0.id().to_string();
    let injection = |tracer: &str, sev: &str| {
        let tracer = tracer.to_owned();
        let sev = sev.to_owned();
        let target = pid.clone();
        move |a: &Value| {
            a["category"] == "process_injection"
                && a["comm"] == tracer.as_str()
                && a["severity"] == sev.as_str()
                && a["title"]
                    .as_str()
                    .is_some_and(|t| t.ends_with(&format!("pid {target}")))
        }
    };

    // strace -p: attaching to a process that is not strace's child.
    let mut strace = spawn(Command::new("strace").args(["-o", "/dev/null", "-p", &pid]));
    let attach = injection("strace", "medium");
    poll("strace -p's process_injection alert", ALERT_WITHIN, || {
        h.alerts().into_iter().find(&attach)
    });
    let _ = strace.0.kill();
    exit_within(&mut strace.0, Duration::from_secs(10), "strace");

    // gdb -p calling a function inside the daemon: attach, then registers and memory written.
    run(
        "gdb",
        &[
            "-nx",
            "-batch",
            "-iex",
            "set debuginfod enabled off",
            "-p",
            &pid,
            "-ex",
            "call (int)getpid()",
        ],
    );
    let write = injection("gdb", "high");
    let a = poll("gdb's memory or register write alert", ALERT_WITHIN, || {
        h.alerts().into_iter().find(&write)
    });
    assert_eq!(a["attack"], "T1055.008", "{a}");

    // Tracing one's own child is routine.
    let mut own = Vec::new();
    let mut s = spawn(Command::new("strace").args(["-f", "-o", "/dev/null", "/bin/true"]));
    own.push(s.0.id());
    exit_within(&mut s.0, Duration::from_secs(30), "strace /bin/true");
    let mut g = spawn(Command::new("gdb").args([
        "-nx",
        "-batch",
        "-iex",
        "set debuginfod enabled off",
        "-ex",
        "run",
        "--args",
        "/bin/true",
    ]));
    own.push(g.0.id());
    exit_within(&mut g.0, Duration::from_secs(60), "gdb --args /bin/true");
    heir_testkit::shadow_canary(&h.fakes, &h.alerts);
    let noisy: Vec<Value> = h
        .alerts()
        .into_iter()
        .filter(|a| {
            a["category"] == "process_injection"
                && a["pid"].as_u64().is_some_and(|p| own.contains(&(p as u32)))
        })
        .collect();
    assert!(noisy.is_empty(), "tracing its own child raised: {noisy:#?}");
    drop(daemon);
}

/// `n` small files standing in for a PACS export, in a fresh directory outside every watched
/// prefix.
fn studies(root: &Path, name: &str, n: usize) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    for i in 0..n {
        std::fs::write(dir.join(format!("study-{i:05}.dcm")), b"DICM study data").unwrap();
    }
    dir
}

/// Runs `script` with `shell` in `dir` within a bound; returns the shell's pid.
#[track_caller]
fn shell_in(shell: &Path, dir: &Path, script: &str, within: Duration) -> u32 {
    let mut child = spawn(Command::new(shell).arg("-c").arg(script).current_dir(dir));
    let pid = child.0.id();
    exit_within(&mut child.0, within, script);
    pid
}

#[test]
fn ransomware_outside_the_watched_paths_fires_and_backups_and_cleanups_do_not() {
    // SAFETY: geteuid has no preconditions.
    assert!(
        unsafe { libc::geteuid() } == 0,
        "NOT RUN: the agent's probes need root (CI runs the tests as root)"
    );
    let u = unique();
    let mut cleanup = Cleanup(Vec::new());
    let (h, _dir) = Host::start(&u, &mut cleanup);
    let enc = "openssl enc -aes-256-cbc -K 000102030405060708090a0b0c0d0e0f000102030405060708090a0b0c0d0e0f -iv 000102030405060708090a0b0c0d0e0f";
    let long = Duration::from_secs(120);

    // Routine: a backup archive, a copy, a cleanup, and a log rotation's compression.
    let data = studies(&h.scratch, "pacs", 600);
    let bash = Path::new("/bin/bash");
    let mut routine = vec![
        shell_in(bash, &h.scratch, "tar czf backup.tgz pacs", long),
        shell_in(bash, &h.scratch, "cp -r pacs pacs.bak", long),
        shell_in(bash, &h.scratch, "rm -rf pacs.bak", long),
    ];
    let logs = studies(&h.scratch, "logs", 20);
    routine.push(shell_in(
        bash,
        &logs,
        "for f in *.dcm; do gzip \"$f\"; done",
        long,
    ));

    // Encryption by a shell loop, one openssl and one rm per file: the copy-then-delete
    // pattern, and the temporary-then-rename pattern, at two sizes. Each loop runs in its own
    // copy of bash: one program's repeated encryption is one incident, three programs are
    // three.
    for (name, n, script) in [
        (
            "copy-rm",
            300,
            format!(
                "for f in *.dcm; do {enc} -in \"$f\" -out \"$f.locked\" && rm \"$f\"; done; echo pay > README-RESTORE.txt"
            ),
        ),
        (
            "tmp-mv-rm",
            300,
            format!(
                "for f in *.dcm; do {enc} -in \"$f\" -out \"$f.tmp\" && mv \"$f.tmp\" \"$f.crypt\" && rm \"$f\"; done"
            ),
        ),
        (
            "copy-rm-2000",
            2000,
            format!("for f in *.dcm; do {enc} -in \"$f\" -out \"$f.locked\" && rm \"$f\"; done"),
        ),
    ] {
        let dir = studies(&h.scratch, name, n);
        let shell = h.tool(&format!("lock-{name}"), "/bin/bash");
        let pid = shell_in(&shell, &dir, &script, long);
        let a = poll(
            &format!("a ransomware alert naming the {name} loop (bash pid {pid})"),
            ALERT_WITHIN,
            || {
                h.alerts().into_iter().find(|a| {
                    a["category"] == "ransomware" && a["pid"].as_u64() == Some(u64::from(pid))
                })
            },
        );
        assert_eq!(a["attack"], "T1486", "{a}");
    }
    drop(data);
    let noisy: Vec<Value> = h
        .alerts()
        .into_iter()
        .filter(|a| {
            a["category"] == "ransomware"
                && a["pid"]
                    .as_u64()
                    .is_some_and(|p| routine.contains(&(p as u32)))
        })
        .collect();
    assert!(noisy.is_empty(), "routine file work raised: {noisy:#?}");
}
