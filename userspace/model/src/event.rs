//! The typed event every sensor and replay source produces.
//!
//! JSON field names are a public contract (`heir monitor --json`, `heir replay`): the process
//! context and the kind-specific fields sit side by side in one flat object, tagged by `kind`.

use std::net::IpAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::Timestamp;

/// One thing that happened, with who did it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub ts: Timestamp,
    #[serde(flatten)]
    pub process: Process,
    #[serde(flatten)]
    pub kind: EventKind,
}

/// The process an event is attributed to, as the kernel saw it at that moment, plus what the
/// process table knows about it (`info`), shared between all events of that process.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Process {
    /// Thread-group id: what users call the pid.
    pub pid: u32,
    pub tid: u32,
    pub ppid: u32,
    pub uid: u32,
    pub euid: u32,
    pub gid: u32,
    pub comm: String,
    #[serde(default)]
    pub cgroup: u64,
    #[serde(
        default,
        flatten,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "info_if_known"
    )]
    pub info: Option<Arc<ProcessInfo>>,
}

/// A flattened `ProcessInfo` with no field present means the process table knew nothing.
fn info_if_known<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Arc<ProcessInfo>>, D::Error> {
    let info = ProcessInfo::deserialize(d)?;
    Ok((info != ProcessInfo::default()).then(|| Arc::new(info)))
}

/// What the process table adds: the executable, its arguments and where it came from.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ProcessInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exe: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// When the process started (its exec, or when the agent first saw it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<Timestamp>,
    /// Parent first, then grandparent, up to init or the depth limit.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lineage: Vec<Ancestor>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ancestor {
    pub pid: u32,
    pub exe: String,
}

/// A socket address as a syscall passed or returned it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "family", rename_all = "snake_case")]
pub enum NetAddr {
    Inet { ip: IpAddr, port: u16 },
    Unix { path: String },
    Other { af: u16 },
}

impl NetAddr {
    pub fn port(&self) -> Option<u16> {
        match self {
            NetAddr::Inet { port, .. } => Some(*port),
            _ => None,
        }
    }

    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            NetAddr::Inet { ip, .. } => Some(*ip),
            _ => None,
        }
    }
}

/// Socket address family, for events that know the family but not an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SockFamily {
    Inet,
    Inet6,
    Unix,
    Other,
}

/// Which credential call changed ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredCall {
    Setuid,
    Setreuid,
    Setresuid,
    Setgid,
    Setregid,
    Setresgid,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModuleOp {
    InitModule,
    FinitModule,
    DeleteModule,
}

