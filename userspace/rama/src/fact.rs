//! What the passive sensors report about devices on the wire.
//!
//! The packet sensor and protocol decoders produce one [`DeviceFact`] per new fact (a device
//! answered on a port, announced a DICOM AE title, negotiated TLS 1.0, accepted a default
//! password). The inventory folds them into devices; RAMA scores their exposure.

use std::net::IpAddr;

use heir_model::event::Observation;
pub use heir_model::event::Transport;
pub use heir_model::service::Protocol;
pub use heir_model::tls::TlsVersion;
use heir_model::{Event, EventKind, Timestamp, tls};
use serde::{Deserialize, Serialize};

use heir_model::mac::MacAddr;

/// One fact about the device at `ip`, seen at `ts`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceFact {
    pub ts: Timestamp,
    pub ip: IpAddr,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<MacAddr>,
    pub seen: Fact,
}

/// The fact itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fact {
    /// Traffic from the device, nothing more specific.
    Presence,
    /// The device answered on a service port.
    Service(Service),
    /// The service stopped answering (refused or reset), e.g. after an operator disabled it.
    ServiceClosed { port: u16, transport: Transport },
    /// A DICOM association named this Application Entity title for the device.
    DicomAeTitle { title: String },
    /// A TLS handshake on `port` settled on `version`.
    Tls { port: u16, version: TlsVersion },
    /// A login with a vendor default password succeeded on `port`.
    DefaultCredentials { port: u16, protocol: Protocol },
}

/// A service the device answers on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    pub port: u16,
    pub transport: Transport,
    pub protocol: Protocol,
    /// Unencrypted: set by the sensor from what it decoded (defaults from the protocol).
    pub cleartext: bool,
    /// Remote administration or file sharing (defaults from the protocol).
    pub risky: bool,
}

impl Service {
    /// A service whose flags follow from its protocol.
    pub const fn new(port: u16, transport: Transport, protocol: Protocol) -> Self {
        Self {
            port,
            transport,
            protocol,
            cleartext: protocol.is_cleartext(),
            risky: protocol.is_risky(),
        }
    }
}

