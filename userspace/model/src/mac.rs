//! MAC addresses, the stable half of a device's identity on the wire (IPs move with DHCP).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A 48-bit IEEE MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// The 24-bit Organizationally Unique Identifier: who made the network interface.
    pub const fn oui(self) -> [u8; 3] {
        [self.0[0], self.0[1], self.0[2]]
    }

    /// Locally administered addresses (randomised or set by software) carry no vendor.
    pub const fn is_locally_administered(self) -> bool {
        self.0[0] & 0x02 != 0
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

/// The text was not six hex octets separated by `:` or `-`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a MAC address (expected six hex octets such as 00:09:5c:12:34:56)")]
pub struct InvalidMac(pub String);

impl FromStr for MacAddr {
    type Err = InvalidMac;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 6];
        let mut parts = s.split([':', '-']);
        for byte in &mut out {
            let p = parts.next().ok_or_else(|| InvalidMac(s.to_owned()))?;
            if p.len() != 2 {
                return Err(InvalidMac(s.to_owned()));
            }
            *byte = u8::from_str_radix(p, 16).map_err(|_| InvalidMac(s.to_owned()))?;
        }
        if parts.next().is_some() {
            return Err(InvalidMac(s.to_owned()));
        }
        Ok(Self(out))
    }
}

impl Serialize for MacAddr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MacAddr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_both_separators_and_rejects_junk() {
        let m: MacAddr = "00-09-5C-12-34-56".parse().unwrap();
        assert_eq!(m.to_string(), "00:09:5c:12:34:56");
        assert_eq!(m.oui(), [0x00, 0x09, 0x5c]);
        for bad in [
            "",
            "00:09:5c:12:34",
            "00:09:5c:12:34:56:78",
            "0:09:5c:12:34:56",
            "zz:09:5c:12:34:56",
        ] {
            assert!(bad.parse::<MacAddr>().is_err(), "{bad}");
        }
        assert!(
            "02:00:00:00:00:01"
                .parse::<MacAddr>()
                .unwrap()
                .is_locally_administered()
        );
    }

    proptest! {
        #[test]
        fn display_parses_back(b in any::<[u8; 6]>()) {
            let m = MacAddr(b);
            prop_assert_eq!(m.to_string().parse::<MacAddr>().unwrap(), m);
        }

        #[test]
        fn parser_never_panics(s in "\\PC{0,24}") {
            let _ = s.parse::<MacAddr>();
        }
    }
}
