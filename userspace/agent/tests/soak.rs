//! `kill -9` of the real agent at random moments, under an event and alert load: after each
//! restart nothing it had committed is lost. Alerts the API had returned are still there,
//! acknowledgements made through the API still hold, a block made through the API is still in
//! the kernel's pinned map, the store opens, and every JSON state file still parses.
//!
//! The default test run does `HEIR_SOAK_ROUNDS` rounds (10 unless set); `cargo xtask soak`
//! runs 100 and prints the figures.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use heir_testkit::{Reap, ip, poll};

const HEIR: &str = env!("CARGO_BIN_EXE_heir");

/// A network namespace holding one veth pair for the agent's packet sensor, and the pin
/// directory of its kernel maps; both removed when the test ends.
struct Place {
    netns: String,
    pin_dir: PathBuf,
}

impl Place {
    fn new() -> Self {
        let id = format!(
            "{:x}{:x}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_micros()
        );
        let netns = format!("hsk{id}");
        let place = Place {
            pin_dir: PathBuf::from(format!("/sys/fs/bpf/heir-soak-{id}")),
            netns,
        };
        ip(&["netns", "add", &place.netns]);
        ip(&[
            "-n",
            &place.netns,
            "link",
            "add",
            "sk0",
            "type",
            "veth",
            "peer",
            "name",
            "sk1",
        ]);
        ip(&["-n", &place.netns, "link", "set", "sk0", "up"]);
        ip(&["-n", &place.netns, "link", "set", "sk1", "up"]);
        place
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.netns])
            .status();
        let _ = std::fs::remove_dir_all(&self.pin_dir);
    }
}

fn start(place: &Place, data: &Path) -> Reap {
    let mut agent = Reap(
        Command::new("nsenter")
            .arg(format!("--net=/var/run/netns/{}", place.netns))
            .arg(HEIR)
            .args(["agent", "--iface", "sk0", "--data-dir"])
            .arg(data)
            .arg("--pin-dir")
            .arg(&place.pin_dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting heir agent"),
    );
    heir_testkit::ready(&mut agent.0, Duration::from_secs(60));
    agent
}

/// One API call over the agent's socket; the status code and the body.
fn api(data: &Path, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    let mut cmd = Command::new("curl");
    cmd.args([
        "-s",
        "-m",
        "10",
        "-w",
        "\n%{http_code}",
        "-X",
        method,
        "--unix-socket",
    ])
    .arg(data.join("api.sock"));
    if let Some(b) = body {
        cmd.args(["-H", "content-type: application/json", "-d", b]);
    }
    let out = cmd
        .arg(format!("http://heir{path}"))
        .output()
        .expect("NOT RUN: curl is missing (cargo xtask setup installs it)");
    let text = String::from_utf8_lossy(&out.stdout);
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "000"));
    (code.parse().unwrap_or(0), body.to_owned())
}

