//! Port scans from flow summaries: vertical (one source probing many ports of one host) and
//! horizontal (one source probing one port across many hosts), naming the nmap scan types seen.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use heir_model::event::{TcpFlags, Transport};
use heir_model::{Alert, Category, Event, EventKind, Severity};
use serde::{Deserialize, Serialize};

use crate::util::{Cidr, bound, in_any, secs_to_ns};
use crate::{Detector, Kind, Spec};

const SPEC: Spec = Spec {
    rule: "net.port_scan",
    category: Category::PortScan,
    owasp_iot: "I2",
    enisa: "Nefarious activity/abuse: network reconnaissance",
    attack: "T1046",
};

/// Port scan settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub enabled: bool,
    /// Sliding window in seconds over which probes are counted.
    pub window_secs: u64,
    /// Distinct ports probed on one host that make a vertical scan.
    pub vertical_ports: usize,
    /// Distinct hosts probed on one port that make a horizontal scan.
    pub horizontal_hosts: usize,
    /// Scanners that are expected (vulnerability management, monitoring).
    pub ignore_sources: Vec<Cidr>,
    /// Seconds without a probe after which a source's next probes are a new scan, reported
    /// afresh even when they hit the same ports: a second scan by a known scanner is news.
    pub rescan_gap_secs: u64,
    /// Most sources tracked at once.
    pub max_sources: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            enabled: true,
            window_secs: 60,
            vertical_ports: 20,
            horizontal_hosts: 15,
            ignore_sources: Vec::new(),
            rescan_gap_secs: 10,
            max_sources: 20_000,
        }
    }
}

/// What kind of probe a flow was, as nmap names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Probe {
    Syn,
    Connect,
    Fin,
    Null,
    Xmas,
    Ack,
    Udp,
}

impl Probe {
    pub const fn name(self) -> &'static str {
        match self {
            Probe::Syn => "SYN (-sS)",
            Probe::Connect => "connect (-sT)",
            Probe::Fin => "FIN (-sF)",
            Probe::Null => "NULL (-sN)",
            Probe::Xmas => "Xmas (-sX)",
            Probe::Ack => "ACK (-sA)",
            Probe::Udp => "UDP (-sU)",
        }
    }

    /// Classifies a flow; `None` for anything that looks like real use.
    pub fn classify(ev: &EventKind) -> Option<Probe> {
        let EventKind::Flow {
            transport,
            flags_out,
            packets_out,
            bytes_out,
            packets_in,
            bytes_in,
            established,
            icmp_unreachable,
            ..
        } = ev
        else {
            return None;
        };
        let f = flags_out.0 & !(TcpFlags::ECE | TcpFlags::CWR);
        match transport {
            Transport::Tcp => {
                let syn = f & TcpFlags::SYN != 0;
                if syn && !established && *packets_out <= 3 {
                    return Some(Probe::Syn);
                }
                if syn
                    && *established
                    && *packets_out <= 4
                    && *bytes_out <= 240
                    && *bytes_in <= 240
                    && (f & TcpFlags::RST != 0 || *packets_in <= 2)
                {
                    return Some(Probe::Connect);
                }
                if syn || *packets_out > 2 || *bytes_out > 120 {
                    return None;
                }
                match f {
                    0 => Some(Probe::Null),
                    x if x == TcpFlags::FIN => Some(Probe::Fin),
                    x if x == TcpFlags::FIN | TcpFlags::PSH | TcpFlags::URG => Some(Probe::Xmas),
                    x if x == TcpFlags::ACK => Some(Probe::Ack),
                    _ => None,
                }
            }
            Transport::Udp => {
                (*packets_out <= 2 && *bytes_out <= 200 && (*icmp_unreachable || *packets_in == 0))
                    .then_some(Probe::Udp)
            }
            _ => None,
        }
    }
}

