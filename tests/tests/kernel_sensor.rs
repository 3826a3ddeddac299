//! The syscall sensor against the real kernel: load the probes, make real processes do real
//! things, and check each event arrives with the right pid, ppid, uid, path, ports and result.
//!
//! These tests need root and a kernel with BTF; without them they fail with a message saying
//! so (they never pass without having run). Other processes on the machine generate events
//! too, so every assertion looks only at processes these tests started.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use heir_agent::decode;
use heir_agent::proctable::ProcessTable;
use heir_agent::sensor::{self, Sensor, watch};
use heir_model::BootClock;
use heir_model::event::{CredCall, ModuleOp};
use heir_model::{Event, EventKind, NetAddr};

struct Harness {
    events: Arc<Mutex<Vec<Event>>>,
    counters: Arc<Mutex<Option<sensor::Counters>>>,
    dir: PathBuf,
}

fn harness() -> &'static Harness {
    static H: OnceLock<Harness> = OnceLock::new();
    H.get_or_init(|| {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            panic!("NOT RUN: the kernel sensor tests need root (CI runs them as root)");
        }
        if !Sensor::has_object() {
            panic!("NOT RUN: heir was built without its eBPF programs (AYA_BUILD_SKIP?); run `cargo xtask setup`");
        }
        let dir = std::env::temp_dir().join(format!("heir-kt-{}-{}", std::process::id(), unique()));
        std::fs::create_dir_all(dir.join("watched")).unwrap();
        CLEANUP.set(dir.clone()).unwrap();
        // SAFETY: registering a plain extern "C" function.
        unsafe { libc::atexit(remove_test_dir) };
        std::fs::create_dir_all(dir.join("plain")).unwrap();
        let mut config = sensor::Config::default();
        config.watch.push(watch::Rule::new(
            &format!("{}/watched/", dir.display()),
            watch::Access::Any,
        ));
        config.burst_threshold = 50;
        let events = Arc::new(Mutex::new(Vec::new()));
        let counters = Arc::new(Mutex::new(None));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (ev, ctr) = (events.clone(), counters.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let mut sensor = match Sensor::start(&config, std::process::id()) {
                    Ok(s) => s,
                    Err(e) => {
                        ready_tx.send(Err(e.to_string())).unwrap();
                        return;
                    }
                };
                let failed: Vec<String> = sensor.failed.iter().map(|f| format!("{}: {}", f.program, f.reason)).collect();
                let mut reader = sensor.reader().unwrap();
                ready_tx.send(Ok(failed)).unwrap();
                let clock = BootClock::now();
                let mut table = ProcessTable::from_proc();
                loop {
                    let mut batch = Vec::new();
                    reader
                        .read_batch(|b| batch.push(decode::decode(b, &clock).expect("kernel records decode")))
                        .await
                        .unwrap();
                    for e in &mut batch {
                        table.enrich(e);
                    }
                    ev.lock().unwrap().extend(batch);
                    *ctr.lock().unwrap() = Some(sensor.counters().unwrap());
                }
            });
        });
        match ready_rx.recv_timeout(Duration::from_secs(60)).expect("sensor thread started") {
            Ok(failed) => assert!(failed.is_empty(), "probes failed to attach: {failed:?}"),
            Err(e) => panic!("the sensor did not start: {e}"),
        }
        Harness { events, counters, dir }
    })
}

static CLEANUP: OnceLock<PathBuf> = OnceLock::new();

/// Deletes the tests' scratch directory when the test binary exits.
extern "C" fn remove_test_dir() {
    if let Some(dir) = CLEANUP.get() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    t ^ (N.fetch_add(1, Ordering::Relaxed) << 32)
}

/// Waits (bounded) for an event matching `pred`.
fn wait_for(what: &str, pred: impl Fn(&Event) -> bool) -> Event {
    let h = harness();
    heir_testkit::poll(&format!("a {what} event"), Duration::from_secs(10), || {
        h.events.lock().unwrap().iter().find(|e| pred(e)).cloned()
    })
}

fn events_of(pid: u32) -> Vec<Event> {
    harness()
        .events
        .lock()
        .unwrap()
        .iter()
        .filter(|e| e.process.pid == pid)
        .cloned()
        .collect()
}

