//! The flow sweeper: turns the packet sensor's flow table into connection records for the
//! detectors.
//!
//! The kernel keys its flow table by direction (a reply is its own entry) and only ever adds
//! to it, so a flow's first-packet record is all the detectors learnt of it so far. The
//! sweeper reads the table every few seconds, pairs the two directions of a connection (the
//! side that opened it becomes `src`), and reports what moved as an [`EventKind::Flow`]:
//!
//! - when the connection closed (an RST, or a FIN each way), went idle, or, while it stays
//!   open and busy, at most once per update interval — so a long upload is seen while it runs;
//! - each record counts the packets and bytes *since the connection's previous record*, so
//!   detectors that add records up (exfiltration, anomaly) see each byte once, and the
//!   records of one connection add up to its totals;
//! - the facts of the opening are reported once, in the record that covers them: the SYN
//!   flag and `established`. Later records carry the other flags seen so far, and
//!   `first_seen` stays the connection's first packet (so a beacon detector sees one start
//!   per connection however many records it spans). `syn_unanswered` is 0: the first-packet
//!   event already counted the SYN.
//!
//! State lives exactly as long as the kernel's entry: a connection the LRU table evicted is
//! forgotten; one it still holds is never reported twice. Sweeping an unchanged connection
//! allocates nothing.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::time::Duration;

use heir_abi::packet::{
    FlowKey, PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP, TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN,
};
use heir_model::event::{TcpFlags, Transport};
use heir_model::{BootClock, Event, EventKind, Process};

use crate::record::addr;

/// One direction of a flow as the kernel's flow table holds it, summed over CPUs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlowCounters {
    pub first_ns: u64,
    pub last_ns: u64,
    pub packets: u64,
    pub bytes: u64,
    pub tcp_flags: u8,
}

/// When connections are reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// How often the kernel table is read.
    pub sweep: Duration,
    /// An open connection that keeps moving is reported at most this often.
    pub update: Duration,
    /// A connection without packets for this long is over and reported.
    pub idle: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            sweep: Duration::from_secs(5),
            update: Duration::from_secs(30),
            idle: Duration::from_secs(15),
        }
    }
}

/// A connection, whichever direction a packet took: the lower endpoint first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Pair {
    lo: [u8; 16],
    hi: [u8; 16],
    lo_port: u16,
    hi_port: u16,
    proto: u8,
    family: u8,
}

/// One direction: 0 sends from `lo` to `hi`, 1 the other way.
type Side = usize;

impl Pair {
    fn of(k: &FlowKey) -> (Pair, Side) {
        // ICMP keys carry type and code as ports; a request and its reply differ in type,
        // so ICMP pairs by addresses alone.
        let icmp = k.proto == PROTO_ICMP || k.proto == PROTO_ICMPV6;
        let (sp, dp) = if icmp { (0, 0) } else { (k.sport, k.dport) };
        if (k.src, sp) <= (k.dst, dp) {
            let p = Pair {
                lo: k.src,
                hi: k.dst,
                lo_port: sp,
                hi_port: dp,
                proto: k.proto,
                family: k.family,
            };
            (p, 0)
        } else {
            let p = Pair {
                lo: k.dst,
                hi: k.src,
                lo_port: dp,
                hi_port: sp,
                proto: k.proto,
                family: k.family,
            };
            (p, 1)
        }
    }
}

/// One direction's counters: as last read from the kernel, and as last reported.
#[derive(Debug, Clone, Copy, Default)]
struct Dir {
    now: FlowCounters,
    reported_packets: u64,
    reported_bytes: u64,
    /// Source and destination port of this direction's key.
    ports: (u16, u16),
    seen: bool,
}

impl Dir {
    fn pending(&self) -> bool {
        self.now.packets > self.reported_packets
    }
}

#[derive(Debug, Clone, Default)]
struct Conn {
    dirs: [Dir; 2],
    /// The side that opened the connection; fixed by its first record.
    opener: Option<Side>,
    /// The sweep that last found it in the kernel table.
    generation: u64,
    /// When its last record was made (boot ns); `None` before the first.
    reported_at: Option<u64>,
    syn_reported: bool,
    established_reported: bool,
}

