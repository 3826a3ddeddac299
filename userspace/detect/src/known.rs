//! Known indicators: addresses, prefixes, domains and URLs that another hospital reported
//! over the mesh, or that the operator imported, matched against what the sensors see.
//!
//! The matcher is fed from outside the event stream ([`Update`]s from the mesh and from
//! imports) and looks at the few event kinds that name a remote party: connects, a flow's
//! first record, and the DNS, TLS and HTTP observations of the packet sensor. A device's
//! first contact with an indicator is reported at once; later contacts are counted and
//! reported again at most once per [`REPORT_AGAIN`], so a beaconing pump is one alert an hour,
//! not one a second. [`hunt`] runs the same matching over stored events when an indicator
//! arrives after the contacts it names (a retrospective alert).

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use heir_model::event::{NetAddr, Observation, TcpFlags, Transport};
use heir_model::{Alert, Category, Event, EventKind, Severity, Taxonomy, Timestamp};

/// How long a device's further contacts with one indicator wait before they are reported
/// again.
pub const REPORT_AGAIN: u64 = 3600;
/// Distinct (indicator, device) pairs remembered; past it, the oldest half is forgotten.
const MAX_CONTACTS: usize = 65_536;

pub const RULE: &str = "intel.known_indicator";
pub const RETRO_RULE: &str = "intel.known_indicator_retro";

/// What an indicator points at, in the form traffic is matched in.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    Address(IpAddr),
    /// An address block; `len` bits of `net` are significant (the rest are zero).
    Prefix {
        net: IpAddr,
        len: u8,
    },
    /// A domain and every name under it, lowercased, without the trailing dot.
    Domain(String),
    /// One URL, recognised by [`heir_model::event::url_digest`] of its host and path; the
    /// host is kept for display.
    Url {
        host: String,
        digest: String,
    },
}

impl Target {
    /// An address block; a host-length prefix is an address. `None` for a length longer than
    /// the family's.
    pub fn prefix(net: IpAddr, len: u8) -> Option<Target> {
        let max = if net.is_ipv4() { 32 } else { 128 };
        if len > max {
            return None;
        }
        Some(if len == max {
            Target::Address(net)
        } else {
            Target::Prefix {
                net: mask(net, len),
                len,
            }
        })
    }

    /// A domain, normalised; `None` for something that is no host name.
    pub fn domain(name: &str) -> Option<Target> {
        let d = name.trim().trim_end_matches('.').to_ascii_lowercase();
        let ok = !d.is_empty()
            && d.len() <= 253
            && d.contains('.')
            && d.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.bytes()
                        .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
            });
        ok.then_some(Target::Domain(d))
    }

    /// An `http://` URL (an `https://` one is matched by its host only, as the sensor sees
    /// no path inside TLS: that is a domain).
    pub fn url(url: &str) -> Option<Target> {
        let url = url.trim();
        let (scheme, rest) = url.split_once("://")?;
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(end);
        let host = authority.rsplit('@').next().unwrap_or(authority);
        let host = match host.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or(v6),
            None => host.split(':').next().unwrap_or(host),
        };
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        if host.is_empty() {
            return None;
        }
        match scheme.to_ascii_lowercase().as_str() {
            "http" => Some(Target::Url {
                digest: heir_model::event::url_digest(&host, path),
                host,
            }),
            "https" => host
                .parse()
                .ok()
                .map(Target::Address)
                .or_else(|| Target::domain(&host)),
            _ => None,
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Address(a) => write!(f, "{a}"),
            Target::Prefix { net, len } => write!(f, "{net}/{len}"),
            Target::Domain(d) => f.write_str(d),
            Target::Url { host, .. } => write!(f, "a URL on {host}"),
        }
    }
}

/// Where an indicator came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// Reported by other hospitals over the mesh.
    Mesh,
    /// Imported by this hospital's operator (`heir import`).
    Import,
}

