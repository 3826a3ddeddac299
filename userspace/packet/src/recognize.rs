//! Protocol recognition on a flow's first payload (at most `SAMPLE_LEN` bytes, already
//! trimmed by the kernel: HL7 after the MSH segment, FTP after `PASS`).
//!
//! Each parser reads only what it needs and keeps only what an [`Observation`] carries: AE
//! titles, MSH applications, TLS parameters, a banner, flags. Anything malformed is simply
//! not recognised; no parser can panic on any input.
//!
//! SMB and RDP are recognised by their port (their dialect and security are not read yet).

use heir_abi::ports;
use heir_model::event::{Observation, Transport};
use heir_model::tls::is_grease;
use sha2::{Digest, Sha256};

/// What a client payload from `sport` to `dport` says.
pub fn recognize(
    transport: Transport,
    sport: u16,
    dport: u16,
    payload: &[u8],
) -> Option<Observation> {
    let port = |p: u16| sport == p || dport == p;
    if port(ports::DNS) {
        // Over TCP, each message is preceded by its two-byte length.
        let message = match transport {
            Transport::Udp => Some(payload),
            Transport::Tcp => payload.get(2..),
            _ => None,
        };
        if let Some(o) = message.and_then(crate::dns::message) {
            return Some(o);
        }
    }
    if transport != Transport::Tcp {
        return None;
    }
    if let Some(p) = tls(payload, dport) {
        return Some(p);
    }
    if let Some(p) = dicom(payload, ports::is_dicom(sport) || ports::is_dicom(dport)) {
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
        let banner = printable(&b[..end.min(124)]);
        let (proto, software) = banner.split_once('-').unwrap_or((&banner, ""));
        return Some(Observation::SshBanner {
            proto_version: proto.to_owned(),
            software: software.to_owned(),
        });
    }
    if let Some(p) = http(payload) {
        return Some(p);
    }
    if port(ports::FTP) {
        return Some(ftp(payload));
    }
    if port(ports::TELNET) {
        return Some(Observation::Telnet {
            user: None,
            outcome: None,
        });
    }
    if port(ports::SMB) {
        return Some(Observation::Smb { dialect: None });
    }
    if port(ports::RDP) {
        return Some(Observation::Rdp {
            standard_security: None,
        });
    }
    if port(ports::MQTT) {
        return Some(Observation::Mqtt {
            user: None,
            cleartext_credentials: false,
            outcome: None,
        });
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
fn dicom(p: &[u8], on_port: bool) -> Option<Observation> {
    let ae = |b: &[u8]| {
        let s = printable(b);
        let t = s.trim().to_owned();
        (!t.is_empty() && b.iter().all(|&c| (0x20..0x7f).contains(&c))).then_some(t)
    };
    let rq = p.len() >= 42 && p[0] == 0x01 && p[6..8] == [0x00, 0x01];
    if rq {
        let (called, calling) = (ae(&p[10..26]), ae(&p[26..42]));
        if let (Some(called_ae), Some(calling_ae)) = (called, calling) {
            return Some(Observation::Dicom {
                calling_ae,
                called_ae,
                accepted: None,
            });
        }
    }
    on_port.then(|| Observation::Dicom {
        calling_ae: String::new(),
        called_ae: String::new(),
        accepted: None,
    })
}

/// HL7 v2 over MLLP: `0x0B` then `MSH`, the field separator, the encoding characters, then
/// MSH-3 (sending application), MSH-4, MSH-5 (receiving application). The first component
/// of each application is kept; nothing after MSH-5 is read.
fn hl7(p: &[u8]) -> Option<Observation> {
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
    Some(Observation::Hl7Mllp {
        sending_application: component(fields.get(1)),
        receiving_application: component(fields.get(3)),
    })
}

/// An FTP command. Only whether it was `PASS` is kept: the kernel cut the password off, and
/// the account name is the login tracker's ([`crate::logins`]).
fn ftp(p: &[u8]) -> Observation {
    let pass = p.len() >= 4 && p[..4].eq_ignore_ascii_case(b"PASS");
    Observation::Ftp {
        user: None,
        cleartext_credentials: pass,
        outcome: None,
    }
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
/// The path is only matched against the administration paths: URLs can carry patient
/// identifiers.
fn http(p: &[u8]) -> Option<Observation> {
    let line_end = p.windows(2).position(|w| w == b"\r\n").unwrap_or(p.len());
    let line = std::str::from_utf8(&p[..line_end]).ok()?;
    let mut parts = line.split(' ');
    let method = parts.next()?;
    let target = parts.next()?;
    let version = parts.next().unwrap_or("");
    if !METHODS.contains(&method) || !version.starts_with("HTTP/") {
        return None;
    }
    let path = target.split(['?', '#']).next().unwrap_or("");
    let headers = &p[line_end..];
    let basic_auth = headers
        .windows(22)
        .any(|w| w.eq_ignore_ascii_case(b"\r\nauthorization: basic"));
    let admin_path = ADMIN.iter().any(|a| {
        path.len() >= a.len() && path.as_bytes()[..a.len()].eq_ignore_ascii_case(a.as_bytes())
    });
    let host = host_header(headers);
    // A request line may name the server itself (`GET http://host/path`, as to a proxy).
    let (host, path) = match target.split_once("://") {
        Some((_, rest)) => {
            let (h, p) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            (Some(without_port(h)), p)
        }
        None => (host, path),
    };
    let url_digest = host
        .as_deref()
        .map(|h| heir_model::event::url_digest(h, path));
    Some(Observation::Http {
        method: method.to_owned(),
        admin_path,
        basic_auth_user: None,
        basic_auth_cleartext: basic_auth,
        status: None,
        host,
        url_digest,
    })
}

/// The `Host` header among the sampled ones, lowercased and without its port.
fn host_header(headers: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(headers);
    text.split("\r\n").find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("host")
            .then(|| without_port(value.trim()))
            .filter(|h| !h.is_empty() && h.len() <= 253 && !h.contains(char::is_whitespace))
    })
}

/// `host:port` or `[v6]:port` as the host alone, lowercased.
fn without_port(h: &str) -> String {
    let h = match h.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(v6),
        None => h.rsplit_once(':').map_or(h, |(host, port)| {
            if port.bytes().all(|b| b.is_ascii_digit()) {
                host
            } else {
                h
            }
        }),
    };
    h.trim_end_matches('.').to_ascii_lowercase()
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
fn tls(p: &[u8], dport: u16) -> Option<Observation> {
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
        .filter(|&s| !is_grease(s))
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
                if is_grease(ty) {
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
                                .filter(|&v| !is_grease(v))
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
    let versions = if supported_versions.is_empty() {
        vec![legacy_version]
    } else {
        supported_versions
    };
    if dport == ports::DICOM_TLS {
        return Some(Observation::DicomTls {
            versions,
            cipher_suites: ciphers,
            ja4: fingerprint,
        });
    }
    Some(Observation::TlsClientHello {
        versions,
        cipher_suites: ciphers,
        sni: None,
        alpn: Vec::new(),
        ja4: fingerprint,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::samples::{dicom_associate, tls_client_hello};
    use heir_model::tls::{TlsVersion, weak_cipher};
    use proptest::prelude::*;

    fn tcp(dport: u16, p: &[u8]) -> Option<Observation> {
        recognize(Transport::Tcp, 40000, dport, p)
    }

    fn dicom(calling: &str, called: &str) -> Observation {
        Observation::Dicom {
            calling_ae: calling.into(),
            called_ae: called.into(),
            accepted: None,
        }
    }

    #[test]
    fn dicom_association_names_both_entities() {
        assert_eq!(
            tcp(104, &dicom_associate()),
            Some(dicom("MODALITY01", "PACS"))
        );
        // Found on any port by its content; on a DICOM port without an association it is
        // still DICOM; elsewhere, random bytes are nothing.
        assert_eq!(
            tcp(4242, &dicom_associate()),
            Some(dicom("MODALITY01", "PACS"))
        );
        assert_eq!(tcp(11112, b"\x04\x00\x00\x00"), Some(dicom("", "")));
        assert_eq!(tcp(4242, b"\x01\x00garbage"), None);
    }

    #[test]
    fn hl7_keeps_only_the_applications() {
        let msg = b"\x0bMSH|^~\\&|LAB^1.2.3^ISO|HOSP|EHR|HOSP|20240101||ORU^R01|1|P|2.5";
        let p = tcp(2575, msg).unwrap();
        assert_eq!(
            p,
            Observation::Hl7Mllp {
                sending_application: "LAB".into(),
                receiving_application: "EHR".into()
            }
        );
        let json = serde_json::to_string(&p).unwrap();
        assert!(!json.contains("HOSP") && !json.contains("ORU"), "{json}");
        // Without MLLP framing it is not HL7 over MLLP.
        assert_eq!(tcp(2575, b"MSH|^~\\&|A"), None);
    }

    #[test]
    fn tls_client_hello_versions_ciphers_and_fingerprint() {
        let hello = tls_client_hello();
        let Some(Observation::TlsClientHello {
            versions,
            cipher_suites,
            ja4,
            ..
        }) = tcp(443, &hello)
        else {
            panic!("not TLS: {:?}", tcp(443, &hello));
        };
        assert_eq!(versions, vec![0x0301]);
        assert_eq!(cipher_suites, vec![0x002f, 0x0035, 0x000a, 0xc013]);
        assert!(ja4.starts_with("t10i0400_"), "{ja4}");
        // What made it risky is read from what it carries.
        let best = TlsVersion::from_wire(versions[0]).unwrap();
        assert!(best.is_obsolete());
        assert!(cipher_suites.iter().any(|&c| weak_cipher(c).is_some()));
        // On the DICOM-over-TLS port it is DICOM, with what was offered.
        assert!(matches!(
            tcp(2762, &hello),
            Some(Observation::DicomTls { versions, cipher_suites, ja4 })
                if versions == [0x0301] && cipher_suites.len() == 4 && ja4.starts_with("t10i0400_")
        ));
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
        let Some(Observation::TlsClientHello {
            versions,
            cipher_suites,
            ja4,
            ..
        }) = tcp(443, &rec)
        else {
            panic!()
        };
        assert_eq!(versions, vec![0x0304, 0x0303]);
        assert_eq!(cipher_suites, vec![0x1301, 0x1302]);
        assert!(ja4.starts_with("t13d0202_"), "{ja4}");
        assert!(cipher_suites.iter().all(|&c| weak_cipher(c).is_none()));
    }

    #[test]
    fn ftp_flags_credentials_without_keeping_them() {
        let ftp = |cleartext_credentials| Observation::Ftp {
            user: None,
            cleartext_credentials,
            outcome: None,
        };
        assert_eq!(tcp(21, b"USER nurse\r\n"), Some(ftp(false)));
        // The kernel cuts the sample after PASS; userspace never sees the password.
        assert_eq!(tcp(21, b"PASS"), Some(ftp(true)));
    }

    #[test]
    fn http_basic_auth_and_admin_paths() {
        let req = b"GET /admin/config?token=abc HTTP/1.1\r\nHost: pump\r\nAuthorization: Basic YWRtaW46YWRtaW4=\r\n\r\n";
        let p = tcp(80, req).unwrap();
        assert_eq!(
            p,
            Observation::Http {
                method: "GET".into(),
                admin_path: true,
                basic_auth_user: None,
                basic_auth_cleartext: true,
                status: None,
                host: Some("pump".into()),
                url_digest: Some(heir_model::event::url_digest("pump", "/admin/config")),
            }
        );
        let json = serde_json::to_string(&p).unwrap();
        assert!(!json.contains("YWRt") && !json.contains("token"), "{json}");
        assert!(matches!(
            tcp(8080, b"GET /index.html HTTP/1.0\r\n\r\n"),
            Some(Observation::Http {
                admin_path: false,
                basic_auth_cleartext: false,
                ..
            })
        ));
    }

    #[test]
    fn banners_and_ports() {
        assert_eq!(
            tcp(22, b"SSH-2.0-OpenSSH_9.2p1 Debian\r\n"),
            Some(Observation::SshBanner {
                proto_version: "2.0".into(),
                software: "OpenSSH_9.2p1 Debian".into()
            })
        );
        assert_eq!(
            tcp(23, b"\xff\xfd\x18"),
            Some(Observation::Telnet {
                user: None,
                outcome: None
            })
        );
        assert!(matches!(
            tcp(1883, b"\x10\x0c"),
            Some(Observation::Mqtt {
                cleartext_credentials: false,
                ..
            })
        ));
        assert_eq!(
            tcp(445, b"\0\0\0\x54\xfeSMB"),
            Some(Observation::Smb { dialect: None })
        );
        assert_eq!(
            tcp(3389, b"\x03\0\0\x13"),
            Some(Observation::Rdp {
                standard_security: None
            })
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