#[derive(Default)]
struct Source {
    /// (dst, port) → last probe time.
    probes: HashMap<(IpAddr, u16), u64>,
    kinds: BTreeMap<Probe, u64>,
    first: u64,
    /// The latest probe, to tell a new scan from the same one going on.
    last: u64,
    /// Per scanned host / port: when it was last reported and how many probes so far, so a
    /// growing scan is reported again each time it doubles (the aggregator folds the
    /// increments into one incident whose count is the total).
    alerted_vertical: HashMap<IpAddr, (u64, usize)>,
    alerted_horizontal: HashMap<u16, (u64, usize)>,
}

pub struct PortScan {
    cfg: Config,
    sources: HashMap<IpAddr, Source>,
}

impl PortScan {
    pub fn new(cfg: Config) -> Self {
        Self {
            cfg,
            sources: HashMap::new(),
        }
    }
}

impl Detector for PortScan {
    fn name(&self) -> &'static str {
        "port_scan"
    }

    fn kinds(&self) -> &'static [Kind] {
        &[Kind::Flow]
    }

    fn inspect(&mut self, ev: &Event, out: &mut Vec<Alert>) {
        let EventKind::Flow {
            src, dst, dst_port, ..
        } = &ev.kind
        else {
            return;
        };
        let Some(probe) = Probe::classify(&ev.kind) else {
            return;
        };
        if in_any(&self.cfg.ignore_sources, *src) {
            return;
        }
        let now = ev.ts.as_nanos();
        let window = secs_to_ns(self.cfg.window_secs);
        let horizon = now.saturating_sub(window);
        bound(&mut self.sources, self.cfg.max_sources, |_, s| {
            s.probes.values().any(|t| *t >= horizon)
        });
        let s = self.sources.entry(*src).or_default();
        if s.last != 0 && now.saturating_sub(s.last) > secs_to_ns(self.cfg.rescan_gap_secs) {
            *s = Source::default();
        }
        s.last = now;
        if s.probes.is_empty() {
            s.first = now;
            s.kinds.clear();
        }
        s.probes.retain(|_, t| *t >= horizon);
        s.probes.insert((*dst, *dst_port), now);
        *s.kinds.entry(probe).or_default() += 1;
        let types = s
            .kinds
            .iter()
            .map(|(k, n)| format!("{} ×{n}", k.name()))
            .collect::<Vec<_>>()
            .join(", ");

        let ports_on_dst = s.probes.keys().filter(|(d, _)| d == dst).count();
        let reported = match s.alerted_vertical.get(dst) {
            Some((t, n)) if *t >= horizon => Some(*n),
            _ => None,
        };
        if ports_on_dst >= self.cfg.vertical_ports && reported.is_none_or(|n| ports_on_dst >= 2 * n)
        {
            s.alerted_vertical.insert(*dst, (now, ports_on_dst));
            let mut ports: Vec<u16> = s
                .probes
                .keys()
                .filter(|(d, _)| d == dst)
                .map(|(_, p)| *p)
                .collect();
            ports.sort_unstable();
            let sample: Vec<String> = ports.iter().take(12).map(u16::to_string).collect();
            let mut a = SPEC.alert(
                ev.ts,
                format!("Port scan of {dst} from {src}"),
                Severity::High,
                0.9,
            );
            a.device = Some(dst.to_string());
            a.src_ip = Some(*src);
            a.dst_ip = Some(*dst);
            a.count = (ports_on_dst - reported.unwrap_or(0)) as u64;
            a.evidence = vec![
                format!(
                    "vertical scan: {ports_on_dst} ports of {dst} probed within {}s",
                    self.cfg.window_secs
                ),
                format!("scan types: {types}"),
                format!(
                    "ports: {}{}",
                    sample.join(","),
                    if ports.len() > 12 { ",…" } else { "" }
                ),
            ];
            out.push(a);
        }
        let hosts_on_port = s.probes.keys().filter(|(_, p)| p == dst_port).count();
        let reported = match s.alerted_horizontal.get(dst_port) {
            Some((t, n)) if *t >= horizon => Some(*n),
            _ => None,
        };
        if hosts_on_port >= self.cfg.horizontal_hosts
            && reported.is_none_or(|n| hosts_on_port >= 2 * n)
        {
            s.alerted_horizontal.insert(*dst_port, (now, hosts_on_port));
            let mut a = SPEC.alert(
                ev.ts,
                format!("Sweep of port {dst_port} from {src}"),
                Severity::High,
                0.85,
            );
            a.device = Some(src.to_string());
            a.src_ip = Some(*src);
            a.dst_port = Some(*dst_port);
            a.count = (hosts_on_port - reported.unwrap_or(0)) as u64;
            a.evidence = vec![
                format!(
                    "horizontal scan: {hosts_on_port} hosts probed on port {dst_port} within {}s",
                    self.cfg.window_secs
                ),
                format!("scan types: {types}"),
            ];
            out.push(a);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detectors::fixtures::*;

    const S: u8 = TcpFlags::SYN;
    const R: u8 = TcpFlags::RST;
    const A: u8 = TcpFlags::ACK;

    fn syn_probe(ms: u64, dst: &str, port: u16, open: bool) -> heir_model::Event {
        // nmap -sS: SYN, then SYN-ACK (open, answered by our RST) or RST-ACK (closed).
        let flags_in = if open { S | A } else { R | A };
        flow(
            ms,
            "10.9.0.66",
            61000,
            dst,
            port,
            FlowSpec {
                flags_out: if open { S | R } else { S },
                flags_in,
                packets_out: if open { 2 } else { 1 },
                bytes_out: 44 + 40 * u64::from(open),
                packets_in: 1,
                bytes_in: 44,
                ..FlowSpec::default()
            },
        )
    }

    #[test]
    fn nmap_syn_scan_of_top_ports_is_one_vertical_scan() {
        let mut d = PortScan::new(Config::default());
        let ports = [
            21, 22, 23, 25, 53, 80, 104, 110, 111, 135, 139, 143, 443, 445, 993, 995, 1723, 2575,
            3306, 3389, 4242, 5900, 8080, 11112,
        ];
        let events: Vec<_> = ports
            .iter()
            .enumerate()
            .map(|(i, p)| syn_probe(i as u64 * 3, "10.9.0.5", *p, [22, 104, 11112].contains(p)))
            .collect();
        let alerts = run(&mut d, &events);
        assert_eq!(alerts.len(), 1, "{alerts:#?}");
        assert_eq!(alerts[0].device.as_deref(), Some("10.9.0.5"));
        assert!(
            alerts[0].evidence[1].contains("SYN (-sS)"),
            "{:?}",
            alerts[0].evidence
        );
        assert_complete(&alerts);
    }

    #[test]
    fn fin_null_xmas_ack_udp_and_connect_scans_are_named() {
        let cases: [(u8, Transport, &str, bool); 6] = [
            (TcpFlags::FIN, Transport::Tcp, "FIN (-sF)", false),
            (0, Transport::Tcp, "NULL (-sN)", false),
            (
                TcpFlags::FIN | TcpFlags::PSH | TcpFlags::URG,
                Transport::Tcp,
                "Xmas (-sX)",
                false,
            ),
            (A, Transport::Tcp, "ACK (-sA)", false),
            (0, Transport::Udp, "UDP (-sU)", false),
            (S | A | R, Transport::Tcp, "connect (-sT)", true),
        ];
        for (flags, transport, name, established) in cases {
            let mut d = PortScan::new(Config::default());
            let events: Vec<_> = (0..30u16)
                .map(|i| {
                    flow(
                        u64::from(i) * 10,
                        "10.9.0.66",
                        50000 + i,
                        "10.9.0.7",
                        1000 + i,
                        FlowSpec {
                            transport,
                            flags_out: flags,
                            flags_in: R | A,
                            packets_out: if established { 3 } else { 1 },
                            bytes_out: if established { 124 } else { 40 },
                            packets_in: 1,
                            icmp_unreachable: transport == Transport::Udp,
                            established,
                            ..FlowSpec::default()
                        },
                    )
                })
                .collect();
            let alerts = run(&mut d, &events);
            assert_eq!(alerts.len(), 1, "{name}");
            assert!(
                alerts[0].evidence[1].contains(name),
                "{name}: {:?}",
                alerts[0].evidence
            );
        }
    }

    #[test]
    fn a_growing_scan_reports_increments_that_add_up() {
        let mut d = PortScan::new(Config::default());
        let events: Vec<_> = (1..=1000u16)
            .map(|p| syn_probe(u64::from(p) / 4, "10.9.0.5", p, false))
            .collect();
        let alerts = run(&mut d, &events);
        assert!(
            alerts.len() <= 7,
            "reported at 20, 40, 80, … ports: {}",
            alerts.len()
        );
        assert_eq!(
            alerts.iter().map(|a| a.count).sum::<u64>(),
            640,
            "20+20+40+80+160+320"
        );
        let mut agg = crate::aggregate::Aggregator::new(crate::aggregate::Config::default());
        let mut out = Vec::new();
        for a in alerts {
            agg.push(a, &mut out);
        }
        agg.flush(at(10_000_000), &mut out);
        assert_eq!(out.len(), 2, "live alert and the closing total");
        assert_eq!(out[1].count, 640);
    }

    #[test]
    fn a_second_scan_of_the_same_ports_after_a_pause_is_reported_again() {
        let mut d = PortScan::new(Config::default());
        let scan = |start: u64| -> Vec<heir_model::Event> {
            (1..=30u16)
                .map(|p| syn_probe(start + u64::from(p), "10.9.0.5", p, false))
                .collect()
        };
        let first = run(&mut d, &scan(0));
        assert_eq!(first.len(), 1, "{first:#?}");
        // The same ports again a minute later: the scanner is back, and that is news.
        let second = run(&mut d, &scan(60_000));
        assert_eq!(second.len(), 1, "{second:#?}");
        assert_eq!(second[0].count, 20, "counted as a scan of its own");
        // Probes within the gap are the same scan.
        let more = run(&mut d, &scan(62_000));
        assert!(more.is_empty(), "{more:#?}");
    }

    #[test]
    fn horizontal_sweep_of_dicom_port() {
        let mut d = PortScan::new(Config::default());
        let events: Vec<_> = (1..=40)
            .map(|h| syn_probe(h * 5, &format!("10.9.1.{h}"), 104, false))
            .collect();
        let alerts = run(&mut d, &events);
        assert_eq!(alerts.len(), 2, "at 15 hosts, and again at 30");
        assert_eq!(alerts[0].dst_port, Some(104));
        assert_eq!(alerts[0].count + alerts[1].count, 30);
    }

    #[test]
    fn busy_pacs_traffic_and_slow_probes_stay_quiet() {
        let mut d = PortScan::new(Config::default());
        // dcmtk C-STORE from 30 modalities to the PACS, and a monitoring poller hitting 10 ports.
        let mut events: Vec<_> = (1..=30)
            .map(|h| {
                session(
                    h * 100,
                    &format!("10.9.2.{h}"),
                    40000,
                    "10.9.0.5",
                    104,
                    500_000,
                    2_000,
                )
            })
            .collect();
        events.extend((0..10).map(|i| syn_probe(i * 100, "10.9.0.200", 8000 + i as u16, false)));
        // Probes spaced wider than the window never accumulate.
        events.extend(
            (0..40).map(|i| syn_probe(5_000 + i * 61_000, "10.9.0.201", 1000 + i as u16, false)),
        );
        assert!(run(&mut d, &events).is_empty());
    }
}