/// One indicator, as the matcher needs it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Known {
    /// Stable key: updates and removals name it.
    pub id: String,
    pub target: Target,
    /// What the reporters saw it do (`c2_beacon`, `port_scan`, …).
    pub reported_as: Category,
    /// The reporting hospitals' pseudonymous labels, or the imported file's name.
    pub reporters: Vec<String>,
    /// The TLP label (`TLP:GREEN`).
    pub tlp: String,
    /// 0..=100, as reported.
    pub confidence: u8,
    pub severity: Severity,
    /// The ATT&CK technique reported with it, if any.
    pub attack: Option<String>,
    pub origin: Origin,
}

/// A change to the set of known indicators.
#[derive(Debug, Clone)]
pub enum Update {
    /// A new indicator, or new facts about one (more reporters): replaces the one with its id.
    Add(Known),
    /// An indicator withdrawn or expired.
    Remove(String),
}

/// Where in the traffic an indicator was seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    Connect,
    /// A connection the device opened.
    Flow,
    /// A connection the indicator opened to the device (a known scanner or guesser).
    FlowFrom,
    DnsQuery,
    DnsAnswer,
    TlsServerName,
    HttpHost,
    HttpUrl,
}

impl Seen {
    fn describe(self) -> &'static str {
        match self {
            Seen::Connect => "a connect",
            Seen::Flow => "a connection through the gateway",
            Seen::FlowFrom => "a connection to the device through the gateway",
            Seen::DnsQuery => "a DNS query",
            Seen::DnsAnswer => "a DNS answer",
            Seen::TlsServerName => "a TLS server name",
            Seen::HttpHost => "an HTTP Host header",
            Seen::HttpUrl => "an HTTP request",
        }
    }
}

/// One match: which indicator, where, and the local party.
#[derive(Debug, Clone)]
pub struct Hit {
    pub known: Arc<Known>,
    pub seen: Seen,
    /// The local device's address (a packet event), or `None` for this host's own process.
    pub device: Option<IpAddr>,
    pub remote: Option<IpAddr>,
    pub port: Option<u16>,
}

#[derive(Debug, Clone, Copy)]
struct Contact {
    last_report: Timestamp,
    since_report: u64,
}

/// The set of known indicators and what has been reported of them.
#[derive(Default)]
pub struct Matcher {
    known: HashMap<String, Arc<Known>>,
    addresses: HashMap<IpAddr, Arc<Known>>,
    /// Prefix lengths in use, longest first, with the masked networks of that length.
    prefixes: Vec<(u8, HashMap<IpAddr, Arc<Known>>)>,
    domains: HashMap<String, Arc<Known>>,
    urls: HashMap<String, Arc<Known>>,
    contacts: HashMap<(String, Option<IpAddr>), Contact>,
}

impl Matcher {
    pub fn is_empty(&self) -> bool {
        self.known.is_empty()
    }

    pub fn len(&self) -> usize {
        self.known.len()
    }

    pub fn apply(&mut self, update: Update) {
        match update {
            Update::Add(k) => {
                self.remove(&k.id);
                let k = Arc::new(k);
                match &k.target {
                    Target::Address(a) => {
                        self.addresses.insert(*a, k.clone());
                    }
                    Target::Prefix { net, len } => {
                        let i = match self.prefixes.iter().position(|(l, _)| *l <= *len) {
                            Some(i) if self.prefixes[i].0 == *len => i,
                            Some(i) => {
                                self.prefixes.insert(i, (*len, HashMap::new()));
                                i
                            }
                            None => {
                                self.prefixes.push((*len, HashMap::new()));
                                self.prefixes.len() - 1
                            }
                        };
                        self.prefixes[i].1.insert(*net, k.clone());
                    }
                    Target::Domain(d) => {
                        self.domains.insert(d.clone(), k.clone());
                    }
                    Target::Url { digest, .. } => {
                        self.urls.insert(digest.clone(), k.clone());
                    }
                }
                self.known.insert(k.id.clone(), k);
            }
            Update::Remove(id) => self.remove(&id),
        }
    }

