//! Medical and administration protocols without encryption: DICOM and HL7 over plain TCP,
//! telnet, FTP, cleartext HTTP administration and MQTT logins, legacy RDP security, SMB1.
//! One alert per (client, server, protocol) per quiet period, not one per association.

use std::collections::HashMap;
use std::net::IpAddr;

use heir_model::event::Observation;
use heir_model::{Alert, Category, Event, EventKind, Severity};
use serde::{Deserialize, Serialize};

use crate::util::{Cidr, bound, in_any, secs_to_ns};
use crate::{Detector, Kind, Spec};

const SPEC: Spec = Spec {
    rule: "net.cleartext_protocol",
    category: Category::CleartextProtocol,
    owasp_iot: "I7",
    enisa: "Nefarious activity/abuse: interception of information (insecure communication)",
    attack: "T1040",
};

/// Cleartext-protocol settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub enabled: bool,
    /// Hours before the same client/server/protocol is reported again.
    pub repeat_hours: u64,
    /// Servers (e.g. a legacy PACS on an isolated VLAN) accepted to speak DICOM/HL7 in cleartext.
    pub medical_cleartext_allowed: Vec<Cidr>,
    pub max_tracked: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            enabled: true,
            repeat_hours: 24,
            medical_cleartext_allowed: Vec::new(),
            max_tracked: 100_000,
        }
    }
}

pub struct Cleartext {
    cfg: Config,
    seen: HashMap<(IpAddr, IpAddr, &'static str), u64>,
}

impl Cleartext {
    pub fn new(cfg: Config) -> Self {
        Self {
            cfg,
            seen: HashMap::new(),
        }
    }
}

impl Detector for Cleartext {
    fn name(&self) -> &'static str {
        "cleartext"
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
        let medical = matches!(
            observation,
            Observation::Dicom { .. } | Observation::Hl7Mllp { .. }
        );
        if medical && in_any(&self.cfg.medical_cleartext_allowed, *dst) {
            return;
        }
        let (severity, what) = match observation {
            Observation::Dicom {
                calling_ae,
                called_ae,
                ..
            } => (
                Severity::Medium,
                format!(
                    "DICOM association {calling_ae} → {called_ae} without TLS: images and patient metadata readable on the wire"
                ),
            ),
            Observation::Hl7Mllp {
                sending_application,
                receiving_application,
            } => (
                Severity::Medium,
                format!(
                    "HL7 v2 over MLLP {sending_application} → {receiving_application} without TLS: patient messages readable on the wire"
                ),
            ),
            Observation::Telnet { .. } => (
                Severity::High,
                "telnet administration session: commands and password in cleartext".to_owned(),
            ),
            Observation::Ftp {
                cleartext_credentials: true,
                ..
            } => (
                Severity::High,
                "FTP login with password in cleartext".to_owned(),
            ),
            Observation::Ftp { .. } => (Severity::Medium, "FTP session in cleartext".to_owned()),
            Observation::Http {
                basic_auth_cleartext: true,
                ..
            } => (
                Severity::High,
                "HTTP Basic credentials in cleartext".to_owned(),
            ),
            Observation::Http {
                admin_path: true, ..
            } => (
                Severity::Medium,
                "device administration over cleartext HTTP".to_owned(),
            ),
            Observation::Mqtt {
                cleartext_credentials: true,
                ..
            } => (
                Severity::Medium,
                "MQTT login with password in cleartext".to_owned(),
            ),
            Observation::Rdp {
                standard_security: Some(true),
            } => (
                Severity::Medium,
                "RDP with legacy standard security (no TLS/NLA)".to_owned(),
            ),
            Observation::Smb {
                dialect: Some(0x0100),
            } => (
                Severity::High,
                "SMB1 (the protocol EternalBlue/WannaCry spread through)".to_owned(),
            ),
            _ => return,
        };
        let proto = observation.name();
        let now = ev.ts.as_nanos();
        let repeat = secs_to_ns(self.cfg.repeat_hours.saturating_mul(3600));
        bound(&mut self.seen, self.cfg.max_tracked, |_, t| {
            now.saturating_sub(*t) < repeat
        });
        if let Some(t) = self.seen.get(&(*src, *dst, proto))
            && now.saturating_sub(*t) < repeat
        {
            return;
        }
        self.seen.insert((*src, *dst, proto), now);
        let mut a = SPEC.alert(
            ev.ts,
            format!("Cleartext {proto} between {src} and {dst}"),
            severity,
            0.95,
        );
        a.device = Some(dst.to_string());
        a.src_ip = Some(*src);
        a.dst_ip = Some(*dst);
        a.dst_port = Some(*dst_port);
        a.evidence.push(what);
        out.push(a);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detectors::fixtures::*;

    fn cecho(ms: u64) -> Event {
        proto(
            ms,
            "10.9.0.30",
            "10.9.0.5",
            104,
            Observation::Dicom {
                calling_ae: "ECHOSCU".into(),
                called_ae: "ANY-SCP".into(),
                accepted: Some(true),
            },
        )
    }

    #[test]
    fn cleartext_dicom_fires_once_per_pair_tls_dicom_is_quiet() {
        let mut d = Cleartext::new(Config::default());
        let events: Vec<_> = (0..50).map(|i| cecho(i * 1000)).collect();
        let alerts = run(&mut d, &events);
        assert_eq!(alerts.len(), 1);
        assert!(alerts[0].evidence[0].contains("ECHOSCU → ANY-SCP"));
        assert_complete(&alerts);
        let mut d = Cleartext::new(Config::default());
        let tls = proto(
            0,
            "10.9.0.30",
            "10.9.0.5",
            2762,
            Observation::DicomTls {
                versions: vec![0x0303],
                cipher_suites: vec![0x1301],
                ja4: String::new(),
            },
        );
        let hello = proto(
            1,
            "10.9.0.30",
            "10.9.0.5",
            443,
            Observation::TlsClientHello {
                versions: vec![0x0304],
                cipher_suites: vec![0x1301],
                sni: None,
                alpn: vec![],
                ja4: "t13d".into(),
            },
        );
        assert!(run(&mut d, &[tls, hello]).is_empty());
    }

    #[test]
    fn allowed_legacy_pacs_and_telnet() {
        let mut d = Cleartext::new(Config {
            medical_cleartext_allowed: vec!["10.9.0.5/32".parse().unwrap()],
            ..Config::default()
        });
        assert!(run(&mut d, &[cecho(0)]).is_empty());
        let telnet = proto(
            0,
            "10.9.0.66",
            "10.9.0.20",
            23,
            Observation::Telnet {
                user: None,
                outcome: None,
            },
        );
        let alerts = run(&mut d, &[telnet]);
        assert_eq!(alerts[0].severity, Severity::High);
    }
}
