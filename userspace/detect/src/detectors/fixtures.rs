//! Event builders for detector tests: realistic sequences as the sensors emit them.

use std::net::IpAddr;
use std::sync::Arc;

use heir_model::event::{Ancestor, Observation, ProcessInfo, TcpFlags, Transport};
use heir_model::{Alert, Event, EventKind, NetAddr, Process, Timestamp};

use crate::Detector;

pub const T0: u64 = 1_767_225_600;

pub fn at(ms: u64) -> Timestamp {
    Timestamp::from_nanos(T0 * 1_000_000_000 + ms * 1_000_000)
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub fn proc_(pid: u32, ppid: u32, uid: u32, comm: &str, exe: &str, parent: &str) -> Process {
    Process {
        pid,
        tid: pid,
        ppid,
        uid,
        euid: uid,
        gid: uid,
        comm: comm.into(),
        cgroup: 0,
        info: Some(Arc::new(ProcessInfo {
            exe: Some(exe.into()),
            args: Vec::new(),
            started: None,
            lineage: vec![
                Ancestor {
                    pid: ppid,
                    exe: parent.into(),
                },
                Ancestor {
                    pid: 1,
                    exe: "/sbin/init".into(),
                },
            ],
        })),
    }
}

pub fn ev(ms: u64, process: Process, kind: EventKind) -> Event {
    Event {
        ts: at(ms),
        process,
        kind,
    }
}

pub fn exec(ms: u64, p: Process, filename: &str, argv: &[&str]) -> Event {
    ev(
        ms,
        p,
        EventKind::Exec {
            filename: filename.into(),
            argv: argv.iter().map(|s| s.to_string()).collect(),
            argv_truncated: false,
            ret: 0,
        },
    )
}

pub fn open(ms: u64, p: Process, path: &str, flags: u32) -> Event {
    ev(
        ms,
        p,
        EventKind::Open {
            path: path.into(),
            flags,
            ret: 3,
        },
    )
}

pub fn connect(ms: u64, p: Process, dst: &str, port: u16) -> Event {
    ev(
        ms,
        p,
        EventKind::Connect {
            addr: NetAddr::Inet { ip: ip(dst), port },
            ret: 0,
        },
    )
}

pub struct FlowSpec {
    pub transport: Transport,
    pub flags_out: u8,
    pub flags_in: u8,
    pub packets_out: u64,
    pub bytes_out: u64,
    pub packets_in: u64,
    pub bytes_in: u64,
    pub syn_unanswered: u32,
    pub established: bool,
    pub icmp_unreachable: bool,
    pub duration_ms: u64,
}

impl Default for FlowSpec {
    fn default() -> Self {
        Self {
            transport: Transport::Tcp,
            flags_out: 0,
            flags_in: 0,
            packets_out: 1,
            bytes_out: 60,
            packets_in: 0,
            bytes_in: 0,
            syn_unanswered: 0,
            established: false,
            icmp_unreachable: false,
            duration_ms: 0,
        }
    }
}

pub fn flow(ms: u64, src: &str, sport: u16, dst: &str, dport: u16, f: FlowSpec) -> Event {
    ev(
        ms + f.duration_ms,
        Process::default(),
        EventKind::Flow {
            src: ip(src),
            src_port: sport,
            dst: ip(dst),
            dst_port: dport,
            transport: f.transport,
            packets_out: f.packets_out,
            bytes_out: f.bytes_out,
            packets_in: f.packets_in,
            bytes_in: f.bytes_in,
            flags_out: TcpFlags(f.flags_out),
            flags_in: TcpFlags(f.flags_in),
            syn_unanswered: f.syn_unanswered,
            established: f.established,
            icmp_unreachable: f.icmp_unreachable,
            first_seen: at(ms),
            last_seen: at(ms + f.duration_ms),
            link: None,
        },
    )
}

/// A normal TCP session: handshake, data both ways, FIN.
pub fn session(ms: u64, src: &str, sport: u16, dst: &str, dport: u16, out: u64, inb: u64) -> Event {
    flow(
        ms,
        src,
        sport,
        dst,
        dport,
        FlowSpec {
            flags_out: TcpFlags::SYN | TcpFlags::ACK | TcpFlags::PSH | TcpFlags::FIN,
            flags_in: TcpFlags::SYN | TcpFlags::ACK | TcpFlags::PSH | TcpFlags::FIN,
            packets_out: 4 + out / 1400,
            bytes_out: out,
            packets_in: 4 + inb / 1400,
            bytes_in: inb,
            established: true,
            duration_ms: 200,
            ..FlowSpec::default()
        },
    )
}

pub fn proto(ms: u64, src: &str, dst: &str, dport: u16, o: Observation) -> Event {
    ev(
        ms,
        Process::default(),
        EventKind::Protocol {
            src: ip(src),
            src_port: 40000,
            dst: ip(dst),
            dst_port: dport,
            observation: o,
        },
    )
}

pub fn run(d: &mut dyn Detector, events: &[Event]) -> Vec<Alert> {
    let mut out = Vec::new();
    for e in events {
        let k = crate::Kind::of(&e.kind);
        if d.kinds().contains(&k) {
            d.inspect(e, &mut out);
        }
    }
    out
}

/// Every alert must carry the full taxonomy and evidence.
pub fn assert_complete(alerts: &[Alert]) {
    for a in alerts {
        assert!(
            a.taxonomy.owasp_iot.is_some()
                && a.taxonomy.enisa.is_some()
                && a.taxonomy.attack.is_some(),
            "{a:?}"
        );
        assert!(!a.evidence.is_empty(), "alert without evidence: {a:?}");
        assert!((0.0..=1.0).contains(&a.confidence));
    }
}
