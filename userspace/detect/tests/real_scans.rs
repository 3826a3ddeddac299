//! Real nmap scans, as packets: nmap scans a loopback address, tcpdump records the packets,
//! and a small flow table (what the XDP sensor keeps in the kernel) turns them into the
//! flow summaries the port-scan detector reads. This checks the scan-type classification
//! against the packets nmap really sends for -sS, -sT, -sF, -sN, -sX, -sA and -sU, and that
//! ordinary sessions to the same host stay quiet; and a bounded hping3 SYN burst against one
//! port as a SYN flood; and hydra guessing an FTP password (bounded wordlist, ending in the
//! factory default) against a small FTP service, read by a stand-in for the sensor's FTP
//! recogniser; and openssl s_server/s_client handshakes in TLS 1.0 (obsolete) and TLS 1.3
//! (fine), read by a stand-in ServerHello parser. Needs nmap, hping3, hydra, tcpdump, curl
//! and openssl; without them a test fails with NOT RUN.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use heir_detect::Detector;
use heir_detect::detectors::port_scan::{Config, PortScan};
use heir_detect::detectors::syn_flood::{self, SynFlood};
use heir_model::event::{TcpFlags, Transport};
use heir_model::{Alert, Event, EventKind, Process, Timestamp};

/// Scans go to this loopback address only, so other loopback traffic on the machine stays
/// out of the capture.
const TARGET: &str = "127.0.0.77";

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

/// Both tests capture TARGET's traffic: one at a time.
static ONE_CAPTURE: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// tcpdump on lo for TARGET, started and confirmed listening; stopped by pid on drop.
struct Capture {
    child: Child,
    file: tempfile::NamedTempFile,
}

impl Capture {
    fn start() -> Capture {
        let file = tempfile::Builder::new()
            .prefix("heir-scan-")
            .suffix(".pcap")
            .tempfile()
            .unwrap();
        let mut child = Command::new("tcpdump")
            .args([
                "-i",
                "lo",
                "-U",
                "--immediate-mode",
                "-n",
                "-Z",
                "root",
                "-s",
                "1024",
                "-w",
            ])
            .arg(file.path())
            .args(["host", TARGET])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tcpdump starts");
        let mut err = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            line.clear();
            if err.read_line(&mut line).unwrap_or(0) == 0 || line.contains("listening on") {
                break;
            }
        }
        assert!(
            line.contains("listening on"),
            "tcpdump did not start: {line}"
        );
        Capture { child, file }
    }

    fn finish(mut self) -> Vec<u8> {
        std::thread::sleep(Duration::from_millis(300));
        // SIGTERM by pid, so tcpdump flushes and closes the file.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
        std::fs::read(self.file.path()).unwrap()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Packet {
    ts: u64,
    src: IpAddr,
    dst: IpAddr,
    sport: u16,
    dport: u16,
    transport: Transport,
    flags: u8,
    len: u64,
    /// For ICMP unreachable: the quoted datagram's (src, sport, dst, dport).
    quoted: Option<(IpAddr, u16, IpAddr, u16)>,
    /// TCP payload (as far as captured).
    payload: Vec<u8>,
}

fn ipv4(b: &[u8]) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
}

/// Classic pcap, Ethernet link type (what tcpdump writes for lo), IPv4 only.
fn packets(pcap: &[u8]) -> Vec<Packet> {
    let mut out = Vec::new();
    if pcap.len() < 24 {
        return out;
    }
    let mut off = 24;
    while off + 16 <= pcap.len() {
        let h = &pcap[off..off + 16];
        let sec = u32::from_le_bytes(h[0..4].try_into().unwrap()) as u64;
        let usec = u32::from_le_bytes(h[4..8].try_into().unwrap()) as u64;
        let incl = u32::from_le_bytes(h[8..12].try_into().unwrap()) as usize;
        let orig = u32::from_le_bytes(h[12..16].try_into().unwrap()) as u64;
        off += 16;
        if off + incl > pcap.len() {
            break;
        }
        let frame = &pcap[off..off + incl];
        off += incl;
        if frame.len() < 34 || frame[12..14] != [0x08, 0x00] {
            continue;
        }
        let ip = &frame[14..];
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        if ip.len() < ihl + 8 {
            continue;
        }
        let (src, dst, l4) = (ipv4(&ip[12..16]), ipv4(&ip[16..20]), &ip[ihl..]);
        let port = |b: &[u8]| u16::from_be_bytes([b[0], b[1]]);
        let payload = if ip[9] == 6 && l4.len() >= 20 {
            let data = usize::from(l4[12] >> 4) * 4;
            let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
            let end = total.saturating_sub(ihl).min(l4.len());
            l4.get(data..end).unwrap_or(&[]).to_vec()
        } else {
            Vec::new()
        };
        let (transport, sport, dport, flags, quoted) = match ip[9] {
            6 if l4.len() >= 14 => (Transport::Tcp, port(&l4[0..]), port(&l4[2..]), l4[13], None),
            17 => (Transport::Udp, port(&l4[0..]), port(&l4[2..]), 0, None),
            1 if l4[0] == 3 && l4.len() >= 8 + 20 + 4 => {
                let inner = &l4[8..];
                let ihl2 = usize::from(inner[0] & 0x0f) * 4;
                let q = (l4.len() >= 8 + ihl2 + 4).then(|| {
                    (
                        ipv4(&inner[12..16]),
                        port(&inner[ihl2..]),
                        ipv4(&inner[16..20]),
                        port(&inner[ihl2 + 2..]),
                    )
                });
                (Transport::Icmp, 0, 0, 0, q)
            }
            _ => continue,
        };
        out.push(Packet {
            ts: sec * 1_000_000_000 + usec * 1000,
            src,
            dst,
            sport,
            dport,
            transport,
            flags,
            len: orig.saturating_sub(14),
            quoted,
            payload,
        });
    }
    out
}