/// Runs a command to completion and returns its pid and stdout.
fn run(cmd: &mut Command) -> (u32, String) {
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {cmd:?}: {e}"));
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{cmd:?} failed: {:?}", out.status);
    (pid, String::from_utf8_lossy(&out.stdout).into_owned())
}

fn value(out: &str, key: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key}= in {out:?}"))
        .to_owned()
}

fn actor() -> Command {
    Command::new(env!("CARGO_BIN_EXE_heir-actor"))
}

/// Waits for `pid`'s exit, then for a canary: a process started after it, whose open of a
/// watched file must be reported. Once the canary's events are in, the sensor was live after
/// `pid` ended, so an event of `pid` that is still missing was not reported.
fn waited_for_exit(pid: u32) {
    wait_for("exit", |e| {
        e.process.pid == pid && matches!(e.kind, EventKind::Exit { .. })
    });
    let canary = harness().dir.join(format!("watched/canary-{}", unique()));
    std::fs::write(&canary, "c").unwrap();
    let (cpid, _) = run(Command::new("cat").arg(&canary));
    wait_for("canary open", |e| {
        e.process.pid == cpid
            && matches!(&e.kind, EventKind::Open { path, .. } if Path::new(path) == canary)
    });
    wait_for("canary exit", |e| {
        e.process.pid == cpid && matches!(e.kind, EventKind::Exit { .. })
    });
}

#[test]
fn exec_reports_program_argv_lineage_and_exit() {
    let h = harness();
    let tag = unique();
    let prog = h.dir.join(format!("heir-true-{tag}"));
    heir_testkit::copy_executable("/bin/true", &prog);
    let marker = format!("marker-{tag}");
    let (pid, _) = run(Command::new(&prog).args(["--marker", &marker]));
    let exec = wait_for("exec", |e| {
        e.process.pid == pid
            && matches!(&e.kind, EventKind::Exec { filename, .. } if Path::new(filename) == prog)
    });
    let EventKind::Exec { argv, ret, .. } = &exec.kind else {
        unreachable!()
    };
    assert_eq!(*ret, 0);
    assert_eq!(
        argv,
        &[
            prog.display().to_string(),
            "--marker".into(),
            marker.clone()
        ]
    );
    assert_eq!(exec.process.ppid, std::process::id());
    assert_eq!(exec.process.uid, 0);
    assert_eq!(exec.process.euid, 0);
    assert_eq!(exec.process.comm, format!("heir-true-{tag}")[..15]);
    assert!(exec.process.cgroup > 0);
    let info = exec.process.info.expect("enriched");
    assert_eq!(info.exe.as_deref(), Some(prog.to_str().unwrap()));
    assert_eq!(
        info.lineage.first().map(|a| a.pid),
        Some(std::process::id())
    );
    let exit = wait_for("exit", |e| {
        e.process.pid == pid && matches!(e.kind, EventKind::Exit { .. })
    });
    assert_eq!(
        exit.kind,
        EventKind::Exit {
            code: 0,
            signal: None
        }
    );
}

#[test]
fn failed_exec_reports_its_error() {
    let h = harness();
    let path = h.dir.join(format!("not-executable-{}", unique()));
    std::fs::write(&path, "data").unwrap();
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("exec {} ; exit 3", path.display()))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let e = wait_for(
        "failed exec",
        |e| matches!(&e.kind, EventKind::Exec { filename, .. } if Path::new(filename) == path),
    );
    let EventKind::Exec { ret, .. } = e.kind else {
        unreachable!()
    };
    assert_eq!(ret, -(libc::EACCES as i64));
}

