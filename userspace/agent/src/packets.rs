//! The agent's packet side: the XDP sensor on the interfaces named with `--iface`, and what
//! the sysadmin is told about it.

use std::path::Path;

use anyhow::{Context, Result};
use heir_abi::packet::{TCP_ACK, TCP_SYN};
use heir_model::packet::{PacketEvent, Protocol, Transport};
use heir_rama::{self as rama, Observation, Seen, Service};

use crate::decode::{BootClock, packet};
use crate::flows::Sweeper;
use crate::respond::{Clock, SystemClock, Tables};
use crate::sensor::xdp::{AttachError, Options, Packets};

/// The packet sensor as the agent runs it: the attached program and the block tables it
/// keeps tidy.
pub struct Gateway {
    pub sensor: Packets,
    tables: Tables,
    flows: Sweeper,
}

/// Loads the packet sensor and attaches it to `ifaces`; `None` when no interface is named.
/// An interface that does not exist yet is attached when it appears. `flows` says when its
/// connections are reported (see [`Gateway::sweep`]).
pub fn start(
    ifaces: &[String],
    pin_dir: &Path,
    config: &crate::sensor::Config,
) -> Result<Option<Gateway>> {
    if ifaces.is_empty() {
        return Ok(None);
    }
    let flows = config.flows();
    let options = Options {
        pin_dir: pin_dir.to_owned(),
        flow_entries: config.flow_entries.max(1024),
        device_entries: config.device_entries.max(16),
        devices: config.device_traffic,
        ..Options::default()
    };
    let mut sensor = Packets::load(&options).context("starting the packet sensor (XDP)")?;
    for iface in ifaces {
        match sensor.attach(iface) {
            Ok(mode) => eprintln!("heir: packet sensor on {iface} ({mode} mode)"),
            Err(AttachError::NoInterface(_)) => eprintln!(
                "heir: no interface {iface} yet; the packet sensor attaches when it appears"
            ),
            Err(e) => return Err(e.into()),
        }
    }
    let tables = Tables::open(pin_dir)?;
    Ok(Some(Gateway {
        sensor,
        tables,
        flows: Sweeper::new(flows),
    }))
}

impl Gateway {
    /// The packet ring buffer's reader. Can be taken once.
    pub fn reader(&mut self) -> Result<crate::sensor::Reader, crate::sensor::Error> {
        self.sensor.reader()
    }

    /// How often [`Gateway::sweep`] is meant to run.
    pub fn sweep_every(&self) -> std::time::Duration {
        self.flows.config().sweep
    }

    /// Reads the kernel's flow table and returns the connection records that are due, for
    /// the detectors (see [`crate::flows`]).
    pub fn sweep(&mut self) -> Result<Vec<heir_model::Event>, crate::sensor::Error> {
        let table = self.sensor.flows()?;
        let now = SystemClock.boot().as_nanos() as u64;
        let mut out = Vec::new();
        let s = self.flows.sweep(now, table, &BootClock::now(), &mut out);
        tracing::debug!(
            "flow sweep: {} entries, {} connections, {} reported, {} forgotten",
            s.entries,
            s.connections,
            s.reported,
            s.forgotten
        );
        Ok(out)
    }

    /// Periodic upkeep: re-attaches to interfaces that came (back), reporting each attempt,
    /// and removes expired blocks (the kernel already ignores them).
    pub fn tick(&mut self) {
        for (iface, r) in self.sensor.reattach() {
            match r {
                Ok(mode) => eprintln!("heir: packet sensor re-attached to {iface} ({mode} mode)"),
                Err(e) => eprintln!("heir: {e}"),
            }
        }
        match self.tables.purge_expired(&SystemClock) {
            Ok(0) => {}
            Ok(n) => tracing::info!("{n} expired blocks removed"),
            Err(e) => tracing::warn!("purging expired blocks: {e}"),
        }
    }
}

/// Reads the packet sensor's ring buffer until `sink` asks to stop (returns false), decoding
/// each record; undecodable records are counted in `errors` and logged. FTP login attempts
/// and refusals read from the samples ([`crate::logins`]) go to `logins` as events.
pub async fn run(
    mut reader: crate::sensor::Reader,
    errors: &std::sync::atomic::AtomicU64,
    mut sink: impl FnMut(PacketEvent) -> bool,
    mut logins: impl FnMut(heir_model::Event),
) -> Result<(), crate::sensor::Error> {
    let clock = BootClock::now();
    let mut tracker = crate::logins::Tracker::default();
    loop {
        let mut batch = Vec::new();
        let mut attempts = Vec::new();
        reader
            .read_batch(|b| {
                if let Some(s) = packet::sample(b) {
                    let f = &s.flow;
                    if let Some(l) = tracker.sample(f.src, f.sport, f.dst, f.dport, s.payload) {
                        attempts.push(login_event(f, clock.wall(s.ts_boot_ns), l));
                    }
                }
                match packet::decode(b, &clock) {
                    Ok(Some(e)) => batch.push(e),
                    Ok(None) => {}
                    Err(e) => {
                        errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        tracing::warn!("dropping an undecodable packet record: {e}");
                    }
                }
            })
            .await?;
        for e in batch {
            if !sink(e) {
                return Ok(());
            }
        }
        attempts.into_iter().for_each(&mut logins);
    }
}