#[derive(Default)]
struct Flow {
    first: u64,
    last: u64,
    packets_out: u64,
    bytes_out: u64,
    packets_in: u64,
    bytes_in: u64,
    flags_out: u8,
    flags_in: u8,
    syns: u32,
    syn_ack_seen: bool,
    established: bool,
    icmp_unreachable: bool,
}

/// The flow table: the first packet's sender is the initiator.
fn flows(pkts: &[Packet]) -> Vec<Event> {
    type Key = (IpAddr, u16, IpAddr, u16, u8);
    let mut table: HashMap<Key, (Transport, Flow)> = HashMap::new();
    let mut order: Vec<Key> = Vec::new();
    for p in pkts {
        if p.transport == Transport::Icmp {
            if let Some((s, sp, d, dp)) = p.quoted
                && let Some((_, f)) = table.get_mut(&(s, sp, d, dp, 17))
            {
                f.icmp_unreachable = true;
                f.packets_in += 1;
                f.last = p.ts;
            }
            continue;
        }
        let proto = if p.transport == Transport::Tcp { 6 } else { 17 };
        let fwd = (p.src, p.sport, p.dst, p.dport, proto);
        let rev = (p.dst, p.dport, p.src, p.sport, proto);
        let (key, out) = if table.contains_key(&fwd) {
            (fwd, true)
        } else if table.contains_key(&rev) {
            (rev, false)
        } else {
            order.push(fwd);
            table.insert(
                fwd,
                (
                    p.transport,
                    Flow {
                        first: p.ts,
                        ..Flow::default()
                    },
                ),
            );
            (fwd, true)
        };
        let (_, f) = table.get_mut(&key).unwrap();
        f.last = p.ts;
        if out {
            f.packets_out += 1;
            f.bytes_out += p.len;
            f.flags_out |= p.flags;
            if p.flags & TcpFlags::SYN != 0 && p.flags & TcpFlags::ACK == 0 {
                f.syns += 1;
            }
            if f.syn_ack_seen && p.flags & TcpFlags::ACK != 0 && p.flags & TcpFlags::SYN == 0 {
                f.established = true;
            }
        } else {
            f.packets_in += 1;
            f.bytes_in += p.len;
            f.flags_in |= p.flags;
            if p.flags & (TcpFlags::SYN | TcpFlags::ACK) == TcpFlags::SYN | TcpFlags::ACK {
                f.syn_ack_seen = true;
            }
        }
    }
    order
        .into_iter()
        .map(|k| {
            let (transport, f) = table.remove(&k).unwrap();
            Event {
                ts: Timestamp::from_nanos(f.last),
                process: Process::default(),
                kind: EventKind::Flow {
                    src: k.0,
                    src_port: k.1,
                    dst: k.2,
                    dst_port: k.3,
                    transport,
                    packets_out: f.packets_out,
                    bytes_out: f.bytes_out,
                    packets_in: f.packets_in,
                    bytes_in: f.bytes_in,
                    flags_out: TcpFlags(f.flags_out),
                    flags_in: TcpFlags(f.flags_in),
                    syn_unanswered: if f.established { 0 } else { f.syns },
                    established: f.established,
                    icmp_unreachable: f.icmp_unreachable,
                    first_seen: Timestamp::from_nanos(f.first),
                    last_seen: Timestamp::from_nanos(f.last),
                    link: None,
                },
            }
        })
        .collect()
}