#[test]
fn only_opens_under_watched_prefixes_are_reported() {
    let h = harness();
    let tag = unique();
    let watched = h.dir.join(format!("watched/secret-{tag}"));
    let plain = h.dir.join(format!("plain/ordinary-{tag}"));
    std::fs::write(&watched, "x").unwrap();
    std::fs::write(&plain, "y").unwrap();
    let (pid_w, _) = run(Command::new("cat").arg(&watched));
    let (pid_p, _) = run(Command::new("cat").arg(&plain));
    let open = wait_for("open", |e| {
        e.process.pid == pid_w
            && matches!(&e.kind, EventKind::Open { path, .. } if Path::new(path) == watched)
    });
    let EventKind::Open { flags, ret, .. } = open.kind else {
        unreachable!()
    };
    assert_eq!(flags & libc::O_ACCMODE as u32, libc::O_RDONLY as u32);
    assert!(ret >= 0, "cat opened the file: ret {ret}");
    assert_eq!(open.process.comm, "cat");
    assert_eq!(open.process.ppid, std::process::id());
    waited_for_exit(pid_p);
    let leaked: Vec<_> = events_of(pid_p)
        .into_iter()
        .filter(|e| matches!(&e.kind, EventKind::Open { path, .. } if path.contains("ordinary")))
        .collect();
    assert!(leaked.is_empty(), "unwatched open reported: {leaked:?}");
    let c = h.counters.lock().unwrap().clone().expect("counters read");
    assert!(
        c.get(heir_abi::Kind::Open).filtered > 0,
        "filtered opens are counted"
    );
}

#[test]
fn renames_and_unlinks_are_reported() {
    let h = harness();
    let tag = unique();
    let from = h.dir.join(format!("watched/report-{tag}.dcm"));
    let to = h.dir.join(format!("watched/report-{tag}.dcm.locked"));
    std::fs::write(&from, "DICM").unwrap();
    let (pid_mv, _) = run(Command::new("mv").arg(&from).arg(&to));
    let e = wait_for("rename", |e| {
        e.process.pid == pid_mv && matches!(e.kind, EventKind::Rename { .. })
    });
    assert_eq!(
        e.kind,
        EventKind::Rename {
            from: from.display().to_string(),
            to: to.display().to_string(),
            ret: 0
        }
    );
    let (pid_rm, _) = run(Command::new("rm").arg(&to));
    let e = wait_for("unlink", |e| {
        e.process.pid == pid_rm && matches!(e.kind, EventKind::Unlink { .. })
    });
    assert_eq!(
        e.kind,
        EventKind::Unlink {
            path: to.display().to_string(),
            ret: 0
        }
    );
    assert_eq!(e.process.comm, "rm");
}

#[test]
fn loopback_connect_and_accept_are_reported() {
    harness();
    let (pid, out) = run(actor().arg("listen-connect"));
    let port: u16 = value(&out, "port").parse().unwrap();
    let client_port: u16 = value(&out, "client_port").parse().unwrap();
    let lo = |port| NetAddr::Inet {
        ip: "127.0.0.1".parse().unwrap(),
        port,
    };
    let e = wait_for("bind", |e| {
        e.process.pid == pid && matches!(e.kind, EventKind::Bind { .. })
    });
    assert_eq!(
        e.kind,
        EventKind::Bind {
            addr: lo(0),
            ret: 0
        }
    );
    let e = wait_for("listen", |e| {
        e.process.pid == pid && matches!(e.kind, EventKind::Listen { .. })
    });
    let EventKind::Listen { addr, ret, .. } = e.kind else {
        unreachable!()
    };
    assert_eq!((addr, ret), (Some(lo(0)), 0));
    let e = wait_for("connect", |e| {
        e.process.pid == pid && matches!(e.kind, EventKind::Connect { .. })
    });
    assert_eq!(
        e.kind,
        EventKind::Connect {
            addr: lo(port),
            ret: 0
        }
    );
    let e = wait_for("accept", |e| {
        e.process.pid == pid && matches!(e.kind, EventKind::Accept { .. })
    });
    let EventKind::Accept { peer, local, ret } = e.kind else {
        unreachable!()
    };
    assert_eq!(peer, Some(lo(client_port)));
    assert_eq!(local, Some(lo(0)));
    assert!(ret >= 0);
}

#[test]
fn setuid_is_reported_with_the_requested_id() {
    harness();
    let (pid, out) = run(actor().args(["setuid", "65534"]));
    assert_eq!(value(&out, "ret"), "0");
    let e = wait_for("setuid", |e| {
        e.process.pid == pid && matches!(e.kind, EventKind::CredChange { .. })
    });
    assert_eq!(
        e.kind,
        EventKind::CredChange {
            call: CredCall::Setuid,
            real: None,
            effective: Some(65534),
            saved: None,
            ret: 0
        }
    );
    assert_eq!(e.process.uid, 0, "uid before the change");
}

