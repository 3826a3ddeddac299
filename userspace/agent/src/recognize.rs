//! Protocol recognition on a flow's first payload (at most `SAMPLE_LEN` bytes, already
//! trimmed by the kernel: HL7 after the MSH segment, FTP after `PASS`).
//!
//! Each parser reads only what it needs and keeps only what the model carries: AE titles,
//! MSH applications, TLS parameters, a banner, flags. Anything malformed is simply not
//! recognised; no parser can panic on any input.

use heir_model::packet::{Protocol, Risk, Transport};
use sha2::{Digest, Sha256};

pub const DICOM: [u16; 2] = [104, 11112];
pub const DICOM_TLS: u16 = 2762;
pub const MLLP: u16 = 2575;
pub const TELNET: u16 = 23;
pub const FTP: u16 = 21;
pub const HTTP: [u16; 2] = [80, 8080];
pub const MQTT: u16 = 1883;
pub const MQTT_TLS: u16 = 8883;
pub const SSH: u16 = 22;
pub const SMB: u16 = 445;
pub const RDP: u16 = 3389;

/// What a payload says, and what is risky about it.
pub fn recognize(
    transport: Transport,
    sport: u16,
    dport: u16,
    payload: &[u8],
) -> Option<(Protocol, Vec<Risk>)> {
    let port = |p: u16| sport == p || dport == p;
    if transport == Transport::Tcp {
        if let Some(p) = tls(payload, dport) {
            return Some(p);
        }
        if let Some(p) = dicom(payload, DICOM.iter().any(|&p| port(p))) {
            return Some(p);
        }
        if let Some(p) = hl7(payload) {
            return Some(p);
        }
        if let Some(b) = payload.strip_prefix(b"SSH-") {
            let end = b
                .iter()
                .position(|&c| c == b'\r' || c == b'\n')
                .unwrap_or(b.len());
            let banner = format!("SSH-{}", printable(&b[..end.min(128)]));
            return Some((Protocol::Ssh { banner }, Vec::new()));
        }
        if let Some(p) = http(payload) {
            return Some(p);
        }
        if port(FTP) {
            return ftp(payload);
        }
        if port(TELNET) {
            return Some((Protocol::Telnet, vec![Risk::CleartextLogin]));
        }
        if port(SMB) {
            return Some((Protocol::Smb, Vec::new()));
        }
        if port(RDP) {
            return Some((Protocol::Rdp, Vec::new()));
        }
        if port(MQTT) {
            return Some((Protocol::Mqtt { tls: false }, vec![Risk::CleartextMedical]));
        }
        if port(MQTT_TLS) {
            return Some((Protocol::Mqtt { tls: true }, Vec::new()));
        }
    }
    None
}

/// Bytes as text, non-printable ones replaced, for banners and titles.
fn printable(b: &[u8]) -> String {
    b.iter()
        .map(|&c| {
            if (0x20..0x7f).contains(&c) {
                c as char
            } else {
                '?'
            }
        })
        .collect()
}

/// A DICOM A-ASSOCIATE-RQ: PDU type 1, protocol version 1, called then calling AE title
/// (16 bytes each, space padded). On the DICOM ports an unrecognised first PDU still names
/// the protocol.
fn dicom(p: &[u8], on_port: bool) -> Option<(Protocol, Vec<Risk>)> {
    let ae = |b: &[u8]| {
        let s = printable(b);
        let t = s.trim().to_owned();
        (!t.is_empty() && b.iter().all(|&c| (0x20..0x7f).contains(&c))).then_some(t)
    };
    let rq = p.len() >= 42 && p[0] == 0x01 && p[6..8] == [0x00, 0x01];
    if rq {
        let (called, calling) = (ae(&p[10..26]), ae(&p[26..42]));
        if called.is_some() && calling.is_some() {
            return Some((
                Protocol::Dicom {
                    calling_ae: calling,
                    called_ae: called,
                },
                vec![Risk::CleartextMedical],
            ));
        }
    }
    on_port.then(|| {
        (
            Protocol::Dicom {
                calling_ae: None,
                called_ae: None,
            },
            vec![Risk::CleartextMedical],
        )
    })
}