fn scan(args: &[&str]) -> Vec<Event> {
    let cap = Capture::start();
    let status = Command::new("nmap")
        .args(args)
        .args(["-Pn", "-n", "--max-retries", "0", TARGET])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("nmap runs");
    assert!(status.success(), "nmap {args:?} failed");
    flows(&packets(&cap.finish()))
}

fn detect(events: &[Event]) -> Vec<Alert> {
    let mut d = PortScan::new(Config::default());
    let mut out = Vec::new();
    for e in events {
        d.inspect(e, &mut out);
    }
    out
}

#[test]
fn every_nmap_scan_type_is_reported_and_named() {
    if !tools(&["nmap", "tcpdump"]) {
        return;
    }
    let _one = ONE_CAPTURE.lock().unwrap_or_else(|e| e.into_inner());
    for (flag, name) in [
        ("-sS", "SYN (-sS)"),
        ("-sT", "SYN (-sS)"),
        ("-sF", "FIN (-sF)"),
        ("-sN", "NULL (-sN)"),
        ("-sX", "Xmas (-sX)"),
        ("-sA", "ACK (-sA)"),
        ("-sU", "UDP (-sU)"),
    ] {
        let events = scan(&[flag, "-p", "1-40"]);
        assert!(
            events.len() >= 30,
            "{flag}: only {} flows captured",
            events.len()
        );
        let alerts = detect(&events);
        // Reported at 20 ports and again at 40; downstream aggregation makes it one incident.
        assert!((1..=2).contains(&alerts.len()), "{flag}: {alerts:#?}");
        let probed: u64 = alerts.iter().map(|a| a.count).sum();
        assert!(
            (30..=40).contains(&probed),
            "{flag}: {probed} ports counted"
        );
        assert_eq!(alerts[0].device.as_deref(), Some(TARGET));
        // A connect scan of closed ports is, on the wire, SYN then RST: it is named as such.
        assert!(
            alerts[0].evidence[1].contains(name),
            "{flag}: {:?}",
            alerts[0].evidence
        );
    }
}

#[test]
fn many_real_sessions_to_one_service_are_not_a_scan() {
    if !tools(&["tcpdump", "curl"]) {
        return;
    }
    let _one = ONE_CAPTURE.lock().unwrap_or_else(|e| e.into_inner());
    let server = TcpListener::bind((TARGET, 0)).unwrap();
    let port = server.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        for _ in 0..30 {
            let Ok((mut s, _)) = server.accept() else {
                break;
            };
            s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            let mut buf = [0u8; 2048];
            let _ = s.read(&mut buf);
            let body = "x".repeat(4000);
            let _ = write!(
                s,
                "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
        }
    });
    let cap = Capture::start();
    for _ in 0..30 {
        let ok = Command::new("curl")
            .args(["-s", "-o", "/dev/null", &format!("http://{TARGET}:{port}/")])
            .status()
            .unwrap();
        assert!(ok.success());
    }
    let events = flows(&packets(&cap.finish()));
    handle.join().unwrap();
    assert_eq!(events.len(), 30, "one flow per request");
    assert!(events.iter().all(|e| matches!(
        e.kind,
        EventKind::Flow {
            established: true,
            ..
        }
    )));
    assert!(detect(&events).is_empty());
}

#[test]
fn bounded_hping3_syn_burst_is_a_flood_not_a_scan() {
    if !tools(&["hping3", "tcpdump"]) {
        return;
    }
    let _one = ONE_CAPTURE.lock().unwrap_or_else(|e| e.into_inner());
    let cap = Capture::start();
    // 3000 SYNs to one closed port, 100 µs apart, from 127.0.0.1 only (no spoofing: replies
    // must stay on loopback).
    let status = Command::new("hping3")
        .args(["-S", "-p", "8080", "-c", "3000", "-i", "u100", "-q", TARGET])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("hping3 runs");
    assert!(
        status.success() || status.code() == Some(1),
        "hping3: {status:?}"
    );
    let events = flows(&packets(&cap.finish()));
    assert!(events.len() >= 2500, "{} flows", events.len());
    let mut d = SynFlood::new(syn_flood::Config::default());
    let mut alerts = Vec::new();
    for e in &events {
        d.inspect(e, &mut alerts);
    }
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(alerts[0].dst_port, Some(8080));
    assert!(detect(&events).is_empty(), "one port is not a scan");
}

