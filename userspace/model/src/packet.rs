//! What the gateway packet sensor reports: flows it saw start (or dropped) and protocols it
//! recognised in a flow's first payload.
//!
//! Only what recognition needs is kept: AE titles, MSH applications, TLS parameters, a
//! banner. Passwords are never carried (a flag says one was seen in cleartext), nor any HL7
//! field after the MSH applications.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::Timestamp;

/// The transport protocol of a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    Tcp,
    Udp,
    Icmp,
    Other(u8),
}

/// A flow's 5-tuple as seen on the wire; for ICMP the ports are type and code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FlowId {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
    pub transport: Transport,
}

/// Where and when a packet was seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    pub ts: Timestamp,
    /// Interface index on the gateway.
    pub ifindex: u32,
    /// Source and destination MAC, `aa:bb:cc:dd:ee:ff`.
    pub src_mac: String,
    pub dst_mac: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vlan: Option<u16>,
}

/// The first packet of a flow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowEvent {
    #[serde(flatten)]
    pub seen: Seen,
    pub flow: FlowId,
    /// TCP flags of this first packet (SYN alone opens a connection).
    pub tcp_flags: u8,
    /// Bytes of the frame.
    pub bytes: u32,
    /// The packet was dropped by a block.
    pub dropped: bool,
}

/// A protocol recognised in a flow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "protocol", rename_all = "snake_case")]
pub enum Protocol {
    /// DICOM upper layer: an A-ASSOCIATE-RQ names both application entities.
    Dicom {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        calling_ae: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        called_ae: Option<String>,
    },
    /// HL7 v2 over MLLP: the sending and receiving applications of the MSH segment only.
    Hl7 {
        sending_app: String,
        receiving_app: String,
    },
    Tls {
        /// The ClientHello's legacy version and, if present, its supported_versions.
        legacy_version: u16,
        supported_versions: Vec<u16>,
        /// Cipher suites offered, GREASE values removed.
        ciphers: Vec<u16>,
        /// A JA4-style fingerprint: `t<version><sni d|i><ciphers:02><extensions:02>_<sha256(ciphers)[..12]>`.
        fingerprint: String,
        /// The well-known port says what runs inside (DICOM over TLS on 2762, MQTT on 8883).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        inner: Option<String>,
    },
    Ftp {
        user_seen: bool,
        password_seen: bool,
    },
    Http {
        method: String,
        path: String,
        basic_auth: bool,
    },
    Ssh {
        banner: String,
    },
    Telnet,
    Smb,
    Rdp,
    Mqtt {
        tls: bool,
    },
}

impl Protocol {
    pub fn name(&self) -> &'static str {
        match self {
            Protocol::Dicom { .. } => "dicom",
            Protocol::Hl7 { .. } => "hl7",
            Protocol::Tls { .. } => "tls",
            Protocol::Ftp { .. } => "ftp",
            Protocol::Http { .. } => "http",
            Protocol::Ssh { .. } => "ssh",
            Protocol::Telnet => "telnet",
            Protocol::Smb => "smb",
            Protocol::Rdp => "rdp",
            Protocol::Mqtt { .. } => "mqtt",
        }
    }
}

/// Something risky about a recognised protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Risk {
    /// Credentials crossed the network in cleartext (FTP PASS, HTTP Basic, telnet).
    CleartextCredentials,
    /// A cleartext remote-login protocol.
    CleartextLogin,
    /// TLS 1.1 or older offered as the best version.
    OldTls,
    /// NULL, export, RC4, DES or 3DES suites offered.
    WeakCiphers,
    /// An administrative HTTP path.
    AdminPath,
    /// Cleartext MQTT or DICOM, which carry device data.
    CleartextMedical,
}

/// A protocol recognised in a flow's first payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProtocolEvent {
    #[serde(flatten)]
    pub seen: Seen,
    pub flow: FlowId,
    #[serde(flatten)]
    pub protocol: Protocol,
    pub risks: Vec<Risk>,
}

/// Everything the packet sensor reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PacketEvent {
    Flow(FlowEvent),
    Protocol(ProtocolEvent),
}

impl PacketEvent {
    pub fn flow(&self) -> &FlowId {
        match self {
            PacketEvent::Flow(f) => &f.flow,
            PacketEvent::Protocol(p) => &p.flow,
        }
    }
}