/// HL7 v2 over MLLP: `0x0B` then `MSH`, the field separator, the encoding characters, then
/// MSH-3 (sending application), MSH-4, MSH-5 (receiving application). The first component
/// of each application is kept; nothing after MSH-5 is read.
fn hl7(p: &[u8]) -> Option<(Protocol, Vec<Risk>)> {
    let msg = p.strip_prefix(&[0x0b])?;
    let rest = msg.strip_prefix(b"MSH")?;
    let sep = *rest.first()?;
    if sep.is_ascii_alphanumeric() || sep == b'\r' {
        return None;
    }
    let segment = &rest[1..rest.iter().position(|&c| c == b'\r').unwrap_or(rest.len())];
    let fields: Vec<&[u8]> = segment.split(|&c| c == sep).take(4).collect();
    let component = |f: Option<&&[u8]>| {
        let f = f.copied().unwrap_or_default();
        let comp = fields
            .first()
            .and_then(|enc| enc.first().copied())
            .unwrap_or(b'^');
        printable(f.split(|&c| c == comp).next().unwrap_or_default())
    };
    // fields[0] is MSH-2 (encoding characters).
    Some((
        Protocol::Hl7 {
            sending_app: component(fields.get(1)),
            receiving_app: component(fields.get(3)),
        },
        vec![Risk::CleartextMedical],
    ))
}

fn ftp(p: &[u8]) -> Option<(Protocol, Vec<Risk>)> {
    let cmd = |c: &[u8]| p.len() >= c.len() && p[..c.len()].eq_ignore_ascii_case(c);
    let (user_seen, password_seen) = (cmd(b"USER"), cmd(b"PASS"));
    let risks = if password_seen {
        vec![Risk::CleartextCredentials]
    } else {
        Vec::new()
    };
    Some((
        Protocol::Ftp {
            user_seen,
            password_seen,
        },
        risks,
    ))
}

const METHODS: [&str; 8] = [
    "GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "CONNECT",
];
const ADMIN: [&str; 10] = [
    "/admin",
    "/manager",
    "/cgi-bin",
    "/login",
    "/config",
    "/setup",
    "/phpmyadmin",
    "/wp-admin",
    "/console",
    "/service",
];

/// An HTTP request line; Basic credentials in the sampled headers are flagged, never kept.
/// The path is kept without its query string.
fn http(p: &[u8]) -> Option<(Protocol, Vec<Risk>)> {
    let line_end = p.windows(2).position(|w| w == b"\r\n").unwrap_or(p.len());
    let line = std::str::from_utf8(&p[..line_end]).ok()?;
    let mut parts = line.split(' ');
    let method = parts.next()?;
    let target = parts.next()?;
    let version = parts.next().unwrap_or("");
    if !METHODS.contains(&method) || !version.starts_with("HTTP/") {
        return None;
    }
    let path: String = target
        .split(['?', '#'])
        .next()
        .unwrap_or("")
        .chars()
        .take(128)
        .collect();
    let headers = &p[line_end..];
    let basic_auth = headers
        .windows(22)
        .any(|w| w.eq_ignore_ascii_case(b"\r\nauthorization: basic"));
    let mut risks = Vec::new();
    if basic_auth {
        risks.push(Risk::CleartextCredentials);
    }
    let lower = path.to_ascii_lowercase();
    if ADMIN.iter().any(|a| lower.starts_with(a)) {
        risks.push(Risk::AdminPath);
    }
    Some((
        Protocol::Http {
            method: method.to_owned(),
            path,
            basic_auth,
        },
        risks,
    ))
}

/// Cipher suites no device should offer: NULL, export, anonymous, RC4, DES and 3DES.
fn weak(suite: u16) -> bool {
    matches!(
        suite,
        0x0000..=0x001b
            | 0x002c..=0x002e
            | 0x0034
            | 0x003a
            | 0x0046
            | 0x006c
            | 0x006d
            | 0x0089
            | 0x008a
            | 0x008b
            | 0x008e
            | 0x008f
            | 0x0092
            | 0x0093
            | 0x00b0
            | 0x00b1
            | 0x00b4
            | 0x00b5
            | 0x00b8
            | 0x00b9
            | 0xc001..=0xc003
            | 0xc006..=0xc008
            | 0xc00b..=0xc00d
            | 0xc010..=0xc012
            | 0xc015..=0xc018
    )
}

fn grease(v: u16) -> bool {
    v & 0x0f0f == 0x0a0a && v >> 8 == v & 0xff
}

/// A cursor that fails instead of panicking.
struct Cur<'a>(&'a [u8]);

impl<'a> Cur<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
}