/// What the packet sensor's FTP recogniser reports: per control connection, each server
/// verdict (230 / 530) with the user name typed before it. Passwords are seen and dropped.
fn ftp_observations(pkts: &[Packet], server_port: u16) -> Vec<Event> {
    use heir_model::event::{LoginOutcome, Observation};
    let mut user: HashMap<(IpAddr, u16), String> = HashMap::new();
    let mut out = Vec::new();
    for p in pkts
        .iter()
        .filter(|p| p.transport == Transport::Tcp && !p.payload.is_empty())
    {
        let text = String::from_utf8_lossy(&p.payload);
        if p.dport == server_port {
            for line in text.lines() {
                if let Some(u) = line.strip_prefix("USER ") {
                    user.insert((p.src, p.sport), u.trim().to_owned());
                }
            }
        } else if p.sport == server_port {
            for line in text.lines() {
                let outcome = if line.starts_with("230") {
                    LoginOutcome::Success
                } else if line.starts_with("530") {
                    LoginOutcome::Failure
                } else {
                    continue;
                };
                out.push(Event {
                    ts: Timestamp::from_nanos(p.ts),
                    process: Process::default(),
                    kind: EventKind::Protocol {
                        src: p.dst,
                        src_port: p.dport,
                        dst: p.src,
                        dst_port: p.sport,
                        observation: Observation::Ftp {
                            user: user.get(&(p.dst, p.dport)).cloned(),
                            cleartext_credentials: true,
                            outcome: Some(outcome),
                        },
                    },
                });
            }
        }
    }
    out
}

/// A device's FTP service whose factory account is admin/admin.
fn ftp_server(
    listener: TcpListener,
    deadline: Duration,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<usize> {
    std::thread::spawn(move || {
        listener.set_nonblocking(true).unwrap();
        let start = Instant::now();
        let mut sessions = 0;
        let mut workers = Vec::new();
        while start.elapsed() < deadline && !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let Ok((s, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            };
            sessions += 1;
            workers.push(std::thread::spawn(move || {
                s.set_nonblocking(false).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let mut w = s.try_clone().unwrap();
                let mut r = BufReader::new(s);
                let _ = w.write_all(b"220 infusion-pump-gw FTP\r\n");
                let mut user = String::new();
                let mut line = String::new();
                loop {
                    line.clear();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        break;
                    }
                    let l = line.trim_end();
                    let reply: &[u8] = if let Some(u) = l.strip_prefix("USER ") {
                        user = u.to_owned();
                        b"331 Please specify the password.\r\n"
                    } else if let Some(p) = l.strip_prefix("PASS ") {
                        if user == "admin" && p == "admin" {
                            b"230 Login successful.\r\n"
                        } else {
                            b"530 Login incorrect.\r\n"
                        }
                    } else if l.starts_with("QUIT") {
                        let _ = w.write_all(b"221 Goodbye.\r\n");
                        break;
                    } else {
                        b"502 Command not implemented.\r\n"
                    };
                    if w.write_all(reply).is_err() {
                        break;
                    }
                }
            }));
        }
        for w in workers {
            let _ = w.join();
        }
        sessions
    })
}