/// What happened. Every syscall-derived kind carries `ret`: the syscall's return value,
/// negative errno on failure, so attempts that the kernel refused are still visible.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventKind {
    Exec {
        filename: String,
        argv: Vec<String>,
        /// More arguments existed than the kernel probe copies.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        argv_truncated: bool,
        ret: i64,
    },
    Fork {
        child_pid: u32,
    },
    Exit {
        code: i32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signal: Option<i32>,
    },
    Open {
        path: String,
        flags: u32,
        ret: i64,
    },
    Rename {
        from: String,
        to: String,
        ret: i64,
    },
    Unlink {
        path: String,
        ret: i64,
    },
    /// Aggregated in the kernel: one process modified many files within one window, or
    /// (`children`) the children of its parent did between them, as a shell loop running one
    /// helper per file does. Reported when the window's total reaches the threshold and again
    /// each time it doubles; the counts are the window's so far.
    FileBurst {
        writes: u32,
        renames: u32,
        unlinks: u32,
        window_ms: u32,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        children: bool,
    },
    Connect {
        addr: NetAddr,
        ret: i64,
    },
    Accept {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        local: Option<NetAddr>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        peer: Option<NetAddr>,
        ret: i64,
    },
    Bind {
        addr: NetAddr,
        ret: i64,
    },
    Listen {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        addr: Option<NetAddr>,
        backlog: i32,
        ret: i64,
    },
    CredChange {
        call: CredCall,
        /// Requested ids; `None` where the call leaves that id unchanged (-1).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        real: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        effective: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        saved: Option<u32>,
        ret: i64,
    },
    Capset {
        effective: u64,
        permitted: u64,
        inheritable: u64,
        ret: i64,
    },
    Ptrace {
        request: i64,
        target: u32,
        ret: i64,
    },
    Module {
        op: ModuleOp,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        ret: i64,
    },
    Bpf {
        cmd: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prog_type: Option<u32>,
        ret: i64,
    },
    MemfdCreate {
        name: String,
        flags: u32,
        ret: i64,
    },
    Mount {
        source: String,
        target: String,
        fstype: String,
        flags: u64,
        ret: i64,
    },
    /// A connection summary from the packet sensor (XDP on a gateway NIC), emitted when a flow
    /// ends or its flow-table entry is evicted, and at most once per export interval for flows
    /// that stay open. `src` is the side that sent the first packet the sensor saw, normally the
    /// initiator; "out" counts `src → dst`, "in" counts `dst → src`.
    Flow {
        src: std::net::IpAddr,
        src_port: u16,
        dst: std::net::IpAddr,
        dst_port: u16,
        transport: Transport,
        packets_out: u64,
        bytes_out: u64,
        packets_in: u64,
        bytes_in: u64,
        /// Union of the TCP flags `src` sent (0 for non-TCP).
        flags_out: TcpFlags,
        /// Union of the TCP flags `dst` sent back (0 for non-TCP or no answer).
        flags_in: TcpFlags,
        /// SYNs from `src` that never saw the three-way handshake complete: the SYN-flood and
        /// half-open-scan signal, counted in the kernel so a flood is one record, not millions.
        syn_unanswered: u32,
        /// The TCP handshake completed (SYN, SYN-ACK, ACK) at least once.
        established: bool,
        /// An ICMP port/host unreachable came back for this flow (closed UDP port).
        icmp_unreachable: bool,
        first_seen: crate::Timestamp,
        last_seen: crate::Timestamp,
        /// Where the flow's first packet was seen, for a flow reported at its start; a
        /// summary read from the kernel's flow table has none.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        link: Option<Link>,
    },
    /// A server's answer to a new connection (a TCP SYN-ACK from `src:src_port`): `src` serves
    /// on `src_port`. It tells the inventory what runs where; the flow it answers reaches the
    /// detectors from its SYN, so an answer is not a flow of its own (read as one, every reply
    /// would look like a probe of the client's port).
    Service {
        src: std::net::IpAddr,
        src_port: u16,
        dst: std::net::IpAddr,
        dst_port: u16,
        transport: Transport,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        link: Option<Link>,
    },
    /// The packet sensor dropped a packet of this flow because one of its ends is blocked
    /// (reported at most once per flow and block).
    Dropped {
        src: std::net::IpAddr,
        src_port: u16,
        dst: std::net::IpAddr,
        dst_port: u16,
        transport: Transport,
        tcp_flags: TcpFlags,
        bytes: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        link: Option<Link>,
    },
    /// What the packet sensor's protocol recogniser learnt from a flow's first payload bytes.
    /// Carries identities and flags only: never passwords, message bodies or patient data.
    Protocol {
        src: std::net::IpAddr,
        src_port: u16,
        dst: std::net::IpAddr,
        dst_port: u16,
        observation: Observation,
    },
}

impl EventKind {
    /// The `kind` tag, for counters and filters that should not allocate.
    pub const fn name(&self) -> &'static str {
        self.kind().name()
    }
}

impl EventKind {
    /// Reported by the packet sensor (flows, answers, drops, recognised protocols) rather
    /// than by a syscall probe.
    pub const fn is_packet(&self) -> bool {
        matches!(
            self,
            EventKind::Flow { .. }
                | EventKind::Service { .. }
                | EventKind::Dropped { .. }
                | EventKind::Protocol { .. }
        )
    }
}

impl Event {
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self).expect("events always serialise")
    }
}

/// The transport protocol of a flow or a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    Tcp,
    Udp,
    Icmp,
    Other,
}

