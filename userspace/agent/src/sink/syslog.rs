//! Alerts to a SIEM as RFC 5424 syslog messages over UDP.
//!
//! Each alert is one datagram: the RFC 5424 header (facility local0, severity mapped from the
//! alert's, the alert's time, this host, app `heir`, msgid = category) and the alert's JSON
//! line as the message, so a SIEM gets the same fields as the alert file.

use std::net::{SocketAddr, UdpSocket};

use heir_model::{Alert, Severity};

/// Facility local0: where site-specific security tools conventionally log.
const FACILITY_LOCAL0: u8 = 16;

pub struct Syslog {
    socket: UdpSocket,
    target: SocketAddr,
    hostname: String,
}

impl Syslog {
    pub fn connect(target: SocketAddr) -> std::io::Result<Syslog> {
        let bind: SocketAddr = if target.is_ipv4() {
            "0.0.0.0:0".parse().expect("valid")
        } else {
            "[::]:0".parse().expect("valid")
        };
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_else(|_| "-".into());
        Ok(Syslog {
            socket: UdpSocket::bind(bind)?,
            target,
            hostname,
        })
    }

    pub fn send(&self, alert: &Alert) -> std::io::Result<()> {
        let msg = format(alert, &self.hostname, std::process::id());
        self.socket.send_to(msg.as_bytes(), self.target).map(|_| ())
    }
}

impl super::Sink for Syslog {
    fn name(&self) -> &'static str {
        "syslog"
    }

    fn wants(&self) -> super::Wants {
        super::Wants::ALERTS
    }

    fn alert(&mut self, alert: &Alert) -> Result<(), super::Failure> {
        Ok(self.send(alert)?)
    }
}

/// The syslog severity for an alert severity.
fn severity(s: Severity) -> u8 {
    match s {
        Severity::Critical => 2,
        Severity::High => 3,
        Severity::Medium => 4,
        Severity::Low => 5,
        Severity::Info => 6,
    }
}

/// One RFC 5424 message. Header fields are printable US-ASCII without spaces, as the RFC
/// requires; anything else becomes `_`.
pub fn format(alert: &Alert, hostname: &str, pid: u32) -> String {
    let clean = |s: &str, max: usize| -> String {
        let out: String = s
            .chars()
            .take(max)
            .map(|c| if c.is_ascii_graphic() { c } else { '_' })
            .collect();
        if out.is_empty() { "-".into() } else { out }
    };
    format!(
        "<{}>1 {} {} heir {} {} - {}",
        FACILITY_LOCAL0 * 8 + severity(alert.severity),
        alert.ts.to_rfc3339(),
        clean(hostname, 255),
        pid,
        clean(alert.category.slug(), 32),
        alert.to_json_line()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use heir_model::{Category, Timestamp};

    #[test]
    fn messages_follow_rfc_5424() {
        let a = Alert::new(
            Timestamp::from_secs(1_700_000_000),
            "host.reverse_shell",
            "Reverse shell",
            Category::ReverseShell,
            Severity::Critical,
            0.95,
        );
        let m = format(&a, "pacs gw", 42);
        assert!(
            m.starts_with("<130>1 2023-11-14T22:13:20Z pacs_gw heir 42 reverse_shell - {"),
            "{m}"
        );
        let json = m.split_once(" - ").unwrap().1;
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(v["category"], "reverse_shell");
    }
}
