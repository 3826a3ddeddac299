//! What the passive sensors report about devices on the wire.
//!
//! The packet sensor and protocol decoders produce one [`Observation`] per new fact (a device
//! answered on a port, announced a DICOM AE title, negotiated TLS 1.0, accepted a default
//! password). The inventory folds them into devices; RAMA scores their exposure.

use std::net::IpAddr;

use heir_model::Timestamp;
use serde::{Deserialize, Serialize};

use crate::mac::MacAddr;

/// One fact about the device at `ip`, seen at `ts`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Observation {
    pub ts: Timestamp,
    pub ip: IpAddr,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<MacAddr>,
    pub seen: Seen,
}

/// The fact itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Seen {
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    Tcp,
    Udp,
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
        })
    }
}

/// Application protocols whose risk heir knows. `Other` covers the rest; the sensor's
/// [`Service::cleartext`] and [`Service::risky`] flags still describe it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    Telnet,
    Ftp,
    Tftp,
    Http,
    Https,
    Ssh,
    Dicom,
    DicomTls,
    Hl7Mllp,
    Mqtt,
    MqttTls,
    Smb,
    Rdp,
    Vnc,
    Snmp,
    Modbus,
    Other,
}

impl Protocol {
    pub const fn as_str(self) -> &'static str {
        match self {
            Protocol::Telnet => "telnet",
            Protocol::Ftp => "ftp",
            Protocol::Tftp => "tftp",
            Protocol::Http => "http",
            Protocol::Https => "https",
            Protocol::Ssh => "ssh",
            Protocol::Dicom => "dicom",
            Protocol::DicomTls => "dicom_tls",
            Protocol::Hl7Mllp => "hl7_mllp",
            Protocol::Mqtt => "mqtt",
            Protocol::MqttTls => "mqtt_tls",
            Protocol::Smb => "smb",
            Protocol::Rdp => "rdp",
            Protocol::Vnc => "vnc",
            Protocol::Snmp => "snmp",
            Protocol::Modbus => "modbus",
            Protocol::Other => "other",
        }
    }

    /// Carries credentials or clinical data unencrypted.
    pub const fn is_cleartext(self) -> bool {
        matches!(
            self,
            Protocol::Telnet
                | Protocol::Ftp
                | Protocol::Tftp
                | Protocol::Http
                | Protocol::Dicom
                | Protocol::Hl7Mllp
                | Protocol::Mqtt
                | Protocol::Vnc
                | Protocol::Snmp
                | Protocol::Modbus
        )
    }

    /// Remote administration or file sharing: what ransomware and operators of it use first.
    pub const fn is_risky(self) -> bool {
        matches!(
            self,
            Protocol::Telnet
                | Protocol::Smb
                | Protocol::Rdp
                | Protocol::Vnc
                | Protocol::Tftp
                | Protocol::Modbus
        )
    }
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
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

/// Negotiated TLS (or SSL) protocol version. Ordered oldest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum TlsVersion {
    #[serde(rename = "ssl3")]
    Ssl3,
    #[serde(rename = "tls1.0")]
    Tls10,
    #[serde(rename = "tls1.1")]
    Tls11,
    #[serde(rename = "tls1.2")]
    Tls12,
    #[serde(rename = "tls1.3")]
    Tls13,
}

impl TlsVersion {
    /// Deprecated by RFC 7568 (SSLv3) and RFC 8996 (TLS 1.0 and 1.1).
    pub const fn is_obsolete(self) -> bool {
        matches!(
            self,
            TlsVersion::Ssl3 | TlsVersion::Tls10 | TlsVersion::Tls11
        )
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            TlsVersion::Ssl3 => "SSLv3",
            TlsVersion::Tls10 => "TLS 1.0",
            TlsVersion::Tls11 => "TLS 1.1",
            TlsVersion::Tls12 => "TLS 1.2",
            TlsVersion::Tls13 => "TLS 1.3",
        }
    }
}

impl std::fmt::Display for TlsVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_round_trip_as_json_and_reject_unknown_fields() {
        let o = Observation {
            ts: Timestamp::from_secs(1_700_000_000),
            ip: "10.1.2.3".parse().unwrap(),
            mac: Some("00:09:5c:00:00:01".parse().unwrap()),
            seen: Seen::Service(Service::new(23, Transport::Tcp, Protocol::Telnet)),
        };
        let j = serde_json::to_string(&o).unwrap();
        assert!(
            j.contains(r#""kind":"service""#) && j.contains(r#""cleartext":true"#),
            "{j}"
        );
        assert_eq!(serde_json::from_str::<Observation>(&j).unwrap(), o);
        let tls = r#"{"ts":"2023-11-14T22:13:20Z","ip":"10.0.0.1","seen":{"kind":"tls","port":443,"version":"tls1.0"}}"#;
        let o: Observation = serde_json::from_str(tls).unwrap();
        assert_eq!(
            o.seen,
            Seen::Tls {
                port: 443,
                version: TlsVersion::Tls10
            }
        );
        let bad =
            r#"{"ts":"2023-11-14T22:13:20Z","ip":"10.0.0.1","seen":{"kind":"presence"},"extra":1}"#;
        assert!(
            serde_json::from_str::<Observation>(bad)
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

    proptest::proptest! {
        #[test]
        fn decoding_arbitrary_json_never_panics(text in "\\PC{0,200}") {
            let _ = serde_json::from_str::<Observation>(&text);
        }
    }
}
