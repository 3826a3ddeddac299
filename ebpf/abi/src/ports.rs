//! The well-known ports heir recognises services on, defined once for the XDP probe (which
//! samples payloads on some of them), the protocol recogniser and the device inventory.

pub const FTP: u16 = 21;
pub const DNS: u16 = 53;
pub const SSH: u16 = 22;
pub const TELNET: u16 = 23;
pub const HTTP: u16 = 80;
pub const HTTP_ALT: u16 = 8080;
pub const HTTPS: u16 = 443;
/// DICOM upper layer: the registered port and the one most PACS use.
pub const DICOM: u16 = 104;
pub const DICOM_ALT: u16 = 11112;
/// DICOM over TLS (DICOM PS3.15 Annex B).
pub const DICOM_TLS: u16 = 2762;
/// HL7 v2 over MLLP.
pub const MLLP: u16 = 2575;
pub const SMB: u16 = 445;
pub const RDP: u16 = 3389;
pub const MQTT: u16 = 1883;
pub const MQTT_TLS: u16 = 8883;
pub const VNC: u16 = 5900;

/// Cleartext HTTP ports.
pub const fn is_http(port: u16) -> bool {
    port == HTTP || port == HTTP_ALT
}

/// Cleartext DICOM ports.
pub const fn is_dicom(port: u16) -> bool {
    port == DICOM || port == DICOM_ALT
}