/// Every stored alert the API returns: seq → acknowledged.
fn alerts(data: &Path) -> BTreeMap<u64, bool> {
    let (code, body) = api(data, "GET", "/v1/alerts?limit=10000", None);
    assert_eq!(code, 200, "GET /v1/alerts: {body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("alerts are JSON");
    let page = v.as_array().expect("an array of alerts");
    assert!(page.len() < 10_000, "more alerts than one page holds");
    page.iter()
        .map(|a| (a["seq"].as_u64().unwrap(), a["acknowledged"].is_object()))
        .collect()
}

fn pinned_blocks(place: &Place) -> String {
    let out = Command::new(HEIR)
        .args(["blocks", "--json", "--pin-dir"])
        .arg(&place.pin_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "heir blocks: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A small xorshift generator: the kill moments vary from round to round and from run to run,
/// and the seed is printed so a failing run can be replayed.
struct Moments(u64);

impl Moments {
    fn next_ms(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below
    }
}

#[test]
fn kill_9_under_load_loses_nothing_committed() {
    // SAFETY: geteuid has no preconditions.
    assert!(
        unsafe { libc::geteuid() } == 0,
        "NOT RUN: the soak drives the real agent and its kernel programs; it needs root (CI runs as root)"
    );
    let rounds: u32 = std::env::var("HEIR_SOAK_ROUNDS")
        .ok()
        .map(|v| v.parse().expect("HEIR_SOAK_ROUNDS is a number"))
        .unwrap_or(10);
    let seed = std::env::var("HEIR_SOAK_SEED")
        .ok()
        .map(|v| v.parse().expect("HEIR_SOAK_SEED is a number"))
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("soak: {rounds} rounds, HEIR_SOAK_SEED={seed}");
    let mut moments = Moments(seed);
    let place = Place::new();
    let data = tempfile::tempdir().unwrap();

    // The load: credential reads (alerts) and ordinary commands (events), until the test ends.
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut n: u64 = 0;
            while !stop.load(Ordering::Relaxed) && n < 1_000_000 {
                let _ = Command::new("cat")
                    .arg("/etc/shadow")
                    .stdout(Stdio::null())
                    .status();
                for _ in 0..3 {
                    let _ = Command::new("ls")
                        .arg("/etc")
                        .stdout(Stdio::null())
                        .status();
                }
                n += 1;
                // About ten alerts a second: a 100-round soak stays within one API page.
                std::thread::sleep(Duration::from_millis(100));
            }
            n
        })
    };

    let mut committed: BTreeMap<u64, bool> = BTreeMap::new();
    let mut blocked: BTreeSet<String> = BTreeSet::new();
    let t0 = Instant::now();
    for round in 0..rounds {
        let agent = start(&place, data.path());

        // What the previous rounds had committed is all still there.
        let now = alerts(data.path());
        let lost: Vec<_> = committed.keys().filter(|s| !now.contains_key(s)).collect();
        assert!(
            lost.is_empty(),
            "round {round}: committed alerts lost: {lost:?}"
        );
        let unacked: Vec<_> = committed
            .iter()
            .filter(|(s, acked)| **acked && !now[s])
            .collect();
        assert!(
            unacked.is_empty(),
            "round {round}: acknowledgements lost: {unacked:?}"
        );
        let pinned = pinned_blocks(&place);
        for addr in &blocked {
            assert!(
                pinned.contains(&format!("\"{addr}\"")),
                "round {round}: the block of {addr} is gone from the kernel: {pinned}"
            );
        }
        for entry in std::fs::read_dir(data.path()).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "json") {
                let text = std::fs::read_to_string(&path).unwrap();
                serde_json::from_str::<serde_json::Value>(&text).unwrap_or_else(|e| {
                    panic!("round {round}: {} is damaged: {e}", path.display())
                });
            }
        }

        // This round's work: an alert acknowledged and an address blocked through the API.
        let fresh = poll(
            &format!("round {round}: a new alert stored"),
            Duration::from_secs(20),
            || {
                let a = alerts(data.path());
                let max_before = committed.keys().next_back().copied().unwrap_or(0);
                a.keys().copied().find(|s| *s > max_before).map(|_| a)
            },
        );
        let seq = *fresh.keys().next_back().unwrap();
        let (code, body) = api(data.path(), "POST", &format!("/v1/alerts/{seq}/ack"), None);
        assert_eq!(code, 200, "round {round}: ack {seq}: {body}");
        let addr = format!("198.51.100.{}", 1 + round % 250);
        let (code, body) = api(
            data.path(),
            "POST",
            "/v1/block",
            Some(&format!(
                "{{\"addr\":\"{addr}\",\"ttl_secs\":86400,\"reason\":\"soak round {round}\"}}"
            )),
        );
        assert_eq!(code, 200, "round {round}: block {addr}: {body}");
        // Committed: what the API has answered, as a user would have seen it.
        let seen = alerts(data.path());
        for (s, acked) in seen {
            let e = committed.entry(s).or_insert(false);
            *e |= acked;
        }
        assert_eq!(
            committed.get(&seq),
            Some(&true),
            "round {round}: ack not shown"
        );
        blocked.insert(addr);

        // Then kill -9 at a random moment while the load goes on.
        std::thread::sleep(Duration::from_millis(moments.next_ms(1500)));
        let mut agent = agent;
        // SAFETY: signalling our own child.
        unsafe { libc::kill(agent.0.id() as i32, libc::SIGKILL) };
        heir_testkit::exit_within(&mut agent.0, Duration::from_secs(10), "the killed agent");
    }
    stop.store(true, Ordering::Relaxed);
    let loops = load.join().unwrap();

    // A last start: the final round's state survived too.
    let _agent = start(&place, data.path());
    let now = alerts(data.path());
    let lost = committed.keys().filter(|s| !now.contains_key(s)).count();
    let unacked = committed
        .iter()
        .filter(|(s, acked)| **acked && !now.get(s).copied().unwrap_or(false))
        .count();
    let pinned = pinned_blocks(&place);
    let gone = blocked
        .iter()
        .filter(|a| !pinned.contains(&format!("\"{a}\"")))
        .count();
    eprintln!(
        "soak: {rounds} kill -9 rounds in {:.0}s under {loops} load loops; {} alerts committed, {} acknowledged, {} blocks; lost {lost} alerts, {unacked} acknowledgements, {gone} blocks",
        t0.elapsed().as_secs_f64(),
        committed.len(),
        committed.values().filter(|a| **a).count(),
        blocked.len(),
    );
    assert_eq!(
        (lost, unacked, gone),
        (0, 0, 0),
        "state lost across kill -9"
    );
}