impl Conn {
    fn first_ns(&self) -> u64 {
        self.dirs
            .iter()
            .filter(|d| d.seen)
            .map(|d| d.now.first_ns)
            .min()
            .unwrap_or(0)
    }

    fn last_ns(&self) -> u64 {
        self.dirs.iter().map(|d| d.now.last_ns).max().unwrap_or(0)
    }

    fn flags(&self) -> u8 {
        self.dirs[0].now.tcp_flags | self.dirs[1].now.tcp_flags
    }

    /// An RST, or a FIN from every side seen.
    fn closed(&self, proto: u8) -> bool {
        if proto != PROTO_TCP {
            return false;
        }
        self.flags() & TCP_RST != 0
            || self
                .dirs
                .iter()
                .filter(|d| d.seen)
                .all(|d| d.now.tcp_flags & TCP_FIN != 0)
    }

    /// Which side opened the connection. With both directions seen, the one whose first
    /// packet came first. With one, a bare SYN's sender opened it, a SYN-ACK's receiver
    /// did; otherwise the sender from the higher port is taken for the client.
    fn find_opener(&self, proto: u8) -> Side {
        let [a, b] = &self.dirs;
        match (a.seen, b.seen) {
            (true, true) => {
                if a.now.first_ns != b.now.first_ns {
                    usize::from(b.now.first_ns < a.now.first_ns)
                } else {
                    // Simultaneous: the side talking to the lower port is the client.
                    usize::from(b.ports.1 < a.ports.1)
                }
            }
            (seen_a, _) => {
                let (side, d) = if seen_a { (0, a) } else { (1, b) };
                let f = d.now.tcp_flags;
                let sender_opened = if proto == PROTO_TCP && f & TCP_SYN != 0 {
                    f & TCP_ACK == 0 || d.ports.0 > d.ports.1
                } else if proto == PROTO_TCP || proto == PROTO_UDP {
                    d.ports.0 >= d.ports.1
                } else {
                    true
                };
                if sender_opened { side } else { 1 - side }
            }
        }
    }
}

/// The sweeper's state: every connection the kernel table holds.
#[derive(Debug, Default)]
pub struct Sweeper {
    config: Config,
    conns: HashMap<Pair, Conn>,
    generation: u64,
}

/// What one sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sweep {
    /// Directional entries read.
    pub entries: usize,
    /// Connections tracked after the sweep.
    pub connections: usize,
    /// Records made.
    pub reported: usize,
    /// Connections the kernel table no longer holds.
    pub forgotten: usize,
}