    fn remove(&mut self, id: &str) {
        let Some(k) = self.known.remove(id) else {
            return;
        };
        match &k.target {
            Target::Address(a) => {
                self.addresses.remove(a);
            }
            Target::Prefix { net, len } => {
                if let Some(i) = self.prefixes.iter().position(|(l, _)| l == len) {
                    self.prefixes[i].1.remove(net);
                    if self.prefixes[i].1.is_empty() {
                        self.prefixes.remove(i);
                    }
                }
            }
            Target::Domain(d) => {
                self.domains.remove(d);
            }
            Target::Url { digest, .. } => {
                self.urls.remove(digest);
            }
        }
    }

    /// The indicator naming this address, exactly or by the longest prefix.
    pub fn address(&self, ip: IpAddr) -> Option<&Arc<Known>> {
        let ip = canonical(ip);
        self.addresses.get(&ip).or_else(|| {
            let max = if ip.is_ipv4() { 32 } else { 128 };
            self.prefixes
                .iter()
                .filter(|(len, _)| *len < max)
                .find_map(|(len, nets)| nets.get(&mask(ip, *len)))
        })
    }

    /// The indicator naming this host name or a domain above it.
    pub fn domain(&self, name: &str) -> Option<&Arc<Known>> {
        if self.domains.is_empty() {
            return None;
        }
        let name = name.trim_end_matches('.');
        let lower;
        let name = if name.bytes().any(|c| c.is_ascii_uppercase()) {
            lower = name.to_ascii_lowercase();
            lower.as_str()
        } else {
            name
        };
        let mut rest = name;
        loop {
            if let Some(k) = self.domains.get(rest) {
                return Some(k);
            }
            rest = rest.split_once('.')?.1;
        }
    }

    /// Every indicator this event shows a contact with.
    pub fn hits(&self, ev: &Event, out: &mut Vec<Hit>) {
        if self.is_empty() {
            return;
        }
        let mut push = |known: &Arc<Known>, seen, device, remote, port| {
            out.push(Hit {
                known: known.clone(),
                seen,
                device,
                remote,
                port,
            })
        };
        match &ev.kind {
            EventKind::Connect {
                addr: NetAddr::Inet { ip, port },
                ..
            } => {
                if let Some(k) = self.address(*ip) {
                    push(k, Seen::Connect, None, Some(*ip), Some(*port));
                }
            }
            // A flow's first record carries where it was seen; its summaries, later, do not.
            EventKind::Flow {
                src,
                dst,
                src_port,
                dst_port,
                transport,
                flags_out,
                link: Some(_),
                ..
            } => {
                // The sensor's `src` sent the first packet it saw. A scanned device's RST or
                // SYN-ACK can be that packet (the scanner's SYN went the other way on another
                // NIC): such a flow was opened by `dst`, and reading it as the device calling
                // the scanner would report every scanned device as contacting a known attacker.
                let answer = *transport == Transport::Tcp
                    && (flags_out.has(TcpFlags::SYN | TcpFlags::ACK)
                        || (flags_out.has(TcpFlags::RST) && !flags_out.has(TcpFlags::SYN)));
                let (opener, responder, port) = if answer {
                    (*dst, *src, *src_port)
                } else {
                    (*src, *dst, *dst_port)
                };
                if let Some(k) = self.address(responder) {
                    push(k, Seen::Flow, Some(opener), Some(responder), Some(port));
                } else if let Some(k) = self.address(opener) {
                    push(k, Seen::FlowFrom, Some(responder), Some(opener), Some(port));
                }
            }
            EventKind::Protocol {
                src,
                dst,
                dst_port,
                observation,
                ..
            } => match observation {
                Observation::Dns {
                    query,
                    response,
                    answers,
                } => {
                    // A query comes from the device; an answer goes to it.
                    let (device, server) = if *response {
                        (*dst, *src)
                    } else {
                        (*src, *dst)
                    };
                    let seen = if *response {
                        Seen::DnsAnswer
                    } else {
                        Seen::DnsQuery
                    };
                    if let Some(k) = self.domain(query) {
                        push(k, seen, Some(device), Some(server), Some(53));
                    }
                    for a in answers {
                        if let Some(k) = self.address(*a) {
                            push(k, Seen::DnsAnswer, Some(device), Some(*a), None);
                        }
                    }
                }
                Observation::TlsClientHello {
                    sni: Some(name), ..
                } => {
                    if let Some(k) = self.domain(name) {
                        push(
                            k,
                            Seen::TlsServerName,
                            Some(*src),
                            Some(*dst),
                            Some(*dst_port),
                        );
                    }
                }
                Observation::Http {
                    host, url_digest, ..
                } => {
                    if let Some(k) = url_digest.as_ref().and_then(|d| self.urls.get(d)) {
                        push(k, Seen::HttpUrl, Some(*src), Some(*dst), Some(*dst_port));
                    } else if let Some(k) = host.as_deref().and_then(|h| self.domain(h)) {
                        push(k, Seen::HttpHost, Some(*src), Some(*dst), Some(*dst_port));
                    }
                }
                _ => {}
            },
            _ => {}
        }
    }

