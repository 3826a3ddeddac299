//! The packet sensor on real traffic: a device namespace and an attacker namespace joined by
//! a veth pair, heir's XDP program on the device's end, and `heir block` / `heir unblock`
//! run as a sysadmin would.
//!
//! Needs root; without it the test fails saying so. Namespaces, links and pinned tables have
//! names unique to this run and are removed afterwards, also when the test fails.

use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use heir_abi::packet::Counter;
use heir_agent::sensor::xdp::{Mode, Options, Packets};
use heir_testkit::{Reap, alert_lines, ip, poll};

const HEIR: &str = env!("CARGO_BIN_EXE_heir");

/// Two namespaces and a veth pair, deleted on drop.
struct Net {
    device: String,
    attacker: String,
    dev_if: String,
    pin_dir: PathBuf,
    subnet: u8,
}

impl Drop for Net {
    fn drop(&mut self) {
        for ns in [&self.device, &self.attacker] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        let _ = std::fs::remove_dir_all(&self.pin_dir);
    }
}

impl Net {
    fn new() -> Net {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            panic!("NOT RUN: the network-namespace tests need root (CI runs them as root)");
        }
        if !Packets::has_object() {
            panic!("NOT RUN: heir was built without its eBPF programs (AYA_BUILD_SKIP?)");
        }
        let id = format!("{}{}", std::process::id() % 100_000, unique());
        let net = Net {
            device: format!("hx-dev-{id}"),
            attacker: format!("hx-att-{id}"),
            dev_if: format!("hxd{id}"),
            pin_dir: PathBuf::from(format!("/sys/fs/bpf/heir-netns-{id}")),
            subnet: (std::process::id() % 200) as u8 + 20,
        };
        ip(&["netns", "add", &net.device]);
        ip(&["netns", "add", &net.attacker]);
        net.link();
        net
    }

    /// (Re)creates the veth pair with its addresses.
    fn link(&self) {
        let att_if = self.dev_if.replace("hxd", "hxa");
        ip(&[
            "-n",
            &self.attacker,
            "link",
            "add",
            &att_if,
            "type",
            "veth",
            "peer",
            "name",
            &self.dev_if,
            "netns",
            &self.device,
        ]);
        let dev = format!("{}/24", self.addr(1));
        let att = format!("{}/24", self.addr(2));
        ip(&["-n", &self.device, "addr", "add", &dev, "dev", &self.dev_if]);
        ip(&["-n", &self.attacker, "addr", "add", &att, "dev", &att_if]);
        for (ns, link) in [(&self.device, &self.dev_if), (&self.attacker, &att_if)] {
            ip(&["-n", ns, "link", "set", link, "up"]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
    }

    fn addr(&self, host: u8) -> String {
        format!("10.231.{}.{host}", self.subnet)
    }

    fn heir(&self, args: &[&str]) -> String {
        let out = Command::new(HEIR)
            .args(args)
            .arg("--pin-dir")
            .arg(&self.pin_dir)
            .output()
            .expect("running heir");
        assert!(
            out.status.success(),
            "heir {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// Starts `heir agent` on the device-facing interface of `net` (nsenter changes the network
/// namespace only, so it shares bpffs with `heir block`), with `extra` arguments, and waits
/// for its `ready` line.
fn agent_in(net: &Net, data: &Path, extra: &[&std::ffi::OsStr]) -> Reap {
    let mut agent = Reap(
        Command::new("nsenter")
            .arg(format!("--net=/var/run/netns/{}", net.device))
            .arg(HEIR)
            .args(["agent", "--iface", &net.dev_if, "--data-dir"])
            .arg(data)
            .arg("--pin-dir")
            .arg(&net.pin_dir)
            .args(extra)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("starting heir agent"),
    );
    heir_testkit::ready(&mut agent.0, Duration::from_secs(60));
    agent
}

/// A bounded nmap SYN scan of the device from the attacker namespace.
fn nmap_scan(net: &Net) {
    let scan = Command::new("ip")
        .args(["netns", "exec", &net.attacker])
        .args([
            "nmap",
            "-sS",
            "-Pn",
            "-n",
            "-p",
            "1-300",
            "--max-retries",
            "0",
            "-T4",
        ])
        .arg(net.addr(1))
        .output()
        .expect("NOT RUN: nmap is missing (cargo xtask setup installs it)");
    assert!(
        scan.status.success(),
        "nmap: {}",
        String::from_utf8_lossy(&scan.stderr)
    );
}

fn unique() -> u32 {
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed) as u32
}

/// Runs `f` on a thread that has entered network namespace `ns`.
fn in_netns<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    let path = format!("/var/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        use std::os::fd::AsRawFd;
        // SAFETY: a valid namespace fd; only this thread changes namespace.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
        f()
    })
}

#[test]
fn block_stops_real_traffic_within_a_second_and_unblock_restores_it() {
    let net = Net::new();
    // The XDP program on the device's end of the veth, attached from inside its namespace.
    let options = Options {
        pin_dir: net.pin_dir.clone(),
        flow_entries: 4096,
        ring_bytes: 1 << 16,
        ..Options::default()
    };
    let dev_if = net.dev_if.clone();
    let opts = options.clone();
    let (packets, mode) = in_netns(&net.device, move || {
        let mut p = Packets::load(&opts).expect("loading XDP");
        let mode = p.attach(&dev_if).expect("attaching XDP to the veth");
        (p, mode)
    })
    .join()
    .unwrap();
    // veth supports XDP in the driver.
    assert_eq!(mode, Mode::Driver);

    // The device: a UDP echo service and a TCP service.
    let stop = Arc::new(AtomicBool::new(false));
    let dev_addr: SocketAddr = format!("{}:7007", net.addr(1)).parse().unwrap();
    let s = stop.clone();
    let echo = in_netns(&net.device, move || {
        let sock = UdpSocket::bind(dev_addr).unwrap();
        let tcp = TcpListener::bind(dev_addr).unwrap();
        tcp.set_nonblocking(true).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let mut buf = [0u8; 64];
        while !s.load(Ordering::Relaxed) {
            if let Ok((n, from)) = sock.recv_from(&mut buf) {
                let _ = sock.send_to(&buf[..n], from);
            }
            let _ = tcp.accept();
        }
    });

    // The attacker: sends a datagram every 20 ms and records when replies come back.
    let last_reply = Arc::new(AtomicU64::new(0));
    let replies = Arc::new(AtomicU64::new(0));
    let t0 = Instant::now();
    let (s, last, count) = (stop.clone(), last_reply.clone(), replies.clone());
    let client = in_netns(&net.attacker, move || {
        let sock = UdpSocket::bind("0.0.0.0:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let mut buf = [0u8; 64];
        while !s.load(Ordering::Relaxed) {
            let _ = sock.send_to(b"ping", dev_addr);
            while let Ok((n, _)) = sock.recv_from(&mut buf) {
                if &buf[..n] == b"ping" {
                    last.store(t0.elapsed().as_millis() as u64, Ordering::Relaxed);
                    count.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    });
    let tcp_connects = |net: &Net| {
        in_netns(&net.attacker, move || {
            TcpStream::connect_timeout(&dev_addr, Duration::from_millis(300)).is_ok()
        })
        .join()
        .unwrap()
    };

    let wait_replies = |min: u64| {
        let deadline = Instant::now() + Duration::from_secs(5);
        while replies.load(Ordering::Relaxed) < min {
            assert!(
                Instant::now() < deadline,
                "no echo replies: the namespaces do not talk"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    wait_replies(5);
    assert!(
        tcp_connects(&net),
        "TCP to the device works before the block"
    );

    // Block the attacker.
    let attacker = net.addr(2);
    let out = net.heir(&["block", &attacker, "--ttl", "10m", "--reason", "netns test"]);
    assert!(out.contains(&format!("blocked {attacker}")), "{out}");
    let blocked_at = t0.elapsed().as_millis() as u64;
    std::thread::sleep(Duration::from_millis(1000));
    let since = replies.load(Ordering::Relaxed);
    let last_ms = last_reply.load(Ordering::Relaxed);
    assert!(
        last_ms < blocked_at + 1000,
        "a reply came {} ms after the block",
        last_ms - blocked_at
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        replies.load(Ordering::Relaxed),
        since,
        "replies still arrive while blocked"
    );
    assert!(
        !tcp_connects(&net),
        "TCP to the device still works while blocked"
    );
    let listing = net.heir(&["blocks"]);
    assert!(
        listing.contains(&attacker) && listing.contains("netns test"),
        "{listing}"
    );
    let counters = packets.counters().unwrap();
    assert!(counters.get(Counter::Dropped) > 0);

    // An agent restart: the program is detached and loaded anew; the block holds.
    drop(packets);
    let dev_if = net.dev_if.clone();
    let packets = in_netns(&net.device, move || {
        let mut p = Packets::load(&options).expect("reloading XDP");
        p.attach(&dev_if).expect("re-attaching");
        p
    })
    .join()
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let before = replies.load(Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        replies.load(Ordering::Relaxed),
        before,
        "the block did not survive the reload"
    );
    assert!(packets.counters().unwrap().get(Counter::Dropped) > 0);

    // Unblock: traffic returns within a second.
    let out = net.heir(&["unblock", &attacker]);
    assert!(out.contains("unblocked"), "{out}");
    let unblocked = Instant::now();
    let before = replies.load(Ordering::Relaxed);
    while replies.load(Ordering::Relaxed) == before {
        assert!(
            unblocked.elapsed() < Duration::from_secs(1),
            "no reply within a second of the unblock"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(tcp_connects(&net), "TCP works again after the unblock");
    assert!(net.heir(&["blocks"]).contains("no blocks"));

    stop.store(true, Ordering::Relaxed);
    client.join().unwrap();
    echo.join().unwrap();
    drop(packets);
}

/// Echo round trips from the attacker to the device that succeed out of `n`.
fn echoes(net: &Net, n: usize) -> usize {
    let dev_addr: SocketAddr = format!("{}:7008", net.addr(1)).parse().unwrap();
    let server = in_netns(&net.device, move || {
        let sock = UdpSocket::bind(dev_addr).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let mut buf = [0u8; 16];
        let end = Instant::now() + Duration::from_millis(150 * n as u64 + 300);
        while Instant::now() < end {
            if let Ok((k, from)) = sock.recv_from(&mut buf) {
                let _ = sock.send_to(&buf[..k], from);
            }
        }
    });
    let ok = in_netns(&net.attacker, move || {
        std::thread::sleep(Duration::from_millis(50));
        let sock = UdpSocket::bind("0.0.0.0:0").unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let mut buf = [0u8; 16];
        (0..n)
            .filter(|_| {
                let _ = sock.send_to(b"hi", dev_addr);
                sock.recv_from(&mut buf).is_ok()
            })
            .count()
    })
    .join()
    .unwrap();
    server.join().unwrap();
    ok
}

/// `heir agent --iface` inside the device namespace: attaches in driver mode and says so,
/// enforces blocks made with `heir block`, and re-attaches by itself when the interface is
/// deleted and created again.
#[test]
fn the_agent_attaches_to_its_interfaces_and_follows_them() {
    let net = Net::new();
    let data = tempfile::tempdir().unwrap();
    // nsenter changes the network namespace only, so the agent and `heir block` share bpffs.
    let mut agent = Reap(
        Command::new("nsenter")
            .arg(format!("--net=/var/run/netns/{}", net.device))
            .arg(HEIR)
            .args(["agent", "--iface", &net.dev_if, "--data-dir"])
            .arg(data.path())
            .arg("--pin-dir")
            .arg(&net.pin_dir)
            .arg("--packet-events")
            .arg(data.path().join("packets.jsonl"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("starting heir agent"),
    );
    let stderr = agent.0.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let expect = |what: &str| {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut seen = Vec::new();
        while Instant::now() < deadline {
            if let Ok(line) = rx.recv_timeout(Duration::from_millis(100)) {
                if line.contains(what) {
                    return;
                }
                seen.push(line);
            }
        }
        panic!("the agent never said `{what}`; it said: {seen:#?}");
    };
    expect(&format!("packet sensor on {} (driver mode)", net.dev_if));
    assert_eq!(echoes(&net, 5), 5, "traffic flows with the sensor attached");
    dicom_association(&net);

    let attacker = net.addr(2);
    net.heir(&["block", &attacker]);
    assert_eq!(echoes(&net, 3), 0, "the agent's program enforces the block");

    // The interface goes away and comes back: the agent attaches to the new one.
    ip(&["-n", &net.device, "link", "del", &net.dev_if]);
    net.link();
    expect(&format!(
        "packet sensor re-attached to {} (driver mode)",
        net.dev_if
    ));
    assert_eq!(
        echoes(&net, 3),
        0,
        "the block holds on the re-created interface"
    );
    net.heir(&["unblock", &attacker]);
    assert_eq!(echoes(&net, 5), 5, "traffic returns after the unblock");

    // Flow and protocol events reached the agent's pipeline...
    let path = data.path().join("packets.jsonl");
    let deadline = Instant::now() + Duration::from_secs(5);
    let events = loop {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        if text.contains("MODALITY01") || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let lines: Vec<serde_json::Value> = events
        .lines()
        .map(|l| serde_json::from_str(l).expect("packet events are JSON"))
        .collect();
    let dev = net.addr(1);
    assert!(
        lines.iter().any(|v| v["kind"] == "protocol"
            && v["observation"]["protocol"] == "dicom"
            && v["observation"]["calling_ae"] == "MODALITY01"
            && v["observation"]["called_ae"] == "PACS"
            && v["dst"] == dev.as_str()),
        "no DICOM association among {lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|v| v["kind"] == "dropped" && v["src"] == attacker.as_str())
    );
    assert!(
        lines
            .iter()
            .any(|v| v["kind"] == "flow" && v["dst_port"] == 7008)
    );

    // A block made through the API holds in the kernel for its TTL, then lifts by itself.
    let out = Command::new("curl")
        .args(["-s", "-m", "10", "-w", "\n%{http_code}", "--unix-socket"])
        .arg(data.path().join("api.sock"))
        .args(["-H", "content-type: application/json", "-d"])
        .arg(format!(
            r#"{{"addr":"{attacker}","ttl_secs":5,"reason":"api ttl test"}}"#
        ))
        .arg("http://heir/v1/block")
        .output()
        .expect("curl");
    let reply = String::from_utf8_lossy(&out.stdout);
    assert!(reply.ends_with("\n200"), "POST /v1/block: {reply}");
    assert_eq!(echoes(&net, 3), 0, "the API's block holds in the kernel");
    let lifted = heir_testkit::try_poll(Duration::from_secs(20), || {
        (!net.heir(&["blocks"]).contains(&attacker) && echoes(&net, 3) == 3).then_some(())
    });
    assert!(
        lifted.is_some(),
        "the API block with a 5 s TTL still held after 20 s: {}",
        net.heir(&["blocks"])
    );

    // The running agent removes expired blocks from the tables.
    let passer_by = net.addr(3);
    net.heir(&["block", &passer_by, "--ttl", "1s"]);
    assert!(net.heir(&["blocks"]).contains(&passer_by));
    let deadline = Instant::now() + Duration::from_secs(6);
    while net.heir(&["blocks"]).contains(&passer_by) {
        assert!(
            Instant::now() < deadline,
            "the expired block was never removed"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // ...and the device serving DICOM joined the inventory, which the agent saves on exit.
    // SAFETY: signalling our own child.
    unsafe { libc::kill(agent.0.id() as i32, libc::SIGTERM) };
    heir_testkit::exit_within(
        &mut agent.0,
        Duration::from_secs(30),
        "the agent, after SIGTERM,",
    );
    let out = Command::new(HEIR)
        .args(["devices", "--json", "--data-dir"])
        .arg(data.path())
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        listing.contains(&dev),
        "the device is not in the inventory: {listing}"
    );
    assert!(
        listing.contains("PACS"),
        "its AE title is not in the inventory: {listing}"
    );
}

/// A DICOM A-ASSOCIATE-RQ from the attacker to a DICOM port on the device.
fn dicom_association(net: &Net) {
    use std::io::{Read, Write};
    let addr: SocketAddr = format!("{}:104", net.addr(1)).parse().unwrap();
    let server = in_netns(&net.device, move || {
        let l = TcpListener::bind(addr).unwrap();
        let (mut c, _) = l.accept().unwrap();
        let mut buf = [0u8; 256];
        let _ = c.read(&mut buf);
    });
    in_netns(&net.attacker, move || {
        std::thread::sleep(Duration::from_millis(100));
        let mut c = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).unwrap();
        c.write_all(&heir_packet::samples::dicom_associate())
            .unwrap();
    })
    .join()
    .unwrap();
    server.join().unwrap();
}

/// The block commands name what is wrong with their input and change nothing then.
#[test]
fn block_commands_explain_bad_input() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        panic!("NOT RUN: the block commands need root (CI runs them as root)");
    }
    let dir = PathBuf::from(format!(
        "/sys/fs/bpf/heir-cli-{}-{}",
        std::process::id(),
        unique()
    ));
    struct Rm(PathBuf);
    impl Drop for Rm {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let _rm = Rm(dir.clone());
    let heir = |args: &[&str]| {
        let out = Command::new(HEIR)
            .args(args)
            .arg("--pin-dir")
            .arg(&dir)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (ok, msg) = heir(&["block", "pacs.example"]);
    assert!(
        !ok && msg.contains("`pacs.example` is not an address to block"),
        "{msg}"
    );
    let (ok, msg) = heir(&["block", "10.0.0.1/40"]);
    assert!(!ok && msg.contains("at most 32 bits"), "{msg}");
    let (ok, msg) = heir(&["block", "10.0.0.1", "--ttl", "5w"]);
    assert!(!ok && msg.contains("unknown unit"), "{msg}");
    let (ok, msg) = heir(&["unblock", "10.0.0.1"]);
    assert!(!ok && msg.contains("was not blocked"), "{msg}");
    let (ok, msg) = heir(&["blocks"]);
    assert!(ok && msg.contains("no blocks"), "{msg}");
    let (ok, _) = heir(&["protect", "10.0.0.0/30"]);
    assert!(ok);
    let (ok, msg) = heir(&["block", "10.0.0.2"]);
    assert!(!ok && msg.contains("protected"), "{msg}");
    let (ok, msg) = heir(&["block", "10.0.0.0/24", "--reason", "worm"]);
    assert!(
        ok && msg.contains("10.0.0.0/30 is protected and stays reachable"),
        "{msg}"
    );
    let (ok, msg) = heir(&["blocks", "--json"]);
    assert!(ok, "{msg}");
    let v: serde_json::Value = serde_json::from_str(&msg).unwrap();
    assert_eq!(v["blocks"][0]["target"], "10.0.0.0/24");
    assert_eq!(v["blocks"][0]["reason"], "worm");
    assert_eq!(v["blocks"][0]["origin"], "operator");
    assert_eq!(v["protected"][0], "10.0.0.0/30");
}

/// Real clients through the sensor: `openssl s_client -tls1` against an `openssl s_server`
/// limited to TLS 1.0 on the DICOM-over-TLS port, and `curl -u` against an HTTP admin page.
#[test]
fn real_clients_are_recognised() {
    use heir_model::event::Observation;
    use heir_model::tls::{TlsVersion, best_offered};
    use heir_model::{BootClock, EventKind};
    use std::io::{Read, Write};

    let net = Net::new();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _in_runtime = rt.enter();
    let options = Options {
        pin_dir: net.pin_dir.clone(),
        flow_entries: 4096,
        ring_bytes: 1 << 20,
        ..Options::default()
    };
    let dev_if = net.dev_if.clone();
    let mut packets = in_netns(&net.device, move || {
        let mut p = Packets::load(&options).expect("loading XDP");
        p.attach(&dev_if).expect("attaching XDP");
        p
    })
    .join()
    .unwrap();
    let mut reader = packets.reader().unwrap();

    let tmp = tempfile::tempdir().unwrap();
    let (cert, key) = (tmp.path().join("cert.pem"), tmp.path().join("key.pem"));
    let made = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=pacs",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("NOT RUN: openssl is missing (cargo xtask setup installs it)");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let tls10 = "AES128-SHA:@SECLEVEL=0";
    let _server = Reap(
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &net.device,
                "openssl",
                "s_server",
                "-quiet",
                "-tls1",
            ])
            .args(["-accept", "2762", "-cipher", tls10])
            .arg("-cert")
            .arg(&cert)
            .arg("-key")
            .arg(&key)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let target = format!("{}:2762", net.addr(1));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = Command::new("timeout")
            .args([
                "5",
                "ip",
                "netns",
                "exec",
                &net.attacker,
                "openssl",
                "s_client",
                "-tls1",
            ])
            .args(["-cipher", tls10, "-connect", &target])
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        if String::from_utf8_lossy(&out.stdout).contains("Protocol  : TLSv1") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "s_client never completed a TLS 1.0 handshake: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    let web: SocketAddr = format!("{}:8080", net.addr(1)).parse().unwrap();
    let server = in_netns(&net.device, move || {
        let l = TcpListener::bind(web).unwrap();
        let (mut c, _) = l.accept().unwrap();
        let mut buf = [0u8; 1024];
        let _ = c.read(&mut buf);
        let _ = c.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok");
    });
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            &net.attacker,
            "curl",
            "-s",
            "-m",
            "5",
            "-u",
            "admin:secret",
        ])
        .arg(format!("http://{web}/admin/settings?x=1"))
        .output()
        .expect("NOT RUN: curl is missing (cargo xtask setup installs it)");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok");
    server.join().unwrap();

    let mut decoder = heir_packet::Decoder::new(BootClock::now());
    let mut events = Vec::new();
    rt.block_on(async {
        for _ in 0..30 {
            reader
                .read_batch(|b| decoder.decode(b, &mut events).expect("records decode"))
                .await
                .unwrap();
        }
    });
    let protos: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Protocol { observation, .. } => Some(observation),
            _ => None,
        })
        .collect();
    // The TLS 1.0 hello on the DICOM-over-TLS port is DICOM over TLS, with what it offered.
    let Some(Observation::DicomTls {
        versions,
        cipher_suites,
        ja4,
    }) = protos
        .iter()
        .find(|p| matches!(p, Observation::DicomTls { .. }))
    else {
        panic!("no TLS ClientHello recognised: {protos:#?}")
    };
    assert_eq!(*versions, vec![0x0301]);
    assert!(cipher_suites.contains(&0x002f), "{cipher_suites:x?}");
    assert!(ja4.starts_with("t10"), "{ja4}");
    let best = best_offered(versions).and_then(TlsVersion::from_wire);
    assert!(best.is_some_and(TlsVersion::is_obsolete), "{versions:x?}");
    let http = protos
        .iter()
        .find(|p| matches!(p, Observation::Http { .. }))
        .unwrap_or_else(|| panic!("no HTTP request recognised: {protos:#?}"));
    // Basic credentials and an administration path are flagged; neither the password nor
    // the path (which can carry patient identifiers) is kept.
    assert_eq!(
        **http,
        Observation::Http {
            method: "GET".into(),
            admin_path: true,
            basic_auth_user: None,
            basic_auth_cleartext: true,
            status: None,
            host: Some(web.ip().to_string()),
            url_digest: Some(heir_model::event::url_digest(
                &web.ip().to_string(),
                "/admin/settings"
            )),
        }
    );
    drop(packets);
}

/// A real nmap SYN scan from the attacker namespace crosses the device-facing interface: the
/// packet sensor's flows reach the detectors, which report one port-scan incident naming the
/// attacker; ordinary traffic before it raised nothing.
#[test]
fn a_real_nmap_scan_through_the_packet_sensor_raises_a_port_scan_alert() {
    let net = Net::new();
    let data = tempfile::tempdir().unwrap();
    let alerts = data.path().join("alerts.jsonl");
    let _agent = agent_in(
        &net,
        data.path(),
        &["--alerts".as_ref(), alerts.as_os_str()],
    );
    assert_eq!(echoes(&net, 5), 5, "benign traffic flows");
    let attacker = net.addr(2);
    let read_alerts = || alert_lines(&alerts);
    let scan_started = heir_model::Timestamp::now();
    nmap_scan(&net);
    let deadline = Instant::now() + Duration::from_secs(15);
    let scan_alert = loop {
        if let Some(a) = read_alerts()
            .into_iter()
            .find(|a| a["category"] == "port_scan")
        {
            break a;
        }
        assert!(
            Instant::now() < deadline,
            "no port_scan alert; alerts: {:?}",
            read_alerts()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let benign = raised_before(&read_alerts(), &["port_scan"], scan_started);
    assert!(
        benign.is_empty(),
        "benign traffic looked like a scan: {benign:?}"
    );
    assert_eq!(scan_alert["src_ip"], attacker.as_str(), "{scan_alert}");
    assert_eq!(scan_alert["attack"], "T1046", "{scan_alert}");
    let scans = read_alerts()
        .iter()
        .filter(|a| a["category"] == "port_scan")
        .count();
    assert!(scans <= 3, "one incident, not one alert per port: {scans}");
}

/// Each cleartext protocol is its own finding: a real dcmtk C-ECHO and then an HL7 v2 message
/// over MLLP between the same two hosts give one cleartext alert each, the second not folded
/// into the first.
#[test]
fn cleartext_dicom_then_hl7_between_the_same_hosts_are_two_findings() {
    use std::io::{Read, Write};
    let net = Net::new();
    let data = tempfile::tempdir().unwrap();
    let alerts = data.path().join("alerts.jsonl");
    let _agent = agent_in(
        &net,
        data.path(),
        &["--alerts".as_ref(), alerts.as_os_str()],
    );
    let store = tempfile::tempdir().unwrap();
    let _pacs = Reap(
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &net.device,
                "storescp",
                "--output-directory",
            ])
            .arg(store.path())
            .arg("104")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("NOT RUN: dcmtk is missing (cargo xtask setup installs it)"),
    );
    let pacs = net.addr(1);
    poll("a C-ECHO the PACS answers", Duration::from_secs(15), || {
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &net.attacker,
                "echoscu",
                "-to",
                "5",
                &pacs,
                "104",
            ])
            .output()
            .unwrap()
            .status
            .success()
            .then_some(())
    });
    let cleartext = || -> Vec<serde_json::Value> {
        alert_lines(&alerts)
            .into_iter()
            .filter(|a| a["category"] == "cleartext_protocol")
            .collect()
    };
    let dicom = poll("the DICOM cleartext alert", Duration::from_secs(15), || {
        cleartext().into_iter().find(|a| a["dst_port"] == 104)
    });
    assert!(dicom.to_string().contains("DICOM association"), "{dicom}");

    // An interface engine on the same host, and the same client sending it an ADT message.
    let engine: SocketAddr = format!("{pacs}:2575").parse().unwrap();
    let listener = in_netns(&net.device, move || TcpListener::bind(engine).unwrap())
        .join()
        .unwrap();
    let server = std::thread::spawn(move || {
        let (mut c, _) = listener.accept().unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 2048];
        let _ = c.read(&mut buf);
        let _ = c.write_all(
            b"\x0bMSH|^~\\&|ENGINE|HOSP|RIS|HOSP|20261204||ACK^A01|A1|P|2.5\rMSA|AA|1\r\x1c\r",
        );
    });
    in_netns(&net.attacker, move || {
        let mut c = TcpStream::connect_timeout(&engine, Duration::from_secs(5)).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        c.write_all(b"\x0bMSH|^~\\&|RIS|HOSP|ENGINE|HOSP|20261204||ADT^A01|1|P|2.5\rEVN|A01|20261204\r\x1c\r")
            .unwrap();
        let mut buf = [0u8; 512];
        let _ = c.read(&mut buf);
    })
    .join()
    .unwrap();
    server.join().unwrap();
    let hl7 = poll("the HL7 cleartext alert", Duration::from_secs(15), || {
        cleartext().into_iter().find(|a| a["dst_port"] == 2575)
    });
    assert!(hl7.to_string().contains("HL7 v2 over MLLP"), "{hl7}");
    assert_ne!(hl7["id"], dicom["id"], "HL7 is its own incident");
}

/// A scanner that comes back is news: after a pause, the same nmap scan of the same ports
/// gives a new alert line (an update of the open incident, with its grown count), however
/// well the agent already knows the attacker.
#[test]
fn a_known_scanner_scanning_again_gets_a_new_alert_line() {
    let net = Net::new();
    let data = tempfile::tempdir().unwrap();
    let alerts = data.path().join("alerts.jsonl");
    let cfg = data.path().join("heir.toml");
    std::fs::write(&cfg, "[detect.aggregate]\nupdate_secs = 5\n").unwrap();
    let _agent = agent_in(
        &net,
        data.path(),
        &[
            "--alerts".as_ref(),
            alerts.as_os_str(),
            "--config".as_ref(),
            cfg.as_os_str(),
        ],
    );
    let attacker = net.addr(2);
    let scans = || -> Vec<serde_json::Value> {
        alert_lines(&alerts)
            .into_iter()
            .filter(|a| a["category"] == "port_scan" && a["src_ip"] == attacker.as_str())
            .collect()
    };
    nmap_scan(&net);
    let first = poll("the first scan's alert", Duration::from_secs(15), || {
        scans().into_iter().next()
    });
    // The attacker pauses past the port-scan detector's rescan gap (10 s), then scans again.
    std::thread::sleep(Duration::from_secs(11));
    let lines_before = scans().len();
    nmap_scan(&net);
    let update = poll(
        "a new port_scan line for the second scan",
        Duration::from_secs(20),
        || scans().into_iter().nth(lines_before),
    );
    assert_eq!(
        update["id"], first["id"],
        "the open incident goes on: {update}"
    );
    assert!(
        update["count"].as_u64() > first["count"].as_u64(),
        "the update carries the grown count: {first} then {update}"
    );
}

/// With `port_scan = "auto"`, the responder blocks a real scanner in the kernel on its own:
/// the attacker's traffic stops, the block lists its reason, and the audit log says who did
/// it and why.
#[test]
fn the_auto_responder_blocks_a_real_scanner_and_audits_it() {
    let net = Net::new();
    let data = tempfile::tempdir().unwrap();
    let cfg = data.path().join("heir.toml");
    std::fs::write(
        &cfg,
        "[respond]\nmin_severity = \"low\"\nmin_confidence = 0.0\nttl_secs = 600\n\
         categories = { port_scan = \"auto\" }\n",
    )
    .unwrap();
    let mut agent = agent_in(&net, data.path(), &["--config".as_ref(), cfg.as_os_str()]);
    assert_eq!(echoes(&net, 3), 3, "traffic flows before the scan");
    nmap_scan(&net);
    let attacker = net.addr(2);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if net.heir(&["blocks"]).contains(&attacker) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the scanner was not blocked: {}",
            net.heir(&["blocks"])
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        echoes(&net, 3),
        0,
        "the scanner's traffic is dropped in the kernel"
    );

    // SAFETY: signalling our own child.
    unsafe { libc::kill(agent.0.id() as i32, libc::SIGTERM) };
    heir_testkit::exit_within(
        &mut agent.0,
        Duration::from_secs(30),
        "the agent, after SIGTERM,",
    );
    let out = Command::new(HEIR)
        .args(["audit", "--json", "--data-dir"])
        .arg(data.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = String::from_utf8_lossy(&out.stdout);
    let entry: serde_json::Value = log
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|e| e["action"] == "block" && e["target"] == attacker.as_str())
        .unwrap_or_else(|| panic!("no audited block of {attacker}: {log}"));
    assert_eq!(entry["actor"], "policy");
    assert_eq!(entry["outcome"], "done");
    net.heir(&["unblock", &attacker]);
    assert_eq!(echoes(&net, 3), 3, "unblocking restores the traffic");
}

/// A protected device is never blocked, even when it scans and the policy says `auto`: the
/// responder's attempt is refused by the kernel tables and audited as a refusal.
#[test]
fn the_responder_never_blocks_a_protected_device() {
    let net = Net::new();
    let data = tempfile::tempdir().unwrap();
    let cfg = data.path().join("heir.toml");
    std::fs::write(
        &cfg,
        "[respond]\nmin_severity = \"low\"\nmin_confidence = 0.0\n\
         categories = { port_scan = \"auto\" }\n",
    )
    .unwrap();
    let scanner = net.addr(2);
    std::fs::write(
        data.path().join("devices.toml"),
        format!(
            "[device.pump-1]\nname = \"Infusion pump\"\nclass = \"infusion_pump\"\nip = \"{scanner}\"\nprotected = true\n"
        ),
    )
    .unwrap();
    let mut agent = agent_in(&net, data.path(), &["--config".as_ref(), cfg.as_os_str()]);
    nmap_scan(&net);
    // The canary: the responder has decided on the scan, and refused.
    let refused = |log: &str| {
        log.lines().any(|l| {
            l.contains("\"action\":\"refuse\"") && l.contains(&scanner) && l.contains("protected")
        })
    };
    heir_testkit::poll(
        "the audited refusal to block the protected scanner",
        Duration::from_secs(20),
        || {
            let out = Command::new(HEIR)
                .args(["audit", "--json", "--data-dir"])
                .arg(data.path())
                .output()
                .unwrap();
            refused(&String::from_utf8_lossy(&out.stdout)).then_some(())
        },
    );
    let listing: serde_json::Value =
        serde_json::from_str(&net.heir(&["blocks", "--json"])).unwrap();
    assert!(
        listing["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|b| b["target"] != scanner.as_str()),
        "a protected device was blocked: {listing}"
    );
    assert!(
        listing["protected"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == scanner.as_str()),
        "the registry's protected device is in the kernel's protected table: {listing}"
    );
    assert_eq!(echoes(&net, 3), 3, "the protected device keeps its traffic");
    // SAFETY: signalling our own child.
    unsafe { libc::kill(agent.0.id() as i32, libc::SIGTERM) };
    heir_testkit::exit_within(
        &mut agent.0,
        Duration::from_secs(30),
        "the agent, after SIGTERM,",
    );
    let out = Command::new(HEIR)
        .args(["audit", "--json", "--data-dir"])
        .arg(data.path())
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(refused(&log), "no audited refusal in the stored log: {log}");
}

/// The hospital's own infrastructure is never blocked, whatever fooled a detector: here the
/// device's default gateway scans it for real (as spoofed SYNs "from" the gateway would look),
/// in auto mode, and the block is refused; an operator's block of a `never_block` prefix is
/// refused too, while a block of any other address goes in.
#[test]
fn the_responder_never_blocks_the_hosts_gateway_or_a_never_block_prefix() {
    let net = Net::new();
    let gateway = net.addr(2);
    ip(&[
        "-n",
        &net.device,
        "route",
        "add",
        "default",
        "via",
        &gateway,
    ]);
    let data = tempfile::tempdir().unwrap();
    let cfg = data.path().join("heir.toml");
    std::fs::write(
        &cfg,
        "[respond]\nmin_severity = \"low\"\nmin_confidence = 0.0\n\
         categories = { port_scan = \"auto\" }\nnever_block = [\"192.0.2.0/24\"]\n",
    )
    .unwrap();
    let _agent = agent_in(&net, data.path(), &["--config".as_ref(), cfg.as_os_str()]);
    nmap_scan(&net);
    heir_testkit::poll(
        "the audited refusal to block the scanning gateway",
        Duration::from_secs(20),
        || {
            let out = Command::new(HEIR)
                .args(["audit", "--json", "--data-dir"])
                .arg(data.path())
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .any(|l| {
                    l.contains("\"action\":\"refuse\"")
                        && l.contains(&gateway)
                        && l.contains("protected")
                })
                .then_some(())
        },
    );
    let listing: serde_json::Value =
        serde_json::from_str(&net.heir(&["blocks", "--json"])).unwrap();
    let protected: Vec<&str> = listing["protected"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p.as_str())
        .collect();
    assert!(protected.contains(&gateway.as_str()), "{listing}");
    assert!(protected.contains(&"192.0.2.0/24"), "{listing}");
    assert!(
        listing["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|b| b["target"] != gateway.as_str()),
        "the gateway was blocked: {listing}"
    );
    assert_eq!(echoes(&net, 3), 3, "the gateway keeps its traffic");
    // An operator cannot block inside a never_block prefix either; elsewhere they can.
    let refused = Command::new(HEIR)
        .args(["block", "192.0.2.9", "--pin-dir"])
        .arg(&net.pin_dir)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "blocked a never_block address");
    assert!(err.contains("protected"), "{err}");
    net.heir(&["block", "198.51.100.9"]);
    net.heir(&["unblock", "198.51.100.9"]);
}

/// A bounded hping3 SYN burst at one port crosses the packet sensor: the detectors report a
/// SYN flood (not a port scan) naming the target port.
#[test]
fn a_real_hping3_syn_burst_through_the_packet_sensor_is_a_syn_flood() {
    let net = Net::new();
    let data = tempfile::tempdir().unwrap();
    let alerts = data.path().join("alerts.jsonl");
    let _agent = agent_in(
        &net,
        data.path(),
        &["--alerts".as_ref(), alerts.as_os_str()],
    );
    let burst = Command::new("ip")
        .args(["netns", "exec", &net.attacker])
        .args([
            "hping3", "-S", "-p", "104", "-c", "3000", "-i", "u200", "-q",
        ])
        .arg(net.addr(1))
        .output()
        .expect("NOT RUN: hping3 is missing (cargo xtask setup installs it)");
    assert!(
        burst.status.success() || burst.status.code() == Some(1),
        "hping3: {}",
        String::from_utf8_lossy(&burst.stderr)
    );
    let read = || alert_lines(&alerts);
    let deadline = Instant::now() + Duration::from_secs(15);
    let flood = loop {
        if let Some(a) = read().into_iter().find(|a| a["category"] == "dos_flood") {
            break a;
        }
        assert!(
            Instant::now() < deadline,
            "no dos_flood alert; alerts: {:?}",
            read()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(flood["dst_port"], 104, "{flood}");
    assert!(
        !read().iter().any(|a| a["category"] == "port_scan"),
        "one port hammered is not a scan: {:?}",
        read()
    );
}

/// A device network and an outside network joined by a gateway namespace that routes
/// between them, as at a hospital's edge: the agent runs in the gateway with the packet
/// sensor on both of its links, so it sees each direction of a connection once. Everything is
/// deleted on drop.
struct Routed {
    device: String,
    gateway: String,
    outside: String,
    gw_dev: String,
    gw_out: String,
    pin_dir: PathBuf,
    subnet: u8,
}

impl Drop for Routed {
    fn drop(&mut self) {
        for ns in [&self.device, &self.gateway, &self.outside] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        let _ = std::fs::remove_dir_all(&self.pin_dir);
    }
}

impl Routed {
    fn new() -> Routed {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            panic!("NOT RUN: the network-namespace tests need root (CI runs them as root)");
        }
        if !Packets::has_object() {
            panic!("NOT RUN: heir was built without its eBPF programs (AYA_BUILD_SKIP?)");
        }
        let id = format!("{}{}", std::process::id() % 100_000, unique());
        let net = Routed {
            device: format!("hr-dev-{id}"),
            gateway: format!("hr-gw-{id}"),
            outside: format!("hr-out-{id}"),
            gw_dev: format!("hgd{id}"),
            gw_out: format!("hgo{id}"),
            pin_dir: PathBuf::from(format!("/sys/fs/bpf/heir-routed-{id}")),
            subnet: (std::process::id() % 200) as u8 + 20,
        };
        for ns in [&net.device, &net.gateway, &net.outside] {
            ip(&["netns", "add", ns]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
        for (ns, peer, gw_if, end) in [
            (&net.device, format!("hvd{id}"), &net.gw_dev, "dev"),
            (&net.outside, format!("hvo{id}"), &net.gw_out, "out"),
        ] {
            ip(&[
                "-n",
                &net.gateway,
                "link",
                "add",
                gw_if,
                "type",
                "veth",
                "peer",
                "name",
                &peer,
                "netns",
                ns,
            ]);
            let (host, gw) = (net.addr(end, 2), net.addr(end, 1));
            ip(&["-n", ns, "addr", "add", &format!("{host}/24"), "dev", &peer]);
            ip(&[
                "-n",
                &net.gateway,
                "addr",
                "add",
                &format!("{gw}/24"),
                "dev",
                gw_if,
            ]);
            ip(&["-n", ns, "link", "set", &peer, "up"]);
            ip(&["-n", &net.gateway, "link", "set", gw_if, "up"]);
            ip(&["-n", ns, "route", "add", "default", "via", &gw]);
        }
        let fwd = Command::new("ip")
            .args(["netns", "exec", &net.gateway, "sysctl", "-qw"])
            .arg("net.ipv4.ip_forward=1")
            .status()
            .expect("running sysctl");
        assert!(fwd.success(), "enabling forwarding in the gateway");
        net
    }

    /// `end` is "dev" (the device network) or "out" (outside the hospital).
    fn addr(&self, end: &str, host: u8) -> String {
        let net = if end == "dev" { 232 } else { 233 };
        format!("10.{net}.{}.{host}", self.subnet)
    }

    fn device_net(&self) -> String {
        format!("10.232.{}.0/24", self.subnet)
    }

    /// Starts `heir agent` in the gateway with the packet sensor on both links, the given
    /// configuration, and alerts written to `alerts`; waits for `ready`.
    fn agent(&self, data: &Path, config: &str, alerts: &Path) -> Reap {
        let cfg = data.join("heir.toml");
        std::fs::write(&cfg, config).unwrap();
        let mut agent = Reap(
            Command::new("nsenter")
                .arg(format!("--net=/var/run/netns/{}", self.gateway))
                .arg(HEIR)
                .args(["agent", "--iface", &self.gw_dev, "--iface", &self.gw_out])
                .arg("--data-dir")
                .arg(data)
                .arg("--pin-dir")
                .arg(&self.pin_dir)
                .arg("--config")
                .arg(&cfg)
                .arg("--alerts")
                .arg(alerts)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("starting heir agent"),
        );
        heir_testkit::ready(&mut agent.0, Duration::from_secs(60));
        agent
    }

    /// Runs `curl` in the device namespace with `args`; true when it succeeded.
    fn curl(&self, args: &[&str]) -> bool {
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.device,
                "curl",
                "-s",
                "-o",
                "/dev/null",
                "-m",
                "10",
            ])
            .args(args)
            .status()
            .expect("NOT RUN: curl is missing (cargo xtask setup installs it)")
            .success()
    }
}

/// An HTTP server on `port` in namespace `ns` that reads each request with its body and
/// answers `200 ok`, until `stop` is set.
fn http_sink(ns: &str, addr: SocketAddr, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    use std::io::{Read, Write};
    in_netns(ns, move || {
        let l = TcpListener::bind(addr).unwrap();
        l.set_nonblocking(true).unwrap();
        while !stop.load(Ordering::Relaxed) {
            let Ok((mut c, _)) = l.accept() else {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            };
            c.set_nonblocking(false).unwrap();
            c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut head = Vec::new();
            let mut buf = vec![0u8; 64 * 1024];
            let body_start = loop {
                match c.read(&mut buf) {
                    Ok(0) | Err(_) => break None,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
                if let Some(i) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                    break Some(i + 4);
                }
            };
            let Some(start) = body_start else { continue };
            let text = String::from_utf8_lossy(&head[..start]).to_ascii_lowercase();
            let want: usize = text
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            let mut got = head.len() - start;
            while got < want {
                match c.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got += n,
                }
            }
            let _ =
                c.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
        }
    })
}

/// The alerts among `alerts` that are in `categories` and whose event came before `t`.
///
/// Absence checks call this once a later alert (the canary) has arrived through the same
/// pipeline and alert file: the pipeline has then handled everything before `t`, so an alert
/// missing here was not raised, however slow the machine.
fn raised_before(
    alerts: &[serde_json::Value],
    categories: &[&str],
    t: heir_model::Timestamp,
) -> Vec<serde_json::Value> {
    alerts
        .iter()
        .filter(|a| categories.iter().any(|c| a["category"] == *c))
        .filter(|a| {
            let ts = a["ts"].as_str().expect("alerts have a ts");
            heir_model::Timestamp::parse_rfc3339(ts).expect("alert ts is RFC 3339") < t
        })
        .cloned()
        .collect()
}

/// Waits up to `secs` for an alert of `category` that `pick` accepts.
fn wait_alert(
    path: &Path,
    secs: u64,
    pick: impl Fn(&serde_json::Value) -> bool,
) -> Option<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(a) = alert_lines(path).into_iter().find(&pick) {
            return Some(a);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The configuration the routed tests share: fast flow sweeps, and the device network as
/// the only internal one (so the outside namespace is outside the hospital).
fn routed_config(net: &Routed, extra: &str) -> String {
    let internal = net.device_net();
    format!(
        "[sensor]\nflow_sweep_secs = 1\nflow_update_secs = 2\nflow_idle_secs = 2\n\n\
         [detect.exfiltration]\nwindow_secs = 2\nwarmup_windows = 2\nmin_bytes = 4000000\n\
         internal = [\"{internal}\"]\n\n\
         [detect.beacon]\nmin_period_secs = 0.5\nmerge_ms = 200\ninternal = [\"{internal}\"]\n\n\
         {extra}"
    )
}

/// A real `curl` upload of 24 MiB from a device to a host outside, after a baseline of
/// small requests, crosses the gateway's packet sensor: the flow sweeper reports the
/// connection's volume and the exfiltration detector names it. The small requests alone
/// raised nothing.
#[test]
fn a_real_upload_through_the_gateway_is_reported_as_exfiltration_with_its_volume() {
    let net = Routed::new();
    let data = tempfile::tempdir().unwrap();
    let alerts = data.path().join("alerts.jsonl");
    let _agent = net.agent(data.path(), &routed_config(&net, ""), &alerts);
    let sink: SocketAddr = format!("{}:8080", net.addr("out", 2)).parse().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let server = http_sink(&net.outside, sink, stop.clone());
    let url = format!("http://{sink}/telemetry");

    // The baseline: a small telemetry post every 300 ms for 6 s (three 2 s windows).
    let t0 = Instant::now();
    let mut posts = 0;
    while t0.elapsed() < Duration::from_secs(6) {
        assert!(
            net.curl(&["-d", "spo2=97&hr=72", &url]),
            "a small post failed"
        );
        posts += 1;
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(posts >= 10, "only {posts} posts in 6 s");
    // Long enough for their connections to be swept before the upload's.
    std::thread::sleep(Duration::from_secs(3));

    let file = data.path().join("export.bin");
    let size = 24 << 20;
    std::fs::write(&file, vec![0x5au8; size]).unwrap();
    let upload = format!("@{}", file.display());
    assert!(
        net.curl(&[
            "-H",
            "Expect:",
            "--data-binary",
            &upload,
            &format!("http://{sink}/upload")
        ]),
        "the upload failed"
    );
    let device = net.addr("dev", 2);
    let alert = wait_alert(&alerts, 15, |a| a["category"] == "exfiltration")
        .unwrap_or_else(|| panic!("no exfiltration alert: {:#?}", alert_lines(&alerts)));
    stop.store(true, Ordering::Relaxed);
    server.join().unwrap();
    assert_eq!(alert["src_ip"], device.as_str(), "{alert}");
    assert_eq!(alert["dst_ip"], net.addr("out", 2).as_str(), "{alert}");
    // "10.232.x.2 sent 24.9 MiB out of the network, ..." — at least the file, on the wire.
    let mib = |a: &serde_json::Value| -> f64 {
        let title = a["title"].as_str().unwrap();
        title
            .split(" sent ")
            .nth(1)
            .and_then(|r| r.split(" MiB").next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no volume in MiB in `{title}`"))
    };
    assert!((24.0..40.0).contains(&mib(&alert)), "{alert}");
    // The upload's alert is the canary: every earlier flow has been through the detectors, so
    // an alert for the small posts would be in the file by now.
    let small: Vec<_> = alert_lines(&alerts)
        .into_iter()
        .filter(|a| a["category"] == "exfiltration" && mib(a) < 24.0)
        .collect();
    assert!(
        small.is_empty(),
        "small periodic posts look like exfiltration: {small:#?}"
    );
}

/// A jittered periodic `curl` from a device to an outside host (1 s ± 200 ms, 16 beats)
/// through the gateway's packet sensor is reported as a beacon with its period; requests at
/// irregular times from the same device to another port, at the same time, are not.
#[test]
fn a_jittered_periodic_curl_through_the_gateway_is_a_beacon_and_irregular_requests_are_not() {
    let net = Routed::new();
    let data = tempfile::tempdir().unwrap();
    let alerts = data.path().join("alerts.jsonl");
    let _agent = net.agent(data.path(), &routed_config(&net, ""), &alerts);
    let stop = Arc::new(AtomicBool::new(false));
    let c2: SocketAddr = format!("{}:8080", net.addr("out", 2)).parse().unwrap();
    let web: SocketAddr = format!("{}:8081", net.addr("out", 2)).parse().unwrap();
    let servers = [
        http_sink(&net.outside, c2, stop.clone()),
        http_sink(&net.outside, web, stop.clone()),
    ];
    let net = Arc::new(net);
    // Irregular browsing, concurrently: gaps from 0.2 s to 3 s in no order.
    let n = net.clone();
    let browsing = std::thread::spawn(move || {
        let gaps = [
            250, 2700, 600, 1900, 350, 3000, 1200, 400, 2200, 800, 2900, 300, 1600,
        ];
        for g in gaps {
            assert!(n.curl(&[&format!("http://{web}/news")]));
            std::thread::sleep(Duration::from_millis(g));
        }
    });
    // The beacon: a fixed pseudo-random jitter within ±200 ms of each 1 s beat.
    let mut x: u32 = 0x2545_f491;
    let start = Instant::now();
    for beat in 0..16u64 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let jitter = i64::from(x % 401) - 200;
        let at = Duration::from_millis((1000 * beat as i64 + jitter).max(0) as u64);
        if let Some(wait) = at.checked_sub(start.elapsed()) {
            std::thread::sleep(wait);
        }
        assert!(
            net.curl(&[&format!("http://{c2}/tasks")]),
            "beat {beat} failed"
        );
    }
    // The agent's syscall sensor sees the local curl's connects too (a series of its own,
    // named "local"); this is the one the gateway saw on the wire.
    let device = net.addr("dev", 2);
    let alert = wait_alert(&alerts, 10, |a| {
        a["category"] == "c2_beacon" && a["src_ip"] == device.as_str()
    })
    .unwrap_or_else(|| panic!("no c2_beacon alert: {:#?}", alert_lines(&alerts)));
    browsing.join().unwrap();
    stop.store(true, Ordering::Relaxed);
    for s in servers {
        s.join().unwrap();
    }
    assert_eq!(alert["dst_port"], 8080, "{alert}");
    assert!(
        alert["title"].as_str().unwrap().ends_with("every 1s"),
        "{alert}"
    );
    let period: f64 = alert["evidence"][0]
        .as_str()
        .and_then(|e| e.strip_prefix("period "))
        .and_then(|e| e.split('s').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no period in {alert}"));
    assert!((0.85..1.15).contains(&period), "{alert}");
    let all = alert_lines(&alerts);
    assert!(
        !all.iter()
            .any(|a| a["category"] == "c2_beacon" && a["dst_port"] == 8081),
        "irregular browsing looked like a beacon: {all:#?}"
    );
    assert!(
        !all.iter().any(|a| a["category"] == "port_scan"),
        "replies through the gateway looked like a scan: {all:#?}"
    );
}

/// A device's FTP login service on port 21 of `addr` in namespace `ns`: the factory account
/// admin/admin and the operator's jsmith/Pump-2024; three refusals close the connection, as
/// on many embedded servers. Runs until `stop` is set.
fn ftp_login_service(
    ns: &str,
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    use std::io::{BufRead, BufReader, Write};
    in_netns(ns, move || {
        let l = TcpListener::bind(addr).unwrap();
        l.set_nonblocking(true).unwrap();
        while !stop.load(Ordering::Relaxed) {
            let Ok((c, _)) = l.accept() else {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            };
            std::thread::spawn(move || {
                c.set_nonblocking(false).unwrap();
                c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let mut w = c.try_clone().unwrap();
                let _ = w.write_all(b"220 Infusion pump FTP service ready\r\n");
                let (mut user, mut refused) = (String::new(), 0);
                for line in BufReader::new(c).lines().map_while(Result::ok) {
                    let (verb, arg) = line.split_once(' ').unwrap_or((&line, ""));
                    let reply: &[u8] = match verb.to_ascii_uppercase().as_str() {
                        "USER" => {
                            user = arg.trim().to_owned();
                            b"331 Password required\r\n"
                        }
                        "PASS" => {
                            let ok = matches!(
                                (user.as_str(), arg.trim()),
                                ("admin", "admin") | ("jsmith", "Pump-2024")
                            );
                            if ok {
                                b"230 Login successful\r\n"
                            } else {
                                refused += 1;
                                b"530 Login incorrect\r\n"
                            }
                        }
                        "PWD" => b"257 \"/\"\r\n",
                        "QUIT" => b"221 Goodbye\r\n",
                        _ => b"502 Command not implemented\r\n",
                    };
                    if w.write_all(reply).is_err() || verb.eq_ignore_ascii_case("QUIT") {
                        break;
                    }
                    if refused >= 3 {
                        break;
                    }
                }
            });
        }
    })
}

/// `hydra` with a bounded wordlist against a device's FTP login, from outside through the
/// gateway's packet sensor: the refused logins it makes are a brute force, and its use of
/// the factory account a default-credentials alert. An operator's ordinary login before it
/// raised neither.
#[test]
fn a_real_hydra_ftp_attack_through_the_gateway_is_brute_force_with_default_credentials() {
    let net = Routed::new();
    let data = tempfile::tempdir().unwrap();
    let alerts = data.path().join("alerts.jsonl");
    let config = routed_config(
        &net,
        "[detect.brute_force]\nfailures = 5\n\n[detect.default_credentials]\nalert_on_attempt = true\n",
    );
    let _agent = net.agent(data.path(), &config, &alerts);
    let device = net.addr("dev", 2);
    let service: SocketAddr = format!("{device}:21").parse().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let server = ftp_login_service(&net.device, service, stop.clone());
    std::thread::sleep(Duration::from_millis(200));

    // The operator logs in with their own account, from outside.
    let login = Command::new("ip")
        .args(["netns", "exec", &net.outside, "curl", "-s", "-m", "5"])
        .arg(format!("ftp://jsmith:Pump-2024@{device}/"))
        .output()
        .expect("NOT RUN: curl is missing (cargo xtask setup installs it)");
    // curl logs in, then fails on the listing the service does not offer.
    assert_ne!(
        login.status.code(),
        Some(67),
        "the operator's login was refused"
    );
    let hydra_started = heir_model::Timestamp::now();

    // hydra: 24 wrong passwords, then the factory one.
    let words: Vec<String> = (0..24)
        .map(|i| format!("guess{i:02}"))
        .chain(["admin".to_owned()])
        .collect();
    let list = data.path().join("passwords.txt");
    std::fs::write(&list, words.join("\n") + "\n").unwrap();
    let hydra = Command::new("timeout")
        .args([
            "60",
            "ip",
            "netns",
            "exec",
            &net.outside,
            "hydra",
            "-I",
            "-f",
            "-t",
            "2",
        ])
        .args(["-l", "admin", "-P"])
        .arg(&list)
        .arg(format!("ftp://{device}"))
        .current_dir(data.path())
        .output()
        .expect("NOT RUN: hydra is missing (cargo xtask setup installs it)");
    let said = String::from_utf8_lossy(&hydra.stdout);
    assert!(
        said.contains("login: admin") && said.contains("password: admin"),
        "hydra did not find the factory login: {said}{}",
        String::from_utf8_lossy(&hydra.stderr)
    );
    let attacker = net.addr("out", 2);
    let brute = wait_alert(&alerts, 10, |a| a["category"] == "brute_force")
        .unwrap_or_else(|| panic!("no brute_force alert: {:#?}", alert_lines(&alerts)));
    let default = wait_alert(&alerts, 5, |a| a["category"] == "default_credentials")
        .unwrap_or_else(|| panic!("no default_credentials alert: {:#?}", alert_lines(&alerts)));
    stop.store(true, Ordering::Relaxed);
    server.join().unwrap();
    for a in [&brute, &default] {
        assert_eq!(a["src_ip"], attacker.as_str(), "{a}");
        assert_eq!(a["dst_ip"], device.as_str(), "{a}");
        assert_eq!(a["dst_port"], 21, "{a}");
    }
    assert!(brute["title"].as_str().unwrap().contains("ftp"), "{brute}");
    assert!(brute.to_string().contains("admin"), "{brute}");
    assert!(default.to_string().contains("admin"), "{default}");
    let all = alert_lines(&alerts);
    assert!(
        !all.iter().any(|a| a.to_string().contains("guess")),
        "a password reached an alert: {all:#?}"
    );
    // hydra's alerts are the canary: the operator's login came before them.
    let quiet = raised_before(&all, &["brute_force", "default_credentials"], hydra_started);
    assert!(
        quiet.is_empty(),
        "an ordinary login raised an alert: {quiet:#?}"
    );
}

/// What a sysadmin's Prometheus scrapes from the agent inside the device namespace.
fn scrape(net: &Net) -> String {
    in_netns(&net.device, || {
        use std::io::{Read, Write};
        let Ok(mut s) = TcpStream::connect("127.0.0.1:9464") else {
            return String::new();
        };
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(b"GET /metrics HTTP/1.0\r\nHost: heir\r\n\r\n")
            .unwrap();
        let mut body = String::new();
        let _ = s.read_to_string(&mut body);
        body
    })
    .join()
    .unwrap()
}

/// Each device's traffic through the gateway reaches the metrics endpoint, counted in the
/// kernel: the attacker's datagrams are its packets out and the device's packets in (the
/// program sees the frames arriving on the device-facing interface).
#[test]
fn per_device_traffic_reaches_the_metrics_endpoint() {
    let net = Net::new();
    let data = tempfile::tempdir().unwrap();
    let cfg = data.path().join("heir.toml");
    std::fs::write(&cfg, "metrics_listen = \"127.0.0.1:9464\"\n").unwrap();
    let _agent = agent_in(&net, data.path(), &["--config".as_ref(), cfg.as_os_str()]);
    assert_eq!(echoes(&net, 5), 5, "the echoes went through");
    let (attacker, device) = (net.addr(2), net.addr(1));
    let line = |body: &str, dev: &str, dir: &str| {
        let want = format!(
            "heir_device_packets_total{{device=\"{dev}\",kind=\"ipv4\",direction=\"{dir}\"}} "
        );
        body.lines()
            .find_map(|l| l.strip_prefix(&want))
            .map(|v| v.parse::<u64>().unwrap())
    };
    // The agent reads the kernel's counters every 15 s.
    let deadline = Instant::now() + heir_agent::traffic::INTERVAL + Duration::from_secs(10);
    let body = loop {
        let body = scrape(&net);
        if line(&body, &attacker, "out").is_some() {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "no traffic of {attacker} in the metrics:\n{body}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(line(&body, &attacker, "out"), Some(5), "{body}");
    assert_eq!(line(&body, &device, "in"), Some(5), "{body}");
    assert!(
        body.contains("heir_device_bytes_total{device=\"")
            && body.contains("kind=\"mac\",direction=\"out\"}"),
        "{body}"
    );
}

/// Answers each DNS query on `sock` with one A record, `answer`, until `stop`; at most
/// `limit` queries.
fn dns_responder(sock: UdpSocket, answer: std::net::Ipv4Addr, stop: Arc<AtomicBool>, limit: u32) {
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buf = [0u8; 512];
    let mut served = 0;
    while !stop.load(Ordering::Relaxed) && served < limit {
        let Ok((n, from)) = sock.recv_from(&mut buf) else {
            continue;
        };
        // The question ends at the zero label, then type and class.
        let Some(end) = buf[12..n].iter().position(|&b| b == 0).map(|p| 12 + p + 5) else {
            continue;
        };
        if end > n {
            continue;
        }
        let mut reply = buf[..end].to_vec();
        reply[2] = 0x81; // a response, recursion desired
        reply[3] = 0x80; // recursion available, no error
        reply[6..8].copy_from_slice(&1u16.to_be_bytes()); // one answer
        reply[8..12].fill(0);
        reply.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
        reply.extend_from_slice(&answer.octets());
        let _ = sock.send_to(&reply, from);
        served += 1;
    }
}

/// Known indicators through the real sensors: the device connects to an address a file
/// names before the file is imported (the retro-hunt reports it, with its count), then
/// again (reported live, naming the process), and resolves a listed domain with dig (the
/// packet sensor reads the DNS answer). Contacts with an unlisted address of the same host
/// raise nothing; a file with one bad line is refused whole and leaves nothing behind.
#[test]
fn imported_indicators_are_matched_live_and_hunted_for_in_what_came_before() {
    let net = Net::new();
    let data = tempfile::tempdir().unwrap();
    let alerts = data.path().join("alerts.jsonl");
    let heir = |args: &[&str]| {
        let out = Command::new(HEIR)
            .args(args)
            .arg("--data-dir")
            .arg(data.path())
            .output()
            .expect("running heir");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // The attacker's host: a C2 address, an unlisted address, a resolver.
    let (c2, other) = (net.addr(2), net.addr(3));
    let att_if = net.dev_if.replace("hxd", "hxa");
    ip(&[
        "-n",
        &net.attacker,
        "addr",
        "add",
        &format!("{other}/24"),
        "dev",
        &att_if,
    ]);
    let _agent = agent_in(
        &net,
        data.path(),
        &["--alerts".as_ref(), alerts.as_os_str()],
    );
    let c2_addr: SocketAddr = format!("{c2}:8443").parse().unwrap();
    let other_addr: SocketAddr = format!("{other}:8443").parse().unwrap();
    let resolver_addr: SocketAddr = format!("{other}:53").parse().unwrap();
    let listeners = in_netns(&net.attacker, move || {
        (
            TcpListener::bind(c2_addr).unwrap(),
            TcpListener::bind(other_addr).unwrap(),
            UdpSocket::bind(resolver_addr).unwrap(),
        )
    })
    .join()
    .unwrap();
    let connect = |to: SocketAddr, n: usize| {
        in_netns(&net.device, move || {
            for _ in 0..n {
                TcpStream::connect_timeout(&to, Duration::from_secs(5))
                    .unwrap_or_else(|e| panic!("connect {to}: {e}"));
            }
        })
        .join()
        .unwrap()
    };
    let by_rule = |rule: &str, needle: &str| -> Vec<serde_json::Value> {
        alert_lines(&alerts)
            .into_iter()
            .filter(|a| a["rule"] == rule && a.to_string().contains(needle))
            .collect()
    };
    // Before anyone knows it is bad.
    connect(c2_addr, 4);

    // A file with one bad line is refused whole.
    let bad = data.path().join("bad.txt");
    std::fs::write(&bad, format!("{c2}\nnot-an-indicator!\n")).unwrap();
    let (ok, _, err) = heir(&["import", bad.to_str().unwrap(), "--tlp", "green"]);
    assert!(!ok, "a bad line is refused");
    assert!(
        err.contains("bad.txt:2") && err.contains("not-an-indicator!"),
        "{err}"
    );
    let (ok, listed, err) = heir(&["indicators", "--json"]);
    assert!(ok, "{err}");
    assert!(listed.trim().is_empty(), "nothing of it is kept: {listed}");

    let domain = format!("c2-{}.example.net", std::process::id());
    let list = data.path().join("partner-c2.txt");
    std::fs::write(&list, format!("# from a partner CERT\n{c2}\n{domain}\n")).unwrap();
    let (ok, out, err) = heir(&["import", list.to_str().unwrap(), "--tlp", "green"]);
    assert!(ok, "{err}");
    assert!(out.contains("2 new"), "{out}");

    // The earlier contacts, found in the store: the process's connects (the packet sensor's
    // flows give the device's own alert beside it).
    let retro = poll("the retrospective alert", Duration::from_secs(30), || {
        by_rule("intel.known_indicator_retro", &c2)
            .into_iter()
            .find(|a| a["pid"].is_u64())
    });
    assert_eq!(retro["category"], "known_indicator", "{retro}");
    assert_eq!(retro["dst_ip"], c2.as_str(), "{retro}");
    assert!(
        retro["count"].as_u64() >= Some(4),
        "every earlier contact: {retro}"
    );
    let text = retro.to_string();
    assert!(
        text.contains("partner-c2.txt") && text.contains("TLP:GREEN"),
        "{retro}"
    );

    // The unlisted address, then the listed one again: its live alert proves the pipeline
    // had the unlisted contacts in hand first.
    connect(other_addr, 3);
    connect(c2_addr, 1);
    let live = poll("the live alert", Duration::from_secs(15), || {
        by_rule("intel.known_indicator", &c2)
            .into_iter()
            .find(|a| a["pid"].is_u64())
    });
    assert!(live["comm"].is_string(), "names the process: {live}");
    let quiet: Vec<_> = alert_lines(&alerts)
        .into_iter()
        .filter(|a| a["category"] == "known_indicator" && a["dst_ip"] == other.as_str())
        .collect();
    assert!(quiet.is_empty(), "the unlisted address raised: {quiet:?}");

    // A device resolving the listed domain: the resolver's answer crosses the packet sensor.
    let stop = Arc::new(AtomicBool::new(false));
    let (_c2_listener, _other_listener, resolver) = listeners;
    let answer: std::net::Ipv4Addr = c2.parse().unwrap();
    let serve = {
        let stop = stop.clone();
        std::thread::spawn(move || dns_responder(resolver, answer, stop, 20))
    };
    let dns = poll("the DNS alert", Duration::from_secs(20), || {
        let _ = Command::new("ip")
            .args(["netns", "exec", &net.device, "dig", "+tries=1", "+time=2"])
            .arg(format!("@{other}"))
            .arg(&domain)
            .output()
            .expect("NOT RUN: dig is missing (cargo xtask setup installs it)");
        by_rule("intel.known_indicator", &domain).into_iter().next()
    });
    stop.store(true, Ordering::Relaxed);
    serve.join().unwrap();
    assert_eq!(dns["src_ip"], net.addr(1).as_str(), "the device: {dns}");
    assert!(dns.to_string().contains("DNS answer"), "{dns}");

    // The imports stay, listed with their source, and survive the agent.
    let (ok, listed, err) = heir(&["indicators"]);
    assert!(ok, "{err}");
    assert!(
        listed.contains(&domain) && listed.contains("partner-c2.txt"),
        "{listed}"
    );
}
