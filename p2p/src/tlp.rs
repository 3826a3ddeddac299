//! Traffic Light Protocol 2.0: who may see an item. The mesh enforces it on the way out
//! (RED never leaves, AMBER only sealed to a sharing group) and on the way in (a sender that
//! broke it is rejected).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tlp {
    /// No limit on disclosure.
    Clear,
    /// The community: here, every member of the consortium.
    Green,
    /// The recipients' organisations and their clients: here, one sharing group.
    Amber,
    /// The recipients' organisations only: here, one sharing group.
    AmberStrict,
    /// The recipients only: never leaves the node.
    Red,
}

/// Where an item may travel on the mesh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    Consortium,
    SharingGroup,
    LocalOnly,
}

impl Tlp {
    pub const ALL: [Tlp; 5] = [
        Tlp::Clear,
        Tlp::Green,
        Tlp::Amber,
        Tlp::AmberStrict,
        Tlp::Red,
    ];

    pub const fn reach(self) -> Reach {
        match self {
            Tlp::Clear | Tlp::Green => Reach::Consortium,
            Tlp::Amber | Tlp::AmberStrict => Reach::SharingGroup,
            Tlp::Red => Reach::LocalOnly,
        }
    }

    /// The label as TLP 2.0 spells it.
    pub const fn label(self) -> &'static str {
        match self {
            Tlp::Clear => "TLP:CLEAR",
            Tlp::Green => "TLP:GREEN",
            Tlp::Amber => "TLP:AMBER",
            Tlp::AmberStrict => "TLP:AMBER+STRICT",
            Tlp::Red => "TLP:RED",
        }
    }

    /// The STIX 2.1 marking-definition object id that OASIS published for this level.
    pub const fn stix_marking_id(self) -> &'static str {
        match self {
            Tlp::Clear => "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
            Tlp::Green => "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
            Tlp::Amber => "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
            Tlp::AmberStrict => "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
            Tlp::Red => "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
        }
    }

    pub fn from_stix_marking_id(id: &str) -> Option<Tlp> {
        Tlp::ALL.into_iter().find(|t| t.stix_marking_id() == id)
    }

    /// The MISP taxonomy tag, e.g. `tlp:amber+strict`.
    pub fn misp_tag(self) -> String {
        self.label().to_ascii_lowercase()
    }
}

impl fmt::Display for Tlp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

#[derive(Debug, thiserror::Error)]
#[error(
    "unknown TLP level `{0}` (expected TLP:CLEAR, TLP:GREEN, TLP:AMBER, TLP:AMBER+STRICT or TLP:RED)"
)]
pub struct UnknownTlp(pub String);

impl FromStr for Tlp {
    type Err = UnknownTlp;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let up = s.trim().to_ascii_uppercase();
        let up = up.strip_prefix("TLP:").unwrap_or(&up);
        match up {
            "CLEAR" | "WHITE" => Ok(Tlp::Clear),
            "GREEN" => Ok(Tlp::Green),
            "AMBER" => Ok(Tlp::Amber),
            "AMBER+STRICT" => Ok(Tlp::AmberStrict),
            "RED" => Ok(Tlp::Red),
            _ => Err(UnknownTlp(s.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_markings_round_trip() {
        for t in Tlp::ALL {
            assert_eq!(t.label().parse::<Tlp>().unwrap(), t);
            assert_eq!(Tlp::from_stix_marking_id(t.stix_marking_id()), Some(t));
        }
        assert_eq!("tlp:white".parse::<Tlp>().unwrap(), Tlp::Clear);
        assert!("TLP:PURPLE".parse::<Tlp>().is_err());
        assert_eq!(Tlp::Red.reach(), Reach::LocalOnly);
        assert_eq!(Tlp::AmberStrict.reach(), Reach::SharingGroup);
        assert_eq!(Tlp::Green.reach(), Reach::Consortium);
    }
}