    /// Matches one event; reports a device's first contact with an indicator at once and
    /// further ones at most once per [`REPORT_AGAIN`].
    pub fn inspect(&mut self, ev: &Event, out: &mut Vec<Alert>) {
        if self.is_empty() {
            return;
        }
        let mut hits = Vec::new();
        self.hits(ev, &mut hits);
        for hit in hits {
            let key = (hit.known.id.clone(), hit.device);
            if self.contacts.len() >= MAX_CONTACTS && !self.contacts.contains_key(&key) {
                let mut by_age: Vec<_> = self
                    .contacts
                    .iter()
                    .map(|(k, c)| (c.last_report, k.clone()))
                    .collect();
                by_age.sort_by_key(|(t, _)| *t);
                for (_, k) in by_age.into_iter().take(MAX_CONTACTS / 2) {
                    self.contacts.remove(&k);
                }
            }
            match self.contacts.get_mut(&key) {
                Some(c) if ev.ts.saturating_sub(c.last_report).as_secs() < REPORT_AGAIN => {
                    c.since_report += 1;
                }
                Some(c) => {
                    let count = c.since_report + 1;
                    *c = Contact {
                        last_report: ev.ts,
                        since_report: 0,
                    };
                    out.push(alert(&hit, ev, count, None));
                }
                None => {
                    self.contacts.insert(
                        key,
                        Contact {
                            last_report: ev.ts,
                            since_report: 0,
                        },
                    );
                    out.push(alert(&hit, ev, 1, None));
                }
            }
        }
    }
}

/// Earlier contacts of one device with an indicator, found in stored events.
#[derive(Debug, Clone, Copy)]
struct Earlier {
    first: Timestamp,
    last: Timestamp,
    count: u64,
}

/// Retro-hunt: matches stored events (visited in any order) against indicators that arrived
/// after them, and makes one retrospective alert per indicator and device.
pub struct Hunt {
    matcher: Matcher,
    found: Vec<(Hit, Event, Earlier)>,
    hits: Vec<Hit>,
}

impl Hunt {
    pub fn new(known: impl IntoIterator<Item = Known>) -> Hunt {
        let mut matcher = Matcher::default();
        for k in known {
            matcher.apply(Update::Add(k));
        }
        Hunt {
            matcher,
            found: Vec::new(),
            hits: Vec::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.matcher.is_empty()
    }

    pub fn visit(&mut self, ev: &Event) {
        self.hits.clear();
        self.matcher.hits(ev, &mut self.hits);
        for hit in self.hits.drain(..) {
            let same = |(h, e, _): &&mut (Hit, Event, Earlier)| {
                Arc::ptr_eq(&h.known, &hit.known)
                    && h.device == hit.device
                    && (hit.device.is_some() || e.process.comm == ev.process.comm)
            };
            match self.found.iter_mut().find(|f| same(f)) {
                Some((_, _, e)) => {
                    e.first = e.first.min(ev.ts);
                    e.last = e.last.max(ev.ts);
                    e.count += 1;
                }
                None => self.found.push((
                    hit,
                    ev.clone(),
                    Earlier {
                        first: ev.ts,
                        last: ev.ts,
                        count: 1,
                    },
                )),
            }
        }
    }

    /// The alerts, stamped `now`, first contact first.
    pub fn finish(self, now: Timestamp) -> Vec<Alert> {
        let mut found = self.found;
        found.sort_by_key(|(_, _, e)| e.first);
        found
            .into_iter()
            .map(|(hit, ev, earlier)| {
                let count = earlier.count;
                let mut a = alert(&hit, &ev, count, Some((earlier, now)));
                a.ts = now;
                a
            })
            .collect()
    }
}

/// [`Hunt`] over one indicator and events at hand.
pub fn hunt<'a>(
    known: &Known,
    events: impl IntoIterator<Item = &'a Event>,
    now: Timestamp,
) -> Vec<Alert> {
    let mut h = Hunt::new([known.clone()]);
    for ev in events {
        h.visit(ev);
    }
    h.finish(now)
}