#[test]
fn hydra_against_ftp_is_brute_force_then_default_credentials() {
    if !tools(&["hydra", "tcpdump"]) {
        return;
    }
    let _one = ONE_CAPTURE.lock().unwrap_or_else(|e| e.into_inner());
    let listener = TcpListener::bind((TARGET, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let server = ftp_server(listener, Duration::from_secs(25), stop.clone());
    let words = tempfile::NamedTempFile::new().unwrap();
    let mut list: Vec<String> = (0..30).map(|i| format!("wrong{i}")).collect();
    list.push("admin".into());
    std::fs::write(words.path(), list.join("\n") + "\n").unwrap();
    let cap = Capture::start();
    let status = Command::new("hydra")
        .args(["-l", "admin", "-P"])
        .arg(words.path())
        .args([
            "-t",
            "4",
            "-f",
            "-I",
            "-s",
            &port.to_string(),
            TARGET,
            "ftp",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("hydra runs");
    assert!(status.success(), "hydra: {status:?}");
    let pkts = packets(&cap.finish());
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(server.join().unwrap() >= 1);
    let events = ftp_observations(&pkts, port);
    let failures = events
        .iter()
        .filter(|e| {
            matches!(
                &e.kind,
                EventKind::Protocol {
                    observation: heir_model::event::Observation::Ftp {
                        outcome: Some(heir_model::event::LoginOutcome::Failure),
                        ..
                    },
                    ..
                }
            )
        })
        .count();
    assert!(failures >= 25, "{failures} failed logins seen");
    let mut engine = heir_detect::Engine::new(
        &heir_detect::Config::default(),
        std::sync::Arc::new(heir_detect::ManualClock::default()),
    );
    let mut alerts = Vec::new();
    for e in &events {
        engine.process(e, &mut alerts);
    }
    let rules: Vec<&str> = alerts.iter().map(|a| a.rule.as_str()).collect();
    for want in [
        "auth.brute_force",
        "auth.brute_force_success",
        "auth.default_credentials",
        "net.cleartext_protocol",
    ] {
        assert!(rules.contains(&want), "{want} missing: {rules:?}");
    }
    assert!(alerts.len() <= 6, "{rules:?}");
}

/// What the sensor's TLS recogniser reports from a ServerHello: the negotiated version (the
/// supported_versions extension for TLS 1.3, else the legacy field) and cipher suite.
fn server_hellos(pkts: &[Packet], server_port: u16) -> Vec<Event> {
    let mut out = Vec::new();
    for p in pkts
        .iter()
        .filter(|p| p.sport == server_port && p.payload.len() > 50)
    {
        let b = &p.payload;
        // TLS record: handshake (22), then a ServerHello (2) handshake message.
        if b[0] != 22 || b[5] != 2 {
            continue;
        }
        let body = &b[9..];
        let legacy = u16::from_be_bytes([body[0], body[1]]);
        let sid = usize::from(body[34]);
        let at = 35 + sid;
        let Some(cs) = body.get(at..at + 2) else {
            continue;
        };
        let cipher_suite = u16::from_be_bytes([cs[0], cs[1]]);
        let mut version = legacy;
        let mut i = at + 5;
        while let Some(h) = body.get(i..i + 4) {
            let (ty, len) = (
                u16::from_be_bytes([h[0], h[1]]),
                usize::from(u16::from_be_bytes([h[2], h[3]])),
            );
            if ty == 0x002b
                && let Some(v) = body.get(i + 4..i + 6)
            {
                version = u16::from_be_bytes([v[0], v[1]]);
            }
            i += 4 + len;
        }
        out.push(Event {
            ts: Timestamp::from_nanos(p.ts),
            process: Process::default(),
            kind: EventKind::Protocol {
                src: p.dst,
                src_port: p.dport,
                dst: p.src,
                dst_port: p.sport,
                observation: heir_model::event::Observation::TlsServerHello {
                    version,
                    cipher_suite,
                },
            },
        });
    }
    out
}

/// One TLS handshake between openssl's s_server and s_client with the given options.
fn tls_handshake(dir: &std::path::Path, server_opts: &[&str], client_opts: &[&str]) -> Vec<Event> {
    let port = TcpListener::bind((TARGET, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cap = Capture::start();
    let mut server = Command::new("openssl")
        .args([
            "s_server",
            "-accept",
            &format!("{TARGET}:{port}"),
            "-naccept",
            "1",
            "-cert",
            "c.pem",
            "-key",
            "k.pem",
            "-quiet",
        ])
        .args(server_opts)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let mut done = false;
    while !done && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
        done = Command::new("openssl")
            .args(["s_client", "-connect", &format!("{TARGET}:{port}")])
            .args(client_opts)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success();
    }
    let _ = server.kill();
    let _ = server.wait();
    assert!(
        done,
        "handshake with {server_opts:?} / {client_opts:?} failed"
    );
    server_hellos(&packets(&cap.finish()), port)
}

#[test]
fn real_tls10_server_is_obsolete_tls13_is_not() {
    if !tools(&["openssl", "tcpdump"]) {
        return;
    }
    let _one = ONE_CAPTURE.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let ok = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "k.pem",
            "-out",
            "c.pem",
            "-subj",
            "/CN=pacs.test",
            "-days",
            "1",
        ])
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(ok.success());
    let weak = ["-tls1", "-cipher", "AES128-SHA:@SECLEVEL=0"];
    let old = tls_handshake(dir.path(), &weak, &weak);
    let modern = tls_handshake(dir.path(), &["-tls1_3"], &["-tls1_3"]);
    assert_eq!(old.len(), 1);
    assert_eq!(modern.len(), 1);
    let mut d = heir_detect::detectors::weak_tls::WeakTls::new(
        heir_detect::detectors::weak_tls::Config::default(),
    );
    let mut alerts = Vec::new();
    for e in &modern {
        d.inspect(e, &mut alerts);
    }
    assert!(alerts.is_empty(), "TLS 1.3: {alerts:#?}");
    for e in &old {
        d.inspect(e, &mut alerts);
    }
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert!(
        alerts[0].evidence[0].contains("TLS 1.0"),
        "{:?}",
        alerts[0].evidence
    );
}