impl Sweeper {
    pub fn new(config: Config) -> Self {
        Sweeper {
            config,
            conns: HashMap::new(),
            generation: 0,
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Connections tracked.
    pub fn len(&self) -> usize {
        self.conns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.conns.is_empty()
    }

    /// Takes in the whole flow table as read at `now` (boot nanoseconds, the kernel's
    /// clock) and appends a record to `out` for every connection that is due.
    pub fn sweep(
        &mut self,
        now: u64,
        table: impl IntoIterator<Item = (FlowKey, FlowCounters)>,
        clock: &BootClock,
        out: &mut Vec<Event>,
    ) -> Sweep {
        self.generation += 1;
        let generation = self.generation;
        let mut stats = Sweep::default();
        for (key, flow) in table {
            if flow.packets == 0 || addr(key.family, &key.src).is_none() {
                continue;
            }
            stats.entries += 1;
            let (pair, side) = Pair::of(&key);
            let conn = match self.conns.entry(pair) {
                Entry::Occupied(e) => e.into_mut(),
                Entry::Vacant(e) => e.insert(Conn::default()),
            };
            conn.generation = generation;
            let d = &mut conn.dirs[side];
            if flow.packets < d.reported_packets || flow.bytes < d.reported_bytes {
                // The kernel's entry was evicted and made anew between two sweeps.
                d.reported_packets = 0;
                d.reported_bytes = 0;
            }
            d.now = flow;
            d.ports = (key.sport, key.dport);
            d.seen = true;
        }
        let update = nanos(self.config.update);
        let idle = nanos(self.config.idle);
        let before = self.conns.len();
        self.conns.retain(|pair, conn| {
            if conn.generation != generation {
                return false;
            }
            if !conn.dirs.iter().any(Dir::pending) {
                return true;
            }
            let due = match conn.reported_at {
                Some(at) => now.saturating_sub(at) >= update,
                None => now.saturating_sub(conn.first_ns()) >= update,
            };
            let over = conn.closed(pair.proto) || now.saturating_sub(conn.last_ns()) >= idle;
            if due || over {
                out.push(record(pair, conn, now, clock));
                stats.reported += 1;
            }
            true
        });
        stats.forgotten = before - self.conns.len();
        stats.connections = self.conns.len();
        stats
    }
}

fn nanos(d: Duration) -> u64 {
    d.as_nanos().min(u128::from(u64::MAX)) as u64
}

/// The record of what moved in `conn` since its last one; marks it reported.
fn record(pair: &Pair, conn: &mut Conn, now: u64, clock: &BootClock) -> Event {
    let o = match conn.opener {
        Some(o) => o,
        None => conn.find_opener(pair.proto),
    };
    conn.opener = Some(o);
    let r = 1 - o;
    let (out, inn) = (conn.dirs[o], conn.dirs[r]);
    let ends = [(pair.lo, pair.lo_port), (pair.hi, pair.hi_port)];
    let ip = |side: Side| addr(pair.family, &ends[side].0).expect("checked when read");
    // The opener's ports as its own key had them (ICMP: type and code); from the reply's
    // key, reversed, when only the reply was seen.
    let (src_port, dst_port) = if out.seen {
        out.ports
    } else {
        (inn.ports.1, inn.ports.0)
    };
    let tcp = pair.proto == PROTO_TCP;
    let established = tcp
        && out.now.tcp_flags & (TCP_SYN | TCP_ACK) == TCP_SYN | TCP_ACK
        && (!inn.seen || inn.now.tcp_flags & (TCP_SYN | TCP_ACK) == TCP_SYN | TCP_ACK);
    let report_established = established && !conn.established_reported;
    let keep_syn = !conn.syn_reported;
    let flags = |f: u8| TcpFlags(if keep_syn { f } else { f & !TCP_SYN });
    let event = Event {
        ts: clock.wall(now),
        process: Process::default(),
        kind: EventKind::Flow {
            src: ip(o),
            src_port,
            dst: ip(r),
            dst_port,
            transport: Transport::from_ip_proto(pair.proto),
            packets_out: out.now.packets.saturating_sub(out.reported_packets),
            bytes_out: out.now.bytes.saturating_sub(out.reported_bytes),
            packets_in: inn.now.packets.saturating_sub(inn.reported_packets),
            bytes_in: inn.now.bytes.saturating_sub(inn.reported_bytes),
            flags_out: flags(out.now.tcp_flags),
            flags_in: flags(inn.now.tcp_flags),
            syn_unanswered: 0,
            established: report_established,
            icmp_unreachable: false,
            first_seen: clock.wall(conn.first_ns()),
            last_seen: clock.wall(conn.last_ns()),
            link: None,
        },
    };
    for d in &mut conn.dirs {
        d.reported_packets = d.now.packets;
        d.reported_bytes = d.now.bytes;
    }
    conn.syn_reported = true;
    conn.established_reported |= report_established;
    conn.reported_at = Some(now);
    event
}

#[cfg(test)]
mod tests {
    use super::*;
    use heir_abi::packet::{FAMILY_V4, TCP_PSH};
    use proptest::prelude::*;

    const S: u64 = 1_000_000_000;

    fn v4(ip: [u8; 4]) -> [u8; 16] {
        let mut a = [0u8; 16];
        a[..4].copy_from_slice(&ip);
        a
    }

    fn key(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16, proto: u8) -> FlowKey {
        FlowKey {
            src: v4(src),
            dst: v4(dst),
            sport,
            dport,
            proto,
            family: FAMILY_V4,
            _pad: [0; 2],
        }
    }

    fn flow(first: u64, last: u64, packets: u64, bytes: u64, flags: u8) -> FlowCounters {
        FlowCounters {
            first_ns: first,
            last_ns: last,
            packets,
            bytes,
            tcp_flags: flags,
        }
    }

    const DEV: [u8; 4] = [10, 9, 0, 7];
    const OUT: [u8; 4] = [203, 0, 113, 5];

    fn config() -> Config {
        Config {
            sweep: Duration::from_secs(2),
            update: Duration::from_secs(30),
            idle: Duration::from_secs(15),
        }
    }

    fn sweep(s: &mut Sweeper, now: u64, table: &[(FlowKey, FlowCounters)]) -> Vec<Event> {
        let mut out = Vec::new();
        s.sweep(
            now,
            table.iter().copied(),
            &BootClock::with_offset(0),
            &mut out,
        );
        out
    }

    /// The fields of a record, in a comparable shape.
    #[derive(Debug, PartialEq)]
    struct R {
        src: String,
        sport: u16,
        dst: String,
        dport: u16,
        out: (u64, u64),
        inn: (u64, u64),
        flags: (u8, u8),
        established: bool,
        first: u64,
        last: u64,
    }

    fn r(e: &Event) -> R {
        let EventKind::Flow {
            src,
            src_port,
            dst,
            dst_port,
            packets_out,
            bytes_out,
            packets_in,
            bytes_in,
            flags_out,
            flags_in,
            established,
            first_seen,
            last_seen,
            syn_unanswered,
            ..
        } = &e.kind
        else {
            panic!("not a flow: {e:?}");
        };
        assert_eq!(*syn_unanswered, 0);
        R {
            src: src.to_string(),
            sport: *src_port,
            dst: dst.to_string(),
            dport: *dst_port,
            out: (*packets_out, *bytes_out),
            inn: (*packets_in, *bytes_in),
            flags: (flags_out.0, flags_in.0),
            established: *established,
            first: first_seen.as_nanos(),
            last: last_seen.as_nanos(),
        }
    }

    #[test]
    fn a_closed_connection_is_one_record_from_the_side_that_opened_it() {
        let mut s = Sweeper::new(config());
        let up = key(DEV, 40000, OUT, 443, PROTO_TCP);
        let down = key(OUT, 443, DEV, 40000, PROTO_TCP);
        let all = TCP_SYN | TCP_ACK | TCP_PSH | TCP_FIN;
        // The reply sorts first in the pair; the opener is still the device.
        let table = [
            (down, flow(S + 10, 2 * S, 6, 9_000, all)),
            (up, flow(S, 2 * S, 8, 70_000, all)),
        ];
        let out = sweep(&mut s, 3 * S, &table);
        assert_eq!(out.len(), 1);
        assert_eq!(
            r(&out[0]),
            R {
                src: "10.9.0.7".into(),
                sport: 40000,
                dst: "203.0.113.5".into(),
                dport: 443,
                out: (8, 70_000),
                inn: (6, 9_000),
                flags: (all, all),
                established: true,
                first: S,
                last: 2 * S,
            }
        );
        assert_eq!(out[0].ts.as_nanos(), 3 * S);
        // Still in the kernel table, unchanged: never reported again, and kept.
        assert!(sweep(&mut s, 60 * S, &table).is_empty());
        assert_eq!(s.len(), 1);
        // Gone from the kernel table: forgotten.
        assert!(sweep(&mut s, 61 * S, &[]).is_empty());
        assert!(s.is_empty());
    }

    #[test]
    fn an_open_connection_is_reported_per_update_interval_with_what_moved() {
        let mut s = Sweeper::new(config());
        let up = key(DEV, 40001, OUT, 443, PROTO_TCP);
        let down = key(OUT, 443, DEV, 40001, PROTO_TCP);
        let f = TCP_SYN | TCP_ACK | TCP_PSH;
        let at = |t: u64, p: u64, b: u64| {
            [
                (up, flow(S, t, p, b, f)),
                (down, flow(S + 1, t, p / 2, b / 10, f)),
            ]
        };
        // Busy but younger than the update interval: nothing yet.
        assert!(sweep(&mut s, 20 * S, &at(20 * S, 1000, 1_000_000)).is_empty());
        let first = sweep(&mut s, 31 * S, &at(31 * S, 2000, 2_000_000));
        assert_eq!(first.len(), 1);
        let a = r(&first[0]);
        assert_eq!((a.out, a.inn), ((2000, 2_000_000), (1000, 200_000)));
        assert!(a.established && a.flags.0 & TCP_SYN != 0);
        // Too soon for the next one.
        assert!(sweep(&mut s, 40 * S, &at(40 * S, 2500, 2_500_000)).is_empty());
        let second = sweep(&mut s, 62 * S, &at(61 * S, 3000, 3_000_000));
        assert_eq!(second.len(), 1);
        let b = r(&second[0]);
        // Only what moved since the first record; the opening is not repeated.
        assert_eq!((b.out, b.inn), ((1000, 1_000_000), (500, 100_000)));
        assert!(!b.established);
        assert_eq!(b.flags, (TCP_ACK | TCP_PSH, TCP_ACK | TCP_PSH));
        assert_eq!(b.first, S, "first_seen stays the connection's start");
        assert_eq!(b.last, 61 * S);
        // It went quiet with nothing new: no record; new packets, then idle: one more.
        assert!(sweep(&mut s, 80 * S, &at(61 * S, 3000, 3_000_000)).is_empty());
        assert!(sweep(&mut s, 81 * S, &at(81 * S, 3001, 3_000_066)).is_empty());
        let last = sweep(&mut s, 97 * S, &at(81 * S, 3001, 3_000_066));
        assert_eq!(r(&last[0]).out, (1, 66));
    }

    #[test]
    fn udp_is_reported_once_idle_and_icmp_pairs_request_with_reply() {
        let mut s = Sweeper::new(config());
        let q = key(DEV, 5353, OUT, 53, PROTO_UDP);
        let a = key(OUT, 53, DEV, 5353, PROTO_UDP);
        // ICMP echo request (type 8) and reply (type 0).
        let ping = key(DEV, 8, OUT, 0, PROTO_ICMP);
        let pong = key(OUT, 0, DEV, 0, PROTO_ICMP);
        let table = [
            (q, flow(S, S, 1, 80, 0)),
            (a, flow(S + 5, S + 5, 1, 200, 0)),
            (ping, flow(2 * S, 4 * S, 3, 294, 0)),
            (pong, flow(2 * S + 1, 4 * S + 1, 3, 294, 0)),
        ];
        assert!(sweep(&mut s, 10 * S, &table).is_empty());
        let mut out: Vec<R> = sweep(&mut s, 20 * S, &table).iter().map(r).collect();
        out.sort_by_key(|x| x.dport);
        assert_eq!(out.len(), 2, "{out:#?}");
        assert_eq!(
            (out[0].dport, out[0].out, out[0].inn),
            (0, (3, 294), (3, 294))
        );
        assert_eq!(out[0].sport, 8, "ICMP keeps the request's type");
        assert_eq!((out[1].src.as_str(), out[1].dport), ("10.9.0.7", 53));
        assert_eq!((out[1].out, out[1].inn), ((1, 80), (1, 200)));
    }

    #[test]
    fn one_direction_seen_finds_the_opener_from_flags_and_ports() {
        let mut s = Sweeper::new(config());
        // Only the server's answers cross the sensor: SYN-ACK, data, FIN.
        let down = key(OUT, 8080, DEV, 41000, PROTO_TCP);
        let f = TCP_SYN | TCP_ACK | TCP_PSH | TCP_FIN;
        let out = sweep(&mut s, 5 * S, &[(down, flow(S, 2 * S, 4, 900, f))]);
        let a = r(&out[0]);
        assert_eq!(
            (a.src.as_str(), a.sport, a.dst.as_str(), a.dport),
            ("10.9.0.7", 41000, "203.0.113.5", 8080)
        );
        assert_eq!((a.out, a.inn), ((0, 0), (4, 900)));
        assert!(!a.established, "the opener's ACK was never seen");
        // A scanner's bare SYN answered by nothing: the sender opened it.
        let syn = key(OUT, 61000, DEV, 22, PROTO_TCP);
        let out = sweep(&mut s, 30 * S, &[(syn, flow(S, S, 2, 120, TCP_SYN))]);
        let a = r(&out[0]);
        assert_eq!(
            (a.src.as_str(), a.dport, a.out),
            ("203.0.113.5", 22, (2, 120))
        );
        assert_eq!(a.flags.0, TCP_SYN);
    }

    #[test]
    fn a_recreated_kernel_entry_reports_its_own_counts() {
        let mut s = Sweeper::new(config());
        let k = key(DEV, 40002, OUT, 80, PROTO_TCP);
        let rst = TCP_SYN | TCP_ACK | TCP_RST;
        assert_eq!(
            r(&sweep(&mut s, 5 * S, &[(k, flow(S, S, 10, 5_000, rst))])[0]).out,
            (10, 5_000)
        );
        // Evicted and made anew between two sweeps: smaller counters than reported.
        let out = sweep(&mut s, 9 * S, &[(k, flow(8 * S, 8 * S, 3, 400, rst))]);
        assert_eq!(r(&out[0]).out, (3, 400));
    }

    proptest! {
        /// Whatever the table does, sweeping never panics, and every packet the kernel
        /// counted is reported exactly once by the time all connections went idle.
        #[test]
        fn every_packet_is_reported_once(
            steps in proptest::collection::vec(
                proptest::collection::vec((0u8..6, 0u8..3, 0u64..50, 0u64..5_000, any::<u8>()), 0..12),
                1..8,
            ),
        ) {
            let mut s = Sweeper::new(Config {
                sweep: Duration::from_secs(1),
                update: Duration::from_secs(3),
                idle: Duration::from_secs(5),
            });
            let proto = [PROTO_TCP, PROTO_UDP, PROTO_ICMP];
            // Six directional keys: three connections, both ways.
            let keys: Vec<FlowKey> = (0..6u16)
                .map(|i| {
                    let (a, b) = ([10, 0, 0, (i / 2) as u8], [198, 51, 100, 1]);
                    let p = proto[usize::from(i / 2) % 3];
                    if i % 2 == 0 { key(a, 1000 + i / 2, b, 80, p) } else { key(b, 80, a, 1000 + i / 2, p) }
                })
                .collect();
            let mut totals: HashMap<usize, FlowCounters> = HashMap::new();
            let mut reported = 0u64;
            let mut now = S;
            for step in &steps {
                now += S;
                for (k, _, packets, bytes, flags) in step {
                    let t = totals.entry(usize::from(*k)).or_insert(FlowCounters { first_ns: now, ..FlowCounters::default() });
                    t.packets += packets;
                    t.bytes += bytes;
                    t.tcp_flags |= flags;
                    if *packets > 0 { t.last_ns = now; }
                }
                let table: Vec<_> = totals.iter().map(|(k, f)| (keys[*k], *f)).collect();
                for e in sweep(&mut s, now, &table) {
                    let x = r(&e);
                    reported += x.out.0 + x.inn.0;
                }
            }
            let table: Vec<_> = totals.iter().map(|(k, f)| (keys[*k], *f)).collect();
            for e in sweep(&mut s, now + 100 * S, &table) {
                let x = r(&e);
                reported += x.out.0 + x.inn.0;
            }
            let counted: u64 = totals.values().map(|f| f.packets).sum();
            prop_assert_eq!(reported, counted);
            // Arbitrary bytes as keys and counters never panic either.
            let junk: Vec<(FlowKey, FlowCounters)> = steps.iter().flatten().map(|(k, fam, p, b, f)| {
                let mut x = keys[usize::from(*k)];
                x.family = [4, 6, 0][usize::from(*fam)];
                x.proto = *f;
                (x, FlowCounters { first_ns: *b, last_ns: *p, packets: *p, bytes: *b, tcp_flags: *f })
            }).collect();
            sweep(&mut s, 0, &junk);
            sweep(&mut s, u64::MAX, &junk);
        }
    }
}