/// A TLS ClientHello. The sample may end inside the extensions; what was seen is used.
fn tls(p: &[u8], dport: u16) -> Option<(Protocol, Vec<Risk>)> {
    let mut c = Cur(p);
    if c.u8()? != 0x16 || c.u8()? != 0x03 {
        return None;
    }
    c.take(3)?; // record minor version, length
    if c.u8()? != 0x01 {
        return None;
    }
    c.take(3)?; // handshake length
    let legacy_version = c.u16()?;
    if legacy_version >> 8 != 0x03 {
        return None;
    }
    c.take(32)?;
    let sid = c.u8()? as usize;
    c.take(sid)?;
    let n = c.u16()? as usize;
    let suites = c.take(n.min(c.0.len()))?;
    let ciphers: Vec<u16> = suites
        .chunks_exact(2)
        .map(|s| u16::from_be_bytes([s[0], s[1]]))
        .filter(|&s| !grease(s))
        .collect();
    let mut supported_versions = Vec::new();
    let mut extensions = 0usize;
    let mut sni = false;
    if let Some(comp) = c.u8() {
        c.take(comp as usize);
        if c.u16().is_some() {
            while let (Some(ty), Some(len)) = (c.u16(), c.u16()) {
                let Some(body) = c.take(len as usize) else {
                    break;
                };
                if grease(ty) {
                    continue;
                }
                extensions += 1;
                match ty {
                    0x0000 => sni = true,
                    0x002b => {
                        let mut b = Cur(body);
                        let n = b.u8().unwrap_or(0) as usize;
                        if let Some(list) = b.take(n) {
                            supported_versions = list
                                .chunks_exact(2)
                                .map(|v| u16::from_be_bytes([v[0], v[1]]))
                                .filter(|&v| !grease(v))
                                .collect();
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    let best = supported_versions
        .iter()
        .copied()
        .max()
        .unwrap_or(legacy_version)
        .max(legacy_version);
    let mut risks = Vec::new();
    if best <= 0x0302 {
        risks.push(Risk::OldTls);
    }
    if ciphers.iter().any(|&s| weak(s)) {
        risks.push(Risk::WeakCiphers);
    }
    let version = match best {
        0x0304 => "13",
        0x0303 => "12",
        0x0302 => "11",
        0x0301 => "10",
        0x0300 => "s3",
        _ => "00",
    };
    let mut sorted: Vec<String> = ciphers.iter().map(|s| format!("{s:04x}")).collect();
    sorted.sort();
    let digest = Sha256::digest(sorted.join(",").as_bytes());
    let hash: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    let fingerprint = format!(
        "t{version}{}{:02}{:02}_{hash}",
        if sni { 'd' } else { 'i' },
        ciphers.len().min(99),
        extensions.min(99)
    );
    let inner = match dport {
        DICOM_TLS => Some("dicom".to_owned()),
        MQTT_TLS => Some("mqtt".to_owned()),
        _ => None,
    };
    Some((
        Protocol::Tls {
            legacy_version,
            supported_versions,
            ciphers,
            fingerprint,
            inner,
        },
        risks,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench_xdp::{dicom_associate, tls_client_hello};
    use proptest::prelude::*;

    fn tcp(dport: u16, p: &[u8]) -> Option<(Protocol, Vec<Risk>)> {
        recognize(Transport::Tcp, 40000, dport, p)
    }

    #[test]
    fn dicom_association_names_both_entities() {
        let (p, r) = tcp(104, &dicom_associate()).unwrap();
        assert_eq!(
            p,
            Protocol::Dicom {
                calling_ae: Some("MODALITY01".into()),
                called_ae: Some("PACS".into())
            }
        );
        assert_eq!(r, vec![Risk::CleartextMedical]);
        // Found on any port by its content; on a DICOM port without an association it is
        // still DICOM; elsewhere, random bytes are nothing.
        assert!(matches!(
            tcp(4242, &dicom_associate()),
            Some((Protocol::Dicom { .. }, _))
        ));
        assert!(matches!(
            tcp(11112, b"\x04\x00\x00\x00"),
            Some((
                Protocol::Dicom {
                    calling_ae: None,
                    ..
                },
                _
            ))
        ));
        assert_eq!(tcp(4242, b"\x01\x00garbage"), None);
    }

    #[test]
    fn hl7_keeps_only_the_applications() {
        let msg = b"\x0bMSH|^~\\&|LAB^1.2.3^ISO|HOSP|EHR|HOSP|20240101||ORU^R01|1|P|2.5";
        let (p, _) = tcp(2575, msg).unwrap();
        assert_eq!(
            p,
            Protocol::Hl7 {
                sending_app: "LAB".into(),
                receiving_app: "EHR".into()
            }
        );
        let json = serde_json::to_string(&p).unwrap();
        assert!(!json.contains("HOSP") && !json.contains("ORU"), "{json}");
        // Without MLLP framing it is not HL7 over MLLP.
        assert_eq!(tcp(2575, b"MSH|^~\\&|A"), None);
    }

    #[test]
    fn tls_client_hello_versions_ciphers_and_fingerprint() {
        let (p, r) = tcp(2762, &tls_client_hello()).unwrap();
        let Protocol::Tls {
            legacy_version,
            supported_versions,
            ciphers,
            fingerprint,
            inner,
        } = p
        else {
            panic!("not TLS: {p:?}");
        };
        assert_eq!(legacy_version, 0x0301);
        assert!(supported_versions.is_empty());
        assert_eq!(ciphers, vec![0x002f, 0x0035, 0x000a, 0xc013]);
        assert!(fingerprint.starts_with("t10i0400_"), "{fingerprint}");
        assert_eq!(inner.as_deref(), Some("dicom"));
        assert_eq!(r, vec![Risk::OldTls, Risk::WeakCiphers]);
    }

    #[test]
    fn modern_tls_is_not_flagged() {
        // TLS 1.3 ClientHello: legacy 1.2, supported_versions [GREASE, 1.3, 1.2], SNI.
        let mut body = vec![0x03, 0x03];
        body.extend_from_slice(&[7; 32]);
        body.push(0);
        body.extend_from_slice(&[0, 6, 0x1a, 0x1a, 0x13, 0x01, 0x13, 0x02]);
        body.extend_from_slice(&[1, 0]);
        let exts = [
            vec![0, 0, 0, 5, 0, 3, 0, 0, 0],
            vec![0, 0x2b, 0, 7, 6, 0x2a, 0x2a, 3, 4, 3, 3],
        ]
        .concat();
        body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
        body.extend_from_slice(&exts);
        let mut rec = vec![0x16, 3, 1, 0, 0, 1, 0, 0, body.len() as u8];
        rec.extend_from_slice(&body);
        let (p, r) = tcp(443, &rec).unwrap();
        assert!(r.is_empty(), "{r:?}");
        let Protocol::Tls {
            supported_versions,
            ciphers,
            fingerprint,
            ..
        } = p
        else {
            panic!()
        };
        assert_eq!(supported_versions, vec![0x0304, 0x0303]);
        assert_eq!(ciphers, vec![0x1301, 0x1302]);
        assert!(fingerprint.starts_with("t13d0202_"), "{fingerprint}");
    }

    #[test]
    fn ftp_flags_credentials_without_keeping_them() {
        assert_eq!(
            tcp(21, b"USER nurse\r\n").unwrap(),
            (
                Protocol::Ftp {
                    user_seen: true,
                    password_seen: false
                },
                vec![]
            )
        );
        // The kernel cuts the sample after PASS; userspace never sees the password.
        assert_eq!(
            tcp(21, b"PASS").unwrap(),
            (
                Protocol::Ftp {
                    user_seen: false,
                    password_seen: true
                },
                vec![Risk::CleartextCredentials]
            )
        );
    }

    #[test]
    fn http_basic_auth_and_admin_paths() {
        let req = b"GET /admin/config?token=abc HTTP/1.1\r\nHost: pump\r\nAuthorization: Basic YWRtaW46YWRtaW4=\r\n\r\n";
        let (p, r) = tcp(80, req).unwrap();
        assert_eq!(
            p,
            Protocol::Http {
                method: "GET".into(),
                path: "/admin/config".into(),
                basic_auth: true
            }
        );
        assert_eq!(r, vec![Risk::CleartextCredentials, Risk::AdminPath]);
        assert!(!serde_json::to_string(&p).unwrap().contains("YWRt"));
        let (_, r) = tcp(8080, b"GET /index.html HTTP/1.0\r\n\r\n").unwrap();
        assert!(r.is_empty());
    }

    #[test]
    fn banners_and_ports() {
        assert_eq!(
            tcp(22, b"SSH-2.0-OpenSSH_9.2p1 Debian\r\n").unwrap().0,
            Protocol::Ssh {
                banner: "SSH-2.0-OpenSSH_9.2p1 Debian".into()
            }
        );
        assert_eq!(tcp(23, b"\xff\xfd\x18").unwrap().0, Protocol::Telnet);
        assert_eq!(tcp(445, b"\0\0\0\x54\xfeSMB").unwrap().0, Protocol::Smb);
        assert_eq!(tcp(3389, b"\x03\0\0\x13").unwrap().0, Protocol::Rdp);
        assert_eq!(
            tcp(1883, b"\x10\x0c").unwrap().0,
            Protocol::Mqtt { tls: false }
        );
        assert_eq!(tcp(5555, b"hello"), None);
        assert_eq!(recognize(Transport::Udp, 1, 23, b"x"), None);
    }

    proptest! {
        #[test]
        fn no_input_panics(p in proptest::collection::vec(any::<u8>(), 0..300), dport in any::<u16>()) {
            let _ = recognize(Transport::Tcp, 40000, dport, &p);
        }

        #[test]
        fn truncated_client_hellos_never_panic(cut in 0usize..80) {
            let full = tls_client_hello();
            let _ = recognize(Transport::Tcp, 1, 443, &full[..cut.min(full.len())]);
        }
    }
}