/// An FTP login attempt or refusal as the detectors read it. Cleartext exposure is reported
/// by the recognizer's event for the same sample, so it is not repeated here.
fn login_event(
    f: &heir_model::packet::FlowId,
    ts: heir_model::Timestamp,
    l: crate::logins::Login,
) -> heir_model::Event {
    use heir_model::event::Observation;
    heir_model::Event {
        ts,
        process: heir_model::Process::default(),
        kind: heir_model::EventKind::Protocol {
            src: f.src,
            src_port: f.sport,
            dst: f.dst,
            dst_port: f.dport,
            observation: Observation::Ftp {
                user: l.user,
                cleartext_credentials: false,
                outcome: l.outcome,
            },
        },
    }
}

/// The agent's packet source: events go to the inventory (devices seen at the gateway join
/// it) and, when a path is given, to a JSON-lines file.
pub fn feed(
    reader: crate::sensor::Reader,
    risk: std::sync::Arc<std::sync::Mutex<crate::rama_state::RamaState>>,
    out: Option<&Path>,
    stats: std::sync::Arc<crate::pipeline::Stats>,
    detect: tokio::sync::mpsc::Sender<Vec<heir_model::Event>>,
) -> Result<impl Future<Output = ()> + use<>> {
    let mut out = out
        .map(|p| {
            crate::pipeline::JsonLines::append(p)
                .with_context(|| format!("opening {}", p.display()))
        })
        .transpose()?;
    Ok(async move {
        let counts = stats.clone();
        let login_counts = stats.clone();
        let logins = detect.clone();
        let r = run(
            reader,
            &stats.decode_errors,
            move |e| {
                if let Some(o) = out.as_mut()
                    && let Err(err) = o.write(&e)
                {
                    tracing::error!("writing a packet event: {err}");
                }
                counts
                    .events
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                {
                    let mut risk = risk.lock().expect("risk lock");
                    for o in observations(&e) {
                        risk.rama.observe(&o);
                    }
                }
                // Into the detectors, beside the syscall events; never waiting on them.
                if let Some(ev) = to_event(&e)
                    && detect.try_send(vec![ev]).is_err()
                {
                    counts
                        .dropped
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                true
            },
            move |ev| {
                if logins.try_send(vec![ev]).is_err() {
                    login_counts
                        .dropped
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            },
        )
        .await;
        if let Err(e) = r {
            tracing::error!("packet sensor: {e}");
        }
    })
}

/// What a packet event tells the device inventory. The server of a recognised protocol is
/// the side on the lower port; a SYN-ACK shows its sender serving on its source port. A TLS
/// version is the best the client offered, so an upper bound on what was negotiated.
pub fn observations(e: &PacketEvent) -> Vec<Observation> {
    let mut out = Vec::new();
    match e {
        PacketEvent::Flow(f) => {
            if f.dropped {
                return out;
            }
            let ts = f.seen.ts;
            out.push(Observation {
                ts,
                ip: f.flow.src,
                mac: f.seen.src_mac.parse().ok(),
                seen: Seen::Presence,
            });
            let (syn, ack) = (f.tcp_flags & TCP_SYN != 0, f.tcp_flags & TCP_ACK != 0);
            if f.flow.transport == Transport::Tcp && syn && ack {
                out.push(Observation {
                    ts,
                    ip: f.flow.src,
                    mac: f.seen.src_mac.parse().ok(),
                    seen: Seen::Service(Service::new(
                        f.flow.sport,
                        rama::Transport::Tcp,
                        by_port(f.flow.sport),
                    )),
                });
            }
        }
        PacketEvent::Protocol(p) => {
            let ts = p.seen.ts;
            let server_is_dst = p.flow.dport <= p.flow.sport;
            let (server, port, client) = if server_is_dst {
                (p.flow.dst, p.flow.dport, p.flow.src)
            } else {
                (p.flow.src, p.flow.sport, p.flow.dst)
            };
            let at = |ip, seen| Observation {
                ts,
                ip,
                mac: None,
                seen,
            };
            let protocol = match &p.protocol {
                Protocol::Dicom {
                    calling_ae,
                    called_ae,
                } => {
                    if let Some(t) = called_ae {
                        out.push(at(server, Seen::DicomAeTitle { title: t.clone() }));
                    }
                    if let Some(t) = calling_ae {
                        out.push(at(client, Seen::DicomAeTitle { title: t.clone() }));
                    }
                    rama::Protocol::Dicom
                }
                Protocol::Hl7 { .. } => rama::Protocol::Hl7Mllp,
                Protocol::Tls {
                    legacy_version,
                    supported_versions,
                    inner,
                    ..
                } => {
                    let best = supported_versions
                        .iter()
                        .copied()
                        .max()
                        .unwrap_or(*legacy_version)
                        .max(*legacy_version);
                    if let Some(version) = tls_version(best) {
                        out.push(at(server, Seen::Tls { port, version }));
                    }
                    match inner.as_deref() {
                        Some("dicom") => rama::Protocol::DicomTls,
                        Some("mqtt") => rama::Protocol::MqttTls,
                        _ if port == 443 => rama::Protocol::Https,
                        _ => rama::Protocol::Other,
                    }
                }
                Protocol::Ftp { .. } => rama::Protocol::Ftp,
                Protocol::Http { .. } => rama::Protocol::Http,
                Protocol::Ssh { .. } => rama::Protocol::Ssh,
                Protocol::Telnet => rama::Protocol::Telnet,
                Protocol::Smb => rama::Protocol::Smb,
                Protocol::Rdp => rama::Protocol::Rdp,
                Protocol::Mqtt { tls: false } => rama::Protocol::Mqtt,
                Protocol::Mqtt { tls: true } => rama::Protocol::MqttTls,
            };
            out.push(at(
                server,
                Seen::Service(Service::new(port, rama::Transport::Tcp, protocol)),
            ));
        }
    }
    out
}

fn tls_version(v: u16) -> Option<rama::TlsVersion> {
    Some(match v {
        0x0300 => rama::TlsVersion::Ssl3,
        0x0301 => rama::TlsVersion::Tls10,
        0x0302 => rama::TlsVersion::Tls11,
        0x0303 => rama::TlsVersion::Tls12,
        0x0304 => rama::TlsVersion::Tls13,
        _ => return None,
    })
}

fn by_port(port: u16) -> rama::Protocol {
    use crate::recognize as r;
    match port {
        p if r::DICOM.contains(&p) => rama::Protocol::Dicom,
        r::DICOM_TLS => rama::Protocol::DicomTls,
        r::MLLP => rama::Protocol::Hl7Mllp,
        r::TELNET => rama::Protocol::Telnet,
        r::FTP => rama::Protocol::Ftp,
        p if r::HTTP.contains(&p) => rama::Protocol::Http,
        443 => rama::Protocol::Https,
        r::SSH => rama::Protocol::Ssh,
        r::SMB => rama::Protocol::Smb,
        r::RDP => rama::Protocol::Rdp,
        r::MQTT => rama::Protocol::Mqtt,
        r::MQTT_TLS => rama::Protocol::MqttTls,
        5900 => rama::Protocol::Vnc,
        _ => rama::Protocol::Other,
    }
}

/// The packet sensor's view of a flow or protocol, as the detectors read it.
///
/// The kernel reports a flow's first packet (and the packets it recognises), not a running
/// summary: a flow becomes one [`EventKind::Flow`] with what that packet showed — one packet
/// and its bytes out, the TCP flags it carried, and a SYN nobody has answered yet. That is
/// what the scan and flood detectors count, one flow at a time. A SYN-ACK's record is the
/// answer to a flow the detectors already have from its SYN, not a flow of its own (read as
/// one, every server reply would look like a probe of the client's port): it goes to the
/// inventory only, and the flow sweeper ([`crate::flows`]) reports both directions together
/// with their totals. Packets have no process: `process` is empty.
pub fn to_event(e: &PacketEvent) -> Option<heir_model::Event> {
    use heir_model::event::{Observation as Obs, TcpFlags, Transport as T};
    use heir_model::packet::Risk;
    use heir_model::{Event, EventKind, Process};
    let transport = |t: Transport| match t {
        Transport::Tcp => T::Tcp,
        Transport::Udp => T::Udp,
        Transport::Icmp => T::Icmp,
        Transport::Other(_) => T::Other,
    };
    let (ts, kind) = match e {
        PacketEvent::Flow(f) => {
            let syn_ack = f.tcp_flags & (TCP_SYN | TCP_ACK) == TCP_SYN | TCP_ACK;
            if f.dropped || (syn_ack && f.flow.transport == Transport::Tcp) {
                return None;
            }
            let syn_only = f.tcp_flags & TCP_SYN != 0
                && f.tcp_flags & TCP_ACK == 0
                && f.flow.transport == Transport::Tcp;
            (
                f.seen.ts,
                EventKind::Flow {
                    src: f.flow.src,
                    src_port: f.flow.sport,
                    dst: f.flow.dst,
                    dst_port: f.flow.dport,
                    transport: transport(f.flow.transport),
                    packets_out: 1,
                    bytes_out: u64::from(f.bytes),
                    packets_in: 0,
                    bytes_in: 0,
                    flags_out: TcpFlags(f.tcp_flags),
                    flags_in: TcpFlags(0),
                    syn_unanswered: u32::from(syn_only),
                    established: false,
                    icmp_unreachable: false,
                    first_seen: f.seen.ts,
                    last_seen: f.seen.ts,
                },
            )
        }
        PacketEvent::Protocol(p) => {
            let risky = |r: Risk| p.risks.contains(&r);
            let observation = match &p.protocol {
                Protocol::Dicom {
                    calling_ae,
                    called_ae,
                } => Obs::Dicom {
                    calling_ae: calling_ae.clone().unwrap_or_default(),
                    called_ae: called_ae.clone().unwrap_or_default(),
                    accepted: None,
                },
                Protocol::Hl7 {
                    sending_app,
                    receiving_app,
                } => Obs::Hl7Mllp {
                    sending_application: sending_app.clone(),
                    receiving_application: receiving_app.clone(),
                },
                Protocol::Tls {
                    inner: Some(inner), ..
                } if inner == "dicom" => Obs::DicomTls,
                Protocol::Tls {
                    legacy_version,
                    supported_versions,
                    ciphers,
                    fingerprint,
                    ..
                } => Obs::TlsClientHello {
                    versions: if supported_versions.is_empty() {
                        vec![*legacy_version]
                    } else {
                        supported_versions.clone()
                    },
                    cipher_suites: ciphers.clone(),
                    sni: None,
                    alpn: Vec::new(),
                    ja4: fingerprint.clone(),
                },
                Protocol::Ftp { password_seen, .. } => Obs::Ftp {
                    user: None,
                    cleartext_credentials: *password_seen,
                    outcome: None,
                },
                // The path stays here: URLs can carry patient identifiers.
                Protocol::Http {
                    method, basic_auth, ..
                } => Obs::Http {
                    method: method.clone(),
                    admin_path: risky(Risk::AdminPath),
                    basic_auth_user: None,
                    basic_auth_cleartext: *basic_auth,
                    status: None,
                },
                Protocol::Ssh { banner } => {
                    let rest = banner.strip_prefix("SSH-").unwrap_or(banner);
                    let (proto, software) = rest.split_once('-').unwrap_or((rest, ""));
                    Obs::SshBanner {
                        proto_version: proto.to_owned(),
                        software: software.to_owned(),
                    }
                }
                Protocol::Telnet => Obs::Telnet {
                    user: None,
                    outcome: None,
                },
                Protocol::Smb => return None,
                Protocol::Rdp => return None,
                Protocol::Mqtt { tls: true } => return None,
                Protocol::Mqtt { tls: false } => Obs::Mqtt {
                    user: None,
                    cleartext_credentials: false,
                    outcome: None,
                },
            };
            (
                p.seen.ts,
                EventKind::Protocol {
                    src: p.flow.src,
                    src_port: p.flow.sport,
                    dst: p.flow.dst,
                    dst_port: p.flow.dport,
                    observation,
                },
            )
        }
    };
    Some(Event {
        ts,
        process: Process::default(),
        kind,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use heir_model::Timestamp;
    use heir_model::packet::{FlowEvent, FlowId, ProtocolEvent};

    fn seen() -> heir_model::packet::Seen {
        heir_model::packet::Seen {
            ts: Timestamp::from_nanos(1),
            ifindex: 1,
            src_mac: "02:00:00:00:00:07".into(),
            dst_mac: "02:00:00:00:00:09".into(),
            vlan: None,
        }
    }

    fn flow(sport: u16, dport: u16) -> FlowId {
        FlowId {
            src: "10.0.0.7".parse().unwrap(),
            dst: "10.0.0.9".parse().unwrap(),
            sport,
            dport,
            transport: Transport::Tcp,
        }
    }

    #[test]
    fn a_syn_ack_shows_a_service_and_a_syn_does_not() {
        let mut f = FlowEvent {
            seen: seen(),
            flow: flow(104, 40000),
            tcp_flags: TCP_SYN | TCP_ACK,
            bytes: 60,
            dropped: false,
        };
        let o = observations(&PacketEvent::Flow(f.clone()));
        assert_eq!(o.len(), 2);
        assert_eq!(o[0].seen, Seen::Presence);
        assert!(o[0].mac.is_some());
        assert!(
            matches!(&o[1].seen, Seen::Service(s) if s.port == 104 && s.protocol == rama::Protocol::Dicom)
        );
        assert!(
            to_event(&PacketEvent::Flow(f.clone())).is_none(),
            "a SYN-ACK answers a flow, it is not one"
        );
        f.tcp_flags = TCP_SYN;
        assert_eq!(observations(&PacketEvent::Flow(f.clone())).len(), 1);
        assert!(to_event(&PacketEvent::Flow(f.clone())).is_some());
        f.dropped = true;
        assert!(observations(&PacketEvent::Flow(f)).is_empty());
    }

    #[test]
    fn dicom_titles_go_to_their_devices() {
        let p = ProtocolEvent {
            seen: seen(),
            flow: flow(40000, 104),
            protocol: Protocol::Dicom {
                calling_ae: Some("CT01".into()),
                called_ae: Some("PACS".into()),
            },
            risks: vec![],
        };
        let o = observations(&PacketEvent::Protocol(p));
        let title = |ip: &str, t: &str| {
            o.iter().any(|x| {
                x.ip == ip.parse::<std::net::IpAddr>().unwrap()
                    && x.seen == Seen::DicomAeTitle { title: t.into() }
            })
        };
        assert!(title("10.0.0.9", "PACS") && title("10.0.0.7", "CT01"));
        assert!(
            o.iter()
                .any(|x| matches!(&x.seen, Seen::Service(s) if s.port == 104))
        );
    }

    #[test]
    fn old_tls_is_observed_on_the_server() {
        let p = ProtocolEvent {
            seen: seen(),
            flow: flow(40000, 2762),
            protocol: Protocol::Tls {
                legacy_version: 0x0301,
                supported_versions: vec![],
                ciphers: vec![0x002f],
                fingerprint: String::new(),
                inner: Some("dicom".into()),
            },
            risks: vec![],
        };
        let o = observations(&PacketEvent::Protocol(p));
        assert!(
            o.iter()
                .any(|x| x.ip == "10.0.0.9".parse::<std::net::IpAddr>().unwrap()
                    && x.seen
                        == Seen::Tls {
                            port: 2762,
                            version: rama::TlsVersion::Tls10
                        })
        );
        assert!(o.iter().any(
            |x| matches!(&x.seen, Seen::Service(s) if s.protocol == rama::Protocol::DicomTls)
        ));
    }
}

#[cfg(test)]
mod login_tests {
    use super::*;

    /// hydra's refused FTP logins, as the tracker reads them from samples, are what the
    /// brute-force and default-credential detectors look for.
    #[test]
    fn refused_ftp_logins_reach_the_detectors_as_a_brute_force() {
        let cfg: heir_detect::Config = toml::from_str(
            "[brute_force]\nfailures = 5\n[default_credentials]\nalert_on_attempt = true\n",
        )
        .unwrap();
        let mut engine =
            heir_detect::Engine::new(&cfg, std::sync::Arc::new(heir_detect::SystemClock));
        let mut tracker = crate::logins::Tracker::default();
        let flow = |sport| heir_model::packet::FlowId {
            src: "203.0.113.9".parse().unwrap(),
            dst: "10.9.0.7".parse().unwrap(),
            sport,
            dport: 21,
            transport: Transport::Tcp,
        };
        let mut alerts = Vec::new();
        for conn in 0..8u16 {
            let f = flow(40000 + conn);
            for p in [
                &b"USER admin\r\n"[..],
                b"PASS x\r\n",
                b"USER admin\r\n",
                b"PASS y\r\n",
            ] {
                if let Some(l) = tracker.sample(f.src, f.sport, f.dst, f.dport, p) {
                    let ts = heir_model::Timestamp::from_secs(1_800_000_000 + u64::from(conn));
                    engine.process(&login_event(&f, ts, l), &mut alerts);
                }
            }
        }
        let cats: Vec<_> = alerts.iter().map(|a| a.category).collect();
        assert!(
            cats.contains(&heir_model::Category::BruteForce),
            "{alerts:#?}"
        );
        assert!(
            cats.contains(&heir_model::Category::DefaultCredentials),
            "{alerts:#?}"
        );
    }
}
