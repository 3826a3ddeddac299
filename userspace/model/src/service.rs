//! The application protocol a service speaks, and the well-known port that names it when
//! nothing in the payload does.

use heir_abi::ports;
use serde::{Deserialize, Serialize};

/// Application protocols whose risk heir knows. `Other` covers the rest; the sensor's
/// inventory's `cleartext` and `risky` flags still describe it.
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

impl Protocol {
    /// The protocol a TCP port is registered for, `Other` when heir knows none.
    pub const fn by_port(port: u16) -> Protocol {
        match port {
            p if ports::is_dicom(p) => Protocol::Dicom,
            ports::DICOM_TLS => Protocol::DicomTls,
            ports::MLLP => Protocol::Hl7Mllp,
            ports::TELNET => Protocol::Telnet,
            ports::FTP => Protocol::Ftp,
            p if ports::is_http(p) => Protocol::Http,
            ports::HTTPS => Protocol::Https,
            ports::SSH => Protocol::Ssh,
            ports::SMB => Protocol::Smb,
            ports::RDP => Protocol::Rdp,
            ports::MQTT => Protocol::Mqtt,
            ports::MQTT_TLS => Protocol::MqttTls,
            ports::VNC => Protocol::Vnc,
            _ => Protocol::Other,
        }
    }
}