#[test]
fn ptrace_of_a_child_is_reported_with_target_and_fork() {
    harness();
    let (pid, out) = run(actor().arg("ptrace"));
    let target: u32 = value(&out, "target").parse().unwrap();
    assert_eq!(value(&out, "ret"), "0");
    let e = wait_for("ptrace", |e| {
        e.process.pid == pid && matches!(e.kind, EventKind::Ptrace { .. })
    });
    assert_eq!(
        e.kind,
        EventKind::Ptrace {
            request: libc::PTRACE_ATTACH as i64,
            target,
            ret: 0
        }
    );
    wait_for("fork", |e| {
        e.process.pid == pid && e.kind == EventKind::Fork { child_pid: target }
    });
    let killed = wait_for("exit", |e| {
        e.process.pid == target && matches!(e.kind, EventKind::Exit { .. })
    });
    assert_eq!(
        killed.kind,
        EventKind::Exit {
            code: 0,
            signal: Some(libc::SIGKILL)
        }
    );
}

#[test]
fn module_load_attempt_is_reported_with_its_result() {
    harness();
    let (pid, out) = run(actor().arg("finit-module"));
    let errno: i64 = value(&out, "errno").parse().unwrap();
    assert_ne!(errno, 0, "loading /dev/null as a module must fail");
    let e = wait_for("module", |e| {
        e.process.pid == pid && matches!(e.kind, EventKind::Module { .. })
    });
    assert_eq!(
        e.kind,
        EventKind::Module {
            op: ModuleOp::FinitModule,
            name: Some("heir_test_params".into()),
            ret: -errno
        }
    );
}

#[test]
fn memfd_create_is_reported() {
    harness();
    let name = format!("payload-{}", unique());
    let (pid, out) = run(actor().args(["memfd", &name]));
    let fd: i64 = value(&out, "ret").parse().unwrap();
    let e = wait_for("memfd", |e| {
        e.process.pid == pid && matches!(e.kind, EventKind::MemfdCreate { .. })
    });
    assert_eq!(
        e.kind,
        EventKind::MemfdCreate {
            name,
            flags: 0,
            ret: fd
        }
    );
}

#[test]
fn a_burst_of_file_writes_is_aggregated_in_the_kernel() {
    let h = harness();
    let dir = h.dir.join(format!("plain/burst-{}", unique()));
    std::fs::create_dir_all(&dir).unwrap();
    let (pid, _) = run(Command::new("sh").arg("-c").arg(format!(
        "for i in $(seq 1 80); do : > {}/f$i; done",
        dir.display()
    )));
    let own = |e: &Event| {
        matches!(
            e.kind,
            EventKind::FileBurst {
                children: false,
                ..
            }
        )
    };
    let e = wait_for("file_burst", |e| e.process.pid == pid && own(e));
    let EventKind::FileBurst {
        writes, window_ms, ..
    } = e.kind
    else {
        unreachable!()
    };
    assert!(writes >= 50, "{writes} writes counted");
    assert_eq!(window_ms, 1000);
    waited_for_exit(pid);
    let bursts = events_of(pid).iter().filter(|e| own(e)).count();
    assert_eq!(bursts, 1, "one report per window, not one per file");
    let opens = events_of(pid)
        .iter()
        .filter(|e| matches!(e.kind, EventKind::Open { .. }))
        .count();
    assert_eq!(
        opens, 0,
        "writes outside watched prefixes stay in the kernel"
    );
}

#[test]
fn nothing_is_lost_at_test_rates() {
    const OPENS: usize = 2000;
    let h = harness();
    // A watched path, so that every open goes through the ring buffer to userspace.
    let path = h.dir.join(format!("watched/loop-{}", unique()));
    std::fs::write(&path, "l").unwrap();
    let (pid, _) = run(actor().args([
        "open-loop".as_ref(),
        path.as_os_str(),
        OPENS.to_string().as_ref(),
    ]));
    waited_for_exit(pid);
    let opens = events_of(pid)
        .iter()
        .filter(|e| matches!(&e.kind, EventKind::Open { path: p, .. } if Path::new(p) == path))
        .count();
    let c = h.counters.lock().unwrap().clone().expect("counters");
    let t = c.total();
    assert_eq!(t.lost, 0, "ring buffer overflowed: {c:?}");
    assert_eq!(opens, OPENS, "every open of the watched file arrived");
}