fn alert(hit: &Hit, ev: &Event, count: u64, retro: Option<(Earlier, Timestamp)>) -> Alert {
    let k = &hit.known;
    let who = match hit.device {
        Some(d) => d.to_string(),
        None => format!("{} (pid {})", ev.process.comm, ev.process.pid),
    };
    let reporters = if k.reporters.is_empty() {
        "an unnamed source".to_owned()
    } else {
        k.reporters.join(", ")
    };
    let by = match k.origin {
        Origin::Mesh => format!("reported by {reporters}"),
        Origin::Import => format!("imported from {reporters}"),
    };
    // A plain list says only that its entries are bad, not what they did.
    let known_as = if k.reported_as == Category::KnownIndicator {
        "a listed indicator".to_owned()
    } else {
        format!("known as {}", k.reported_as)
    };
    // Who opened the contact: the device, or the indicator (a known scanner coming in).
    let inbound = hit.seen == Seen::FlowFrom;
    let (from, to) = if inbound {
        (k.target.to_string(), who)
    } else {
        (who, k.target.to_string())
    };
    let title = match retro {
        None => format!("{from} contacted {to}, {known_as} ({}, {by})", k.tlp),
        Some((e, now)) => format!(
            "{from} contacted {to} {} ago, {} time{}: {known_as} ({}, {by})",
            ago(now.saturating_sub(e.first).as_secs()),
            e.count,
            if e.count == 1 { "" } else { "s" },
            k.tlp
        ),
    };
    let mut a = Alert::new(
        ev.ts,
        if retro.is_some() { RETRO_RULE } else { RULE },
        title,
        Category::KnownIndicator,
        k.severity.max(Severity::Medium),
        f32::from(k.confidence.min(100)) / 100.0,
    );
    a.taxonomy = Taxonomy {
        owasp_iot: Some("I3".into()),
        enisa: Some("Nefarious activity/abuse: contact with known malicious infrastructure".into()),
        attack: Some(k.attack.clone().unwrap_or_else(|| "T1071".into())),
    };
    match hit.device {
        Some(d) if inbound => {
            a.device = Some(d.to_string());
            a.src_ip = hit.remote;
            a.dst_ip = Some(d);
        }
        Some(d) => {
            a.device = Some(d.to_string());
            a.src_ip = Some(d);
            a.dst_ip = hit.remote;
        }
        None => {
            a.pid = Some(ev.process.pid);
            a.comm = Some(ev.process.comm.clone());
            a.dst_ip = hit.remote;
        }
    }
    a.dst_port = hit.port;
    a.count = count.max(1);
    a.evidence = vec![
        format!("indicator: {}", k.target),
        format!("indicator id: {}", k.id),
        format!("reported as: {}", k.reported_as),
        format!(
            "{}: {reporters}",
            match k.origin {
                Origin::Mesh => "reported by",
                Origin::Import => "imported from",
            }
        ),
        format!("tlp: {}", k.tlp),
        format!("confidence: {}", k.confidence),
        format!("seen in: {}", hit.seen.describe()),
    ];
    if let Some(exe) = ev.process.info.as_ref().and_then(|i| i.exe.as_deref())
        && hit.device.is_none()
    {
        a.evidence.push(format!("process: {exe}"));
    }
    if let Some((e, _)) = retro {
        a.evidence.push(format!(
            "retrospective: {} earlier contact(s), first at {}, last at {}",
            e.count, e.first, e.last
        ));
    }
    a
}

