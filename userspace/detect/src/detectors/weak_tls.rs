//! Obsolete TLS: SSL 3.0, TLS 1.0 and 1.1 offered or negotiated, and broken cipher suites
//! (NULL, EXPORT, RC4, DES, 3DES) actually chosen by a server.

use heir_model::event::Observation;
use heir_model::tls::{version_name, weak_cipher};
use heir_model::{Alert, Category, Event, EventKind, Severity};
use serde::{Deserialize, Serialize};

use crate::{Detector, Kind, Spec};

const SPEC: Spec = Spec {
    rule: "net.weak_tls",
    category: Category::WeakTls,
    owasp_iot: "I7",
    enisa: "Nefarious activity/abuse: interception of information (weak cryptography)",
    attack: "T1557",
};

/// Obsolete-TLS settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub enabled: bool,
    /// Lowest acceptable version (0x0303 = TLS 1.2).
    pub min_version: u16,
    /// Also report clients whose best offer is below `min_version` (servers may still refuse).
    pub report_clients: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            enabled: true,
            min_version: 0x0303,
            report_clients: true,
        }
    }
}

pub struct WeakTls {
    cfg: Config,
}

impl WeakTls {
    pub fn new(cfg: Config) -> Self {
        Self { cfg }
    }
}

impl Detector for WeakTls {
    fn name(&self) -> &'static str {
        "weak_tls"
    }

    fn kinds(&self) -> &'static [Kind] {
        &[Kind::Protocol]
    }

    fn inspect(&mut self, ev: &Event, out: &mut Vec<Alert>) {
        let EventKind::Protocol {
            src,
            dst,
            dst_port,
            observation,
            ..
        } = &ev.kind
        else {
            return;
        };
        let (title, severity, evidence) = match observation {
            Observation::TlsServerHello {
                version,
                cipher_suite,
            } => {
                let mut ev = Vec::new();
                if *version < self.cfg.min_version {
                    ev.push(format!(
                        "server {dst} negotiated {}",
                        version_name(*version)
                    ));
                }
                if let Some(w) = weak_cipher(*cipher_suite) {
                    ev.push(format!(
                        "server {dst} chose cipher suite 0x{cipher_suite:04x} ({w})"
                    ));
                }
                if ev.is_empty() {
                    return;
                }
                (
                    format!("Obsolete TLS negotiated by {dst}"),
                    Severity::High,
                    ev,
                )
            }
            Observation::TlsClientHello {
                versions,
                cipher_suites,
                ja4,
                ..
            } if self.cfg.report_clients => {
                let best = versions.iter().copied().max().unwrap_or(0);
                if best == 0 || best >= self.cfg.min_version {
                    return;
                }
                let weak = cipher_suites
                    .iter()
                    .filter(|c| weak_cipher(**c).is_some())
                    .count();
                (
                    format!("Client {src} can only speak {}", version_name(best)),
                    Severity::Medium,
                    vec![format!(
                        "best version offered: {}; {weak} weak suites offered; fingerprint {ja4}",
                        version_name(best)
                    )],
                )
            }
            _ => return,
        };
        let mut a = SPEC.alert(ev.ts, title, severity, 0.95);
        a.device = Some(match observation {
            Observation::TlsClientHello { .. } => src.to_string(),
            _ => dst.to_string(),
        });
        a.src_ip = Some(*src);
        a.dst_ip = Some(*dst);
        a.dst_port = Some(*dst_port);
        a.evidence = evidence;
        out.push(a);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detectors::fixtures::*;

    #[test]
    fn tls10_server_fires_tls13_https_is_quiet() {
        let mut d = WeakTls::new(Config::default());
        // openssl s_server -tls1 -cipher 'AES128-SHA:@SECLEVEL=0' answering a client.
        let old = proto(
            0,
            "10.9.0.30",
            "10.9.0.40",
            443,
            Observation::TlsServerHello {
                version: 0x0301,
                cipher_suite: 0x002f,
            },
        );
        let rc4 = proto(
            1,
            "10.9.0.30",
            "10.9.0.41",
            443,
            Observation::TlsServerHello {
                version: 0x0303,
                cipher_suite: 0x0005,
            },
        );
        let alerts = run(&mut d, &[old, rc4]);
        assert_eq!(alerts.len(), 2);
        assert!(alerts[0].evidence[0].contains("TLS 1.0"));
        assert!(alerts[1].evidence[0].contains("RC4"));
        assert_complete(&alerts);
        // curl https:// with TLS 1.3
        let hello = proto(
            2,
            "10.9.0.30",
            "10.9.0.42",
            443,
            Observation::TlsClientHello {
                versions: vec![0x0304, 0x0303],
                cipher_suites: vec![0x1302, 0x1303, 0x1301, 0xc02c, 0xc030],
                sni: Some("pacs.example".into()),
                alpn: vec!["h2".into()],
                ja4: "t13d3112h2_e8f1e7e78f70_6bebaf5329ac".into(),
            },
        );
        let server = proto(
            3,
            "10.9.0.42",
            "10.9.0.30",
            443,
            Observation::TlsServerHello {
                version: 0x0304,
                cipher_suite: 0x1302,
            },
        );
        assert!(run(&mut d, &[hello, server]).is_empty());
    }
}
