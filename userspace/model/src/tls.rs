//! TLS versions and cipher suites, named once for the recogniser, the detectors and RAMA.

use serde::{Deserialize, Serialize};

/// A TLS (or SSL) protocol version. Ordered oldest first.
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
    /// The version as a handshake carries it (0x0300 SSL 3.0 … 0x0304 TLS 1.3); `None` for
    /// anything else (GREASE, drafts, DTLS).
    pub const fn from_wire(v: u16) -> Option<Self> {
        Some(match v {
            0x0300 => TlsVersion::Ssl3,
            0x0301 => TlsVersion::Tls10,
            0x0302 => TlsVersion::Tls11,
            0x0303 => TlsVersion::Tls12,
            0x0304 => TlsVersion::Tls13,
            _ => return None,
        })
    }

    pub const fn wire(self) -> u16 {
        match self {
            TlsVersion::Ssl3 => 0x0300,
            TlsVersion::Tls10 => 0x0301,
            TlsVersion::Tls11 => 0x0302,
            TlsVersion::Tls12 => 0x0303,
            TlsVersion::Tls13 => 0x0304,
        }
    }

    /// Deprecated by RFC 7568 (SSLv3) and RFC 8996 (TLS 1.0 and 1.1).
    pub const fn is_obsolete(self) -> bool {
        matches!(
            self,
            TlsVersion::Ssl3 | TlsVersion::Tls10 | TlsVersion::Tls11
        )
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            TlsVersion::Ssl3 => "SSL 3.0",
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

/// A wire version's name: `TLS 1.0`, or its hex value when it is none of the known ones.
pub fn version_name(v: u16) -> String {
    match TlsVersion::from_wire(v) {
        Some(t) => t.as_str().to_owned(),
        None => format!("0x{v:04x}"),
    }
}

/// The best version a client offers: the highest of its legacy version and its
/// `supported_versions`.
pub fn best_offered(versions: &[u16]) -> Option<u16> {
    versions.iter().copied().max()
}

/// Why a cipher suite's confidentiality is broken (NULL, EXPORT, RC4, DES, 3DES); `None`
/// for a suite that is not.
pub fn weak_cipher(c: u16) -> Option<&'static str> {
    match c {
        0x0000..=0x0002 | 0x002c..=0x002e | 0x003b | 0xc001 | 0xc006 | 0xc00b | 0xc010 | 0xc015 => {
            Some("NULL encryption")
        }
        0x0003 | 0x0006 | 0x0008 | 0x000b | 0x000e | 0x0011 | 0x0014 | 0x0017 | 0x0019 => {
            Some("EXPORT")
        }
        0x0004 | 0x0005 | 0x0018 | 0x008a | 0x008e | 0x0092 | 0xc002 | 0xc007 | 0xc00c | 0xc011
        | 0xc016 => Some("RC4"),
        0x0009 | 0x000c | 0x000f | 0x0012 | 0x0015 | 0x001a => Some("DES"),
        0x000a | 0x000d | 0x0010 | 0x0013 | 0x0016 | 0x001b | 0x008b | 0x008f | 0x0093 | 0xc003
        | 0xc008 | 0xc00d | 0xc012 | 0xc017 => Some("3DES"),
        _ => None,
    }
}

/// GREASE values (RFC 8701): placeholders clients sprinkle into lists, to be ignored.
pub const fn is_grease(v: u16) -> bool {
    v & 0x0f0f == 0x0a0a && v >> 8 == v & 0xff
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_round_trip_through_the_wire() {
        for v in 0x0300..=0x0304 {
            assert_eq!(TlsVersion::from_wire(v).unwrap().wire(), v);
        }
        assert_eq!(TlsVersion::from_wire(0x7f1c), None);
        assert!(TlsVersion::Tls11.is_obsolete() && !TlsVersion::Tls12.is_obsolete());
        assert_eq!(version_name(0x0301), "TLS 1.0");
        assert_eq!(version_name(0xfefd), "0xfefd");
        assert_eq!(weak_cipher(0x0005), Some("RC4"));
        assert_eq!(weak_cipher(0x1301), None);
        assert!(is_grease(0x2a2a) && !is_grease(0x0303));
    }
}