fn ago(secs: u64) -> String {
    match secs {
        0..=119 => format!("{secs} s"),
        120..=7199 => format!("{} min", secs / 60),
        7200..=172_799 => format!("{} h", secs / 3600),
        _ => format!("{} days", secs / 86_400),
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`, as dual-stack sockets report them) are
/// their IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

fn mask(ip: IpAddr, len: u8) -> IpAddr {
    match ip {
        IpAddr::V4(a) => {
            let bits = u32::from(a);
            let m = if len == 0 {
                0
            } else {
                u32::MAX << (32 - len.min(32))
            };
            IpAddr::V4((bits & m).into())
        }
        IpAddr::V6(a) => {
            let bits = u128::from(a);
            let m = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len.min(128))
            };
            IpAddr::V6((bits & m).into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use heir_model::{MacAddr, Process, event::Link};

    fn known(id: &str, target: Target) -> Known {
        Known {
            id: id.into(),
            target,
            reported_as: Category::C2Beacon,
            reporters: vec!["hospital-7f3a".into()],
            tlp: "TLP:GREEN".into(),
            confidence: 80,
            severity: Severity::High,
            attack: Some("T1071.001".into()),
            origin: Origin::Mesh,
        }
    }

    fn ev(ts: u64, kind: EventKind) -> Event {
        Event {
            ts: Timestamp::from_secs(ts),
            process: Process {
                pid: 77,
                comm: "curl".into(),
                ..Process::default()
            },
            kind,
        }
    }

    fn connect(ts: u64, ip: &str) -> Event {
        ev(
            ts,
            EventKind::Connect {
                addr: NetAddr::Inet {
                    ip: ip.parse().unwrap(),
                    port: 443,
                },
                ret: 0,
            },
        )
    }

    fn flow(ts: u64, src: &str, dst: &str) -> Event {
        ev(
            ts,
            EventKind::Flow {
                src: src.parse().unwrap(),
                src_port: 40000,
                dst: dst.parse().unwrap(),
                dst_port: 8080,
                transport: Transport::Tcp,
                packets_out: 1,
                bytes_out: 60,
                packets_in: 0,
                bytes_in: 0,
                flags_out: Default::default(),
                flags_in: Default::default(),
                syn_unanswered: 0,
                established: false,
                icmp_unreachable: false,
                first_seen: Timestamp::from_secs(ts),
                last_seen: Timestamp::from_secs(ts),
                link: Some(Link {
                    ifindex: 2,
                    src_mac: MacAddr([2, 0, 0, 0, 0, 1]),
                    dst_mac: MacAddr([2, 0, 0, 0, 0, 2]),
                    vlan: None,
                }),
            },
        )
    }

    fn proto(ts: u64, src: &str, dst: &str, observation: Observation) -> Event {
        ev(
            ts,
            EventKind::Protocol {
                src: src.parse().unwrap(),
                src_port: 40000,
                dst: dst.parse().unwrap(),
                dst_port: 53,
                observation,
            },
        )
    }

    fn matcher() -> Matcher {
        let mut m = Matcher::default();
        m.apply(Update::Add(known(
            "a",
            Target::Address("203.0.113.9".parse().unwrap()),
        )));
        m.apply(Update::Add(known(
            "p",
            Target::prefix("198.51.100.0".parse().unwrap(), 24).unwrap(),
        )));
        m.apply(Update::Add(known(
            "d",
            Target::domain("C2.Example.").unwrap(),
        )));
        m.apply(Update::Add(known(
            "u",
            Target::url("http://files.example.org/drop/x.bin?id=3").unwrap(),
        )));
        m
    }

    #[test]
    fn addresses_prefixes_domains_and_urls_match_and_nothing_else_does() {
        let m = matcher();
        let id = |e: &Event| {
            let mut h = Vec::new();
            m.hits(e, &mut h);
            h.iter().map(|h| h.known.id.clone()).collect::<Vec<_>>()
        };
        assert_eq!(id(&connect(1, "203.0.113.9")), ["a"]);
        assert_eq!(id(&connect(1, "::ffff:203.0.113.9")), ["a"]);
        assert_eq!(id(&connect(1, "198.51.100.200")), ["p"]);
        assert!(id(&connect(1, "198.51.101.1")).is_empty());
        assert!(id(&connect(1, "203.0.113.10")).is_empty());
        assert_eq!(id(&flow(1, "10.1.2.10", "203.0.113.9")), ["a"]);
        let dns = |q: &str| Observation::Dns {
            query: q.into(),
            response: false,
            answers: vec![],
        };
        assert_eq!(
            id(&proto(1, "10.1.2.10", "9.9.9.9", dns("c2.example"))),
            ["d"]
        );
        assert_eq!(
            id(&proto(1, "10.1.2.10", "9.9.9.9", dns("www.c2.example"))),
            ["d"]
        );
        assert!(id(&proto(1, "10.1.2.10", "9.9.9.9", dns("notc2.example"))).is_empty());
        assert!(id(&proto(1, "10.1.2.10", "9.9.9.9", dns("example"))).is_empty());
        // An answer that resolves an innocent name to a known address.
        let answer = Observation::Dns {
            query: "cdn.example.net".into(),
            response: true,
            answers: vec!["203.0.113.9".parse().unwrap()],
        };
        assert_eq!(id(&proto(1, "9.9.9.9", "10.1.2.10", answer)), ["a"]);
        let http = |host: &str, path: &str| Observation::Http {
            method: "GET".into(),
            admin_path: false,
            basic_auth_user: None,
            basic_auth_cleartext: false,
            status: None,
            host: Some(host.into()),
            url_digest: Some(heir_model::event::url_digest(host, path)),
        };
        assert_eq!(
            id(&proto(
                1,
                "10.1.2.10",
                "192.0.2.1",
                http("files.example.org", "/drop/x.bin")
            )),
            ["u"]
        );
        assert!(
            id(&proto(
                1,
                "10.1.2.10",
                "192.0.2.1",
                http("files.example.org", "/other")
            ))
            .is_empty()
        );
        assert_eq!(
            id(&proto(
                1,
                "10.1.2.10",
                "192.0.2.1",
                http("api.c2.example", "/")
            )),
            ["d"]
        );
    }

    #[test]
    fn the_first_contact_is_reported_at_once_and_repeats_are_counted_hourly() {
        let mut m = matcher();
        let mut out = Vec::new();
        m.inspect(&flow(100, "10.1.2.10", "203.0.113.9"), &mut out);
        assert_eq!(out.len(), 1);
        let a = &out[0];
        assert_eq!(a.category, Category::KnownIndicator);
        assert_eq!(a.device.as_deref(), Some("10.1.2.10"));
        assert_eq!(a.dst_ip, Some("203.0.113.9".parse().unwrap()));
        assert!(a.title.contains("hospital-7f3a"), "{}", a.title);
        assert!(a.evidence.iter().any(|e| e == "tlp: TLP:GREEN"));
        assert_eq!(a.taxonomy.attack.as_deref(), Some("T1071.001"));
        for t in 101..200 {
            m.inspect(&flow(t, "10.1.2.10", "203.0.113.9"), &mut out);
        }
        assert_eq!(out.len(), 1, "repeats within the hour are counted");
        // Another device is its own first contact.
        m.inspect(&flow(150, "10.1.3.10", "203.0.113.9"), &mut out);
        assert_eq!(out.len(), 2);
        m.inspect(
            &flow(100 + REPORT_AGAIN, "10.1.2.10", "203.0.113.9"),
            &mut out,
        );
        assert_eq!(out.len(), 3);
        assert_eq!(out[2].count, 100, "the hour's contacts, this one included");
        // Withdrawn: silent.
        m.apply(Update::Remove("a".into()));
        m.inspect(&flow(10_000, "10.1.4.10", "203.0.113.9"), &mut out);
        assert_eq!(out.len(), 3);
    }

    /// A known scanner coming in is the source, and the device what it contacted: the
    /// device is never presented as having reached out.
    #[test]
    fn a_connection_the_indicator_opened_names_it_as_the_source() {
        let mut m = matcher();
        let mut out = Vec::new();
        m.inspect(&flow(100, "203.0.113.9", "10.1.2.10"), &mut out);
        let a = &out[0];
        assert_eq!(a.src_ip, Some("203.0.113.9".parse().unwrap()));
        assert_eq!(a.dst_ip, Some("10.1.2.10".parse().unwrap()));
        assert_eq!(a.device.as_deref(), Some("10.1.2.10"));
        assert!(
            a.title.starts_with("203.0.113.9 contacted 10.1.2.10"),
            "{}",
            a.title
        );
    }

    /// A scanned device's reset, seen before the scanner's SYN, is the scanner's contact:
    /// the device did not reach out to it.
    #[test]
    fn a_device_answering_a_known_scanner_did_not_contact_it() {
        let mut m = matcher();
        let mut out = Vec::new();
        let mut reply = flow(100, "10.1.2.10", "203.0.113.9");
        if let EventKind::Flow { flags_out, .. } = &mut reply.kind {
            *flags_out = TcpFlags(TcpFlags::RST | TcpFlags::ACK);
        }
        m.inspect(&reply, &mut out);
        let a = &out[0];
        assert_eq!(a.src_ip, Some("203.0.113.9".parse().unwrap()));
        assert_eq!(a.dst_ip, Some("10.1.2.10".parse().unwrap()));
        assert!(
            a.title.starts_with("203.0.113.9 contacted 10.1.2.10"),
            "{}",
            a.title
        );
        // The device's own SYN to the same address is its contact.
        let mut own = flow(200, "10.1.2.11", "203.0.113.9");
        if let EventKind::Flow { flags_out, .. } = &mut own.kind {
            *flags_out = TcpFlags(TcpFlags::SYN);
        }
        out.clear();
        m.inspect(&own, &mut out);
        assert_eq!(out[0].src_ip, Some("10.1.2.11".parse().unwrap()));
        assert!(
            out[0].title.starts_with("10.1.2.11 contacted 203.0.113.9"),
            "{}",
            out[0].title
        );
    }

    #[test]
    fn a_host_process_is_named_by_pid_and_comm() {
        let mut m = matcher();
        let mut out = Vec::new();
        m.inspect(&connect(5, "198.51.100.7"), &mut out);
        assert_eq!(out[0].pid, Some(77));
        assert_eq!(out[0].comm.as_deref(), Some("curl"));
        assert!(
            out[0]
                .title
                .starts_with("curl (pid 77) contacted 198.51.100.0/24")
        );
    }

    #[test]
    fn a_retro_hunt_counts_earlier_contacts_per_device() {
        let k = known("a", Target::Address("203.0.113.9".parse().unwrap()));
        let day = 86_400;
        let events: Vec<Event> = (0..41)
            .map(|i| flow(1000 + i * 60, "10.1.2.10", "203.0.113.9"))
            .chain([flow(2000, "10.1.2.11", "198.51.100.1")])
            .collect();
        let now = Timestamp::from_secs(1000 + 6 * day);
        let alerts = hunt(&k, &events, now);
        assert_eq!(alerts.len(), 1, "{alerts:#?}");
        let a = &alerts[0];
        assert_eq!(a.rule, RETRO_RULE);
        assert_eq!(a.count, 41);
        assert_eq!(a.ts, now);
        assert!(a.title.contains("6 days ago, 41 times"), "{}", a.title);
        assert!(
            a.evidence
                .iter()
                .any(|e| e.starts_with("retrospective: 41"))
        );
        assert!(hunt(&k, &events[41..], now).is_empty());
    }

    #[test]
    fn targets_refuse_what_they_cannot_match() {
        assert!(Target::domain("localhost").is_none());
        assert!(Target::domain("bad domain.example").is_none());
        assert!(Target::prefix("10.0.0.0".parse().unwrap(), 33).is_none());
        assert_eq!(
            Target::prefix("10.1.2.3".parse().unwrap(), 32),
            Some(Target::Address("10.1.2.3".parse().unwrap()))
        );
        assert_eq!(
            Target::url("https://evil.example/path"),
            Target::domain("evil.example")
        );
        assert!(Target::url("ftp://x.example/").is_none());
    }
}