/// What one sensor event tells the inventory, appended to `out`: the packet sensor's flows
/// (a device is present, with its MAC), server answers (it serves on a port) and recognised
/// protocols (the service's protocol, DICOM AE titles, the TLS version offered). Other events
/// tell it nothing.
///
/// The server of a recognised protocol is the side on the lower port. A TLS version is the
/// best the client offered, an upper bound on what was negotiated.
pub fn facts_of(e: &Event, out: &mut Vec<DeviceFact>) {
    let ts = e.ts;
    let fact = |ip, mac, seen| DeviceFact { ts, ip, mac, seen };
    match &e.kind {
        EventKind::Flow {
            src,
            link: Some(link),
            ..
        } => out.push(fact(*src, Some(link.src_mac), Fact::Presence)),
        EventKind::Service {
            src,
            src_port,
            transport,
            link,
            ..
        } => {
            let mac = link.map(|l| l.src_mac);
            out.push(fact(*src, mac, Fact::Presence));
            out.push(fact(
                *src,
                mac,
                Fact::Service(Service::new(
                    *src_port,
                    *transport,
                    Protocol::by_port(*src_port),
                )),
            ));
        }
        EventKind::Protocol {
            src,
            src_port,
            dst,
            dst_port,
            observation,
        } => {
            let (server, port, client) = if dst_port <= src_port {
                (*dst, *dst_port, *src)
            } else {
                (*src, *src_port, *dst)
            };
            let tls = |versions: &[u16], out: &mut Vec<DeviceFact>| {
                if let Some(version) = tls::best_offered(versions).and_then(TlsVersion::from_wire) {
                    out.push(fact(server, None, Fact::Tls { port, version }));
                }
            };
            let tls_port = || match Protocol::by_port(port) {
                p @ (Protocol::DicomTls | Protocol::MqttTls | Protocol::Https) => p,
                _ => Protocol::Other,
            };
            let protocol = match observation {
                Observation::Dicom {
                    calling_ae,
                    called_ae,
                    ..
                } => {
                    for (ip, title) in [(server, called_ae), (client, calling_ae)] {
                        if !title.is_empty() {
                            let title = title.clone();
                            out.push(fact(ip, None, Fact::DicomAeTitle { title }));
                        }
                    }
                    Protocol::Dicom
                }
                Observation::DicomTls { versions, .. } => {
                    tls(versions, out);
                    Protocol::DicomTls
                }
                Observation::TlsClientHello { versions, .. } => {
                    tls(versions, out);
                    tls_port()
                }
                Observation::TlsServerHello { version, .. } => {
                    tls(&[*version], out);
                    tls_port()
                }
                Observation::Hl7Mllp { .. } => Protocol::Hl7Mllp,
                Observation::Telnet { .. } => Protocol::Telnet,
                Observation::Ftp { .. } => Protocol::Ftp,
                Observation::Http { .. } => Protocol::Http,
                Observation::Mqtt { .. } => Protocol::Mqtt,
                Observation::SshBanner { .. } => Protocol::Ssh,
                Observation::Smb { .. } => Protocol::Smb,
                Observation::Rdp { .. } => Protocol::Rdp,
                // A name lookup says which resolver a device uses, nothing of its risk.
                Observation::Dns { .. } => return,
            };
            out.push(fact(
                server,
                None,
                Fact::Service(Service::new(port, Transport::Tcp, protocol)),
            ));
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_round_trip_as_json_and_reject_unknown_fields() {
        let o = DeviceFact {
            ts: Timestamp::from_secs(1_700_000_000),
            ip: "10.1.2.3".parse().unwrap(),
            mac: Some("00:09:5c:00:00:01".parse().unwrap()),
            seen: Fact::Service(Service::new(23, Transport::Tcp, Protocol::Telnet)),
        };
        let j = serde_json::to_string(&o).unwrap();
        assert!(
            j.contains(r#""kind":"service""#) && j.contains(r#""cleartext":true"#),
            "{j}"
        );
        assert_eq!(serde_json::from_str::<DeviceFact>(&j).unwrap(), o);
        let tls = r#"{"ts":"2023-11-14T22:13:20Z","ip":"10.0.0.1","seen":{"kind":"tls","port":443,"version":"tls1.0"}}"#;
        let o: DeviceFact = serde_json::from_str(tls).unwrap();
        assert_eq!(
            o.seen,
            Fact::Tls {
                port: 443,
                version: TlsVersion::Tls10
            }
        );
        let bad =
            r#"{"ts":"2023-11-14T22:13:20Z","ip":"10.0.0.1","seen":{"kind":"presence"},"extra":1}"#;
        assert!(
            serde_json::from_str::<DeviceFact>(bad)
                .unwrap_err()
                .to_string()
                .contains("extra")
        );
    }

    #[test]
    fn protocol_flags() {
        assert!(Protocol::Telnet.is_cleartext() && Protocol::Telnet.is_risky());
        assert!(!Protocol::Https.is_cleartext() && !Protocol::Https.is_risky());
        assert!(Protocol::Rdp.is_risky() && !Protocol::Rdp.is_cleartext());
        assert!(TlsVersion::Tls11.is_obsolete() && !TlsVersion::Tls12.is_obsolete());
    }

    fn packet(kind: EventKind) -> Event {
        Event {
            ts: Timestamp::from_nanos(1),
            process: heir_model::Process::default(),
            kind,
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn link() -> Option<heir_model::event::Link> {
        Some(heir_model::event::Link {
            ifindex: 1,
            src_mac: "02:00:00:00:00:07".parse().unwrap(),
            dst_mac: "02:00:00:00:00:09".parse().unwrap(),
            vlan: None,
        })
    }

    fn facts(e: &Event) -> Vec<DeviceFact> {
        let mut out = Vec::new();
        facts_of(e, &mut out);
        out
    }

    #[test]
    fn a_server_answer_shows_a_service_and_a_flow_only_presence() {
        let answer = packet(EventKind::Service {
            src: ip("10.0.0.7"),
            src_port: 104,
            dst: ip("10.0.0.9"),
            dst_port: 40000,
            transport: Transport::Tcp,
            link: link(),
        });
        let o = facts(&answer);
        assert_eq!(o.len(), 2);
        assert_eq!(o[0].seen, Fact::Presence);
        assert!(o[0].mac.is_some());
        assert!(
            matches!(&o[1].seen, Fact::Service(s) if s.port == 104 && s.protocol == Protocol::Dicom)
        );
        let flow = |link| {
            packet(EventKind::Flow {
                src: ip("10.0.0.9"),
                src_port: 40000,
                dst: ip("10.0.0.7"),
                dst_port: 104,
                transport: Transport::Tcp,
                packets_out: 1,
                bytes_out: 60,
                packets_in: 0,
                bytes_in: 0,
                flags_out: heir_model::event::TcpFlags(0x02),
                flags_in: heir_model::event::TcpFlags(0),
                syn_unanswered: 1,
                established: false,
                icmp_unreachable: false,
                first_seen: Timestamp::from_nanos(1),
                last_seen: Timestamp::from_nanos(1),
                link,
            })
        };
        let o = facts(&flow(link()));
        assert_eq!(o.len(), 1);
        assert_eq!((o[0].ip, &o[0].seen), (ip("10.0.0.9"), &Fact::Presence));
        assert!(facts(&flow(None)).is_empty(), "a summary adds nothing new");
    }

    #[test]
    fn dicom_titles_go_to_their_devices() {
        let o = facts(&packet(EventKind::Protocol {
            src: ip("10.0.0.7"),
            src_port: 40000,
            dst: ip("10.0.0.9"),
            dst_port: 104,
            observation: Observation::Dicom {
                calling_ae: "CT01".into(),
                called_ae: "PACS".into(),
                accepted: None,
            },
        }));
        let title = |at: &str, t: &str| {
            o.iter()
                .any(|x| x.ip == ip(at) && x.seen == Fact::DicomAeTitle { title: t.into() })
        };
        assert!(title("10.0.0.9", "PACS") && title("10.0.0.7", "CT01"));
        assert!(
            o.iter()
                .any(|x| matches!(&x.seen, Fact::Service(s) if s.port == 104))
        );
    }

    #[test]
    fn old_tls_is_observed_on_the_server() {
        let o = facts(&packet(EventKind::Protocol {
            src: ip("10.0.0.7"),
            src_port: 40000,
            dst: ip("10.0.0.9"),
            dst_port: 2762,
            observation: Observation::DicomTls {
                versions: vec![0x0301],
                cipher_suites: vec![0x002f],
                ja4: String::new(),
            },
        }));
        assert!(o.iter().any(|x| x.ip == ip("10.0.0.9")
            && x.seen
                == Fact::Tls {
                    port: 2762,
                    version: TlsVersion::Tls10
                }));
        assert!(
            o.iter()
                .any(|x| matches!(&x.seen, Fact::Service(s) if s.protocol == Protocol::DicomTls))
        );
    }

    proptest::proptest! {
        #[test]
        fn decoding_arbitrary_json_never_panics(text in "\\PC{0,200}") {
            let _ = serde_json::from_str::<DeviceFact>(&text);
        }
    }
}