impl Transport {
    /// From the IP header's protocol number.
    pub const fn from_ip_proto(p: u8) -> Self {
        use heir_abi::packet::{PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP};
        match p {
            PROTO_TCP => Transport::Tcp,
            PROTO_UDP => Transport::Udp,
            PROTO_ICMP | PROTO_ICMPV6 => Transport::Icmp,
            _ => Transport::Other,
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
            Transport::Icmp => "icmp",
            Transport::Other => "other",
        }
    }
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where on the gateway the packet sensor saw a packet: the interface and the link-layer
/// addresses, which identify a device when its IP address moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Link {
    pub ifindex: u32,
    pub src_mac: crate::MacAddr,
    pub dst_mac: crate::MacAddr,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vlan: Option<u16>,
}

/// TCP flag bits as on the wire (FIN = 0x01 … CWR = 0x80), OR-ed over a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
    pub const ECE: u8 = 0x40;
    pub const CWR: u8 = 0x80;

    pub const fn has(self, bits: u8) -> bool {
        self.0 & bits == bits
    }
}

/// Whether a login the recogniser saw was accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoginOutcome {
    Success,
    Failure,
}

/// A recognised application protocol and what it revealed, tagged by `protocol`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "protocol", rename_all = "snake_case")]
pub enum Observation {
    /// DICOM upper layer in cleartext: the A-ASSOCIATE-RQ's application entity titles.
    Dicom {
        calling_ae: String,
        called_ae: String,
        /// The association was accepted (A-ASSOCIATE-AC) or rejected (A-ASSOCIATE-RJ), once seen.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        accepted: Option<bool>,
    },
    /// DICOM over TLS: a TLS ClientHello on the dedicated port 2762, with what it offered as
    /// for [`Observation::TlsClientHello`].
    DicomTls {
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        versions: Vec<u16>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        cipher_suites: Vec<u16>,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        ja4: String,
    },
    /// HL7 v2 over MLLP in cleartext: MSH-3 and MSH-5 only, never segments with patient data.
    Hl7Mllp {
        sending_application: String,
        receiving_application: String,
    },
    /// Telnet with the login name typed at the `login:` prompt, if seen.
    Telnet {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        outcome: Option<LoginOutcome>,
    },
    /// FTP control channel: `USER` name, whether `PASS` crossed in cleartext (the password
    /// itself is never kept), and the server's 230/530 verdict.
    Ftp {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user: Option<String>,
        cleartext_credentials: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        outcome: Option<LoginOutcome>,
    },
    /// Cleartext HTTP request and response status.
    Http {
        method: String,
        /// The path matched the sensor's administration-path list (`/admin`, `/cgi-bin/`, …);
        /// the path itself is not kept, since URLs can carry patient identifiers.
        admin_path: bool,
        /// User name of an `Authorization: Basic` header (the password is dropped).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        basic_auth_user: Option<String>,
        /// Basic credentials crossed the network in cleartext.
        basic_auth_cleartext: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<u16>,
        /// The `Host` header, lowercased, without its port: which server was asked for.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        host: Option<String>,
        /// SHA-256 (hex) of the requested URL as [`url_digest`] spells it, so a reported URL
        /// can be recognised without the path, which may name a patient, ever being kept.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        url_digest: Option<String>,
    },
    /// A DNS message over UDP or TCP port 53: the name asked for and, in an answer, the
    /// addresses it resolved to.
    Dns {
        /// The first question's name, lowercased, without the trailing dot.
        query: String,
        /// A response (QR set) rather than a query.
        response: bool,
        /// A and AAAA records of a response's answer section.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        answers: Vec<IpAddr>,
    },
    /// MQTT CONNECT.
    Mqtt {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user: Option<String>,
        cleartext_credentials: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        outcome: Option<LoginOutcome>,
    },
    /// TLS ClientHello.
    TlsClientHello {
        /// Versions offered: `supported_versions` if present, else the legacy version
        /// (0x0300 SSL 3.0, 0x0301 TLS 1.0, 0x0302 TLS 1.1, 0x0303 TLS 1.2, 0x0304 TLS 1.3).
        versions: Vec<u16>,
        /// Cipher suites offered, GREASE values removed, in client order.
        cipher_suites: Vec<u16>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sni: Option<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        alpn: Vec<String>,
        /// JA4-style client fingerprint (`t13d1516h2_8daaf6152771_e5627efa2ab1`).
        ja4: String,
    },
    /// TLS ServerHello: what was actually negotiated.
    TlsServerHello { version: u16, cipher_suite: u16 },
    /// SSH identification string, e.g. `SSH-2.0-OpenSSH_9.2p1`: protocol and software parts.
    SshBanner {
        proto_version: String,
        software: String,
    },
    /// SMB negotiation; `dialect` 0x0100 stands for SMB1, else the SMB2/3 dialect number,
    /// when the sample showed it (a request recognised by its port alone does not).
    Smb {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        dialect: Option<u16>,
    },
    /// RDP connection request; `standard_security` means the legacy RDP encryption (no TLS/NLA),
    /// when the sample showed it.
    Rdp {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        standard_security: Option<bool>,
    },
}

impl Observation {
    /// The `protocol` tag.
    pub const fn name(&self) -> &'static str {
        match self {
            Observation::Dicom { .. } => "dicom",
            Observation::DicomTls { .. } => "dicom_tls",
            Observation::Hl7Mllp { .. } => "hl7_mllp",
            Observation::Telnet { .. } => "telnet",
            Observation::Ftp { .. } => "ftp",
            Observation::Http { .. } => "http",
            Observation::Dns { .. } => "dns",
            Observation::Mqtt { .. } => "mqtt",
            Observation::TlsClientHello { .. } => "tls_client_hello",
            Observation::TlsServerHello { .. } => "tls_server_hello",
            Observation::SshBanner { .. } => "ssh_banner",
            Observation::Smb { .. } => "smb",
            Observation::Rdp { .. } => "rdp",
        }
    }
}

/// The digest [`Observation::Http::url_digest`] carries: SHA-256 over `host` (lowercased,
/// without a port) followed by `path` (without query or fragment), hex. The recogniser and
/// the known-indicator matcher both spell URLs through this one function.
pub fn url_digest(host: &str, path: &str) -> String {
    use sha2::{Digest, Sha256};
    let host = host.trim().trim_end_matches('.').to_ascii_lowercase();
    let path = path.split(['?', '#']).next().unwrap_or("");
    let path = if path.is_empty() { "/" } else { path };
    let mut h = Sha256::new();
    h.update(host.as_bytes());
    h.update(path.as_bytes());
    let d = h.finalize();
    d.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Event {
        Event {
            ts: Timestamp::from_secs(1_700_000_000),
            process: Process {
                pid: 42,
                tid: 43,
                ppid: 1,
                uid: 1000,
                euid: 0,
                gid: 1000,
                comm: "sudo".into(),
                cgroup: 7,
                info: Some(Arc::new(ProcessInfo {
                    exe: Some("/usr/bin/sudo".into()),
                    args: vec!["sudo".into(), "-i".into()],
                    started: None,
                    lineage: vec![Ancestor {
                        pid: 1,
                        exe: "/sbin/init".into(),
                    }],
                })),
            },
            kind: EventKind::Connect {
                addr: NetAddr::Inet {
                    ip: "127.0.0.1".parse().unwrap(),
                    port: 443,
                },
                ret: -111,
            },
        }
    }

    #[test]
    fn json_is_flat_and_round_trips() {
        let e = sample();
        let line = e.to_json_line();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["kind"], "connect");
        assert_eq!(v["pid"], 42);
        assert_eq!(v["exe"], "/usr/bin/sudo");
        assert_eq!(v["addr"]["family"], "inet");
        assert_eq!(v["addr"]["port"], 443);
        assert_eq!(v["ret"], -111);
        let back: Event = serde_json::from_str(&line).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn events_without_process_info_round_trip() {
        let mut e = sample();
        e.process.info = None;
        e.kind = EventKind::Exit {
            code: 0,
            signal: None,
        };
        let back: Event = serde_json::from_str(&e.to_json_line()).unwrap();
        assert_eq!(back, e);
    }
}
