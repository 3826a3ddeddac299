//! CVSS scoring with the clinical-impact adjustment.
//!
//! A CVSS base score describes a vulnerability in the abstract. MITRE's *Rubric for Applying
//! CVSS to Medical Devices* (an FDA-qualified Medical Device Development Tool) asks the scorer
//! to read the impact metrics in terms of what a compromise does to patients. heir encodes that
//! reading with the environmental metrics CVSS provides for it, from the device's clinical
//! criticality (docs/RAMA.md, table K):
//!
//! - the security requirements CR/IR/AR (v3.x and v4.0) rise with criticality, because a
//!   falsified dose or a silenced alarm matters more than a leaked record;
//! - on life-sustaining devices, CVSS v4.0's *Safety* value is set for the subsequent-system
//!   integrity and availability impacts (MSI:S, MSA:S) whenever the vulnerability touches the
//!   device's own integrity or availability: the patient is the subsequent system.
//!
//! The adjusted score is never below the base score: the adjustment adds clinical context, it
//! never argues a vulnerability away.

use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::registry::Criticality;

/// Which CVSS version a vector is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Version {
    #[serde(rename = "2.0")]
    V2,
    #[serde(rename = "3.0")]
    V30,
    #[serde(rename = "3.1")]
    V31,
    #[serde(rename = "4.0")]
    V40,
}

/// The vector was not a CVSS v2/v3.x/v4.0 vector the `cvss` crate accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{vector}` is not a valid CVSS vector: {reason}")]
pub struct InvalidVector {
    pub vector: String,
    pub reason: String,
}

/// A validated CVSS vector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Vector {
    text: String,
    version: Version,
    base: f64,
    /// Adjusted score per criticality (indexed by `Criticality as usize`), computed once: the
    /// engine asks for it on every rescoring.
    clinical: [f64; 4],
}

impl TryFrom<String> for Vector {
    type Error = InvalidVector;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Vector> for String {
    fn from(v: Vector) -> String {
        v.text
    }
}

impl FromStr for Vector {
    type Err = InvalidVector;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let text = s.trim().to_owned();
        let invalid = |reason: String| InvalidVector {
            vector: text.clone(),
            reason,
        };
        let version = if text.starts_with("CVSS:4.0/") {
            Version::V40
        } else if text.starts_with("CVSS:3.1/") {
            Version::V31
        } else if text.starts_with("CVSS:3.0/") {
            Version::V30
        } else if text.starts_with("AV:") {
            Version::V2
        } else {
            return Err(invalid(
                "expected a `CVSS:4.0/`, `CVSS:3.1/`, `CVSS:3.0/` or v2 `AV:` vector".into(),
            ));
        };
        let base = score_text(&text, version).map_err(invalid)?;
        let mut v = Self {
            text,
            version,
            base,
            clinical: [base; 4],
        };
        for c in [
            Criticality::Low,
            Criticality::Moderate,
            Criticality::High,
            Criticality::LifeSustaining,
        ] {
            v.clinical[c as usize] = v.compute_clinical(c);
        }
        Ok(v)
    }
}

fn score_text(text: &str, version: Version) -> Result<f64, String> {
    match version {
        Version::V2 => text
            .parse::<cvss::v2::Vector>()
            .map(|v| v.score().value())
            .map_err(|e| e.to_string()),
        Version::V30 | Version::V31 => text
            .parse::<cvss::v3::Vector>()
            .map(|v| v.base_score().value())
            .map_err(|e| e.to_string()),
        Version::V40 => text
            .parse::<cvss::v4::Vector>()
            .map(|v| v.score().value())
            .map_err(|e| e.to_string()),
    }
}

fn environmental_text(text: &str, version: Version) -> Option<f64> {
    match version {
        Version::V2 => None,
        Version::V30 | Version::V31 => text
            .parse::<cvss::v3::Vector>()
            .ok()
            .map(|v| v.environmental_score().value()),
        Version::V40 => text
            .parse::<cvss::v4::Vector>()
            .ok()
            .map(|v| v.score().value()),
    }
}

impl Vector {
    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn version(&self) -> Version {
        self.version
    }

    /// The CVSS base score (v4.0: CVSS-B, or CVSS-BTE if the vector carries those groups).
    pub fn base_score(&self) -> f64 {
        self.base
    }

    fn metric(&self, key: &str) -> Option<&str> {
        self.text
            .split('/')
            .find_map(|part| part.strip_prefix(key)?.strip_prefix(':'))
    }

    /// The vector with heir's clinical environmental metrics for a device of `criticality`.
    pub fn clinical_vector(&self, criticality: Criticality) -> Option<String> {
        let (cr, ir, ar) = match criticality {
            Criticality::Low => return None,
            Criticality::Moderate => ("M", "M", "H"),
            Criticality::High | Criticality::LifeSustaining => ("M", "H", "H"),
        };
        if self.version == Version::V2 {
            return None;
        }
        const ENV: [&str; 5] = ["CR", "IR", "AR", "MSI", "MSA"];
        let mut parts: Vec<String> = self
            .text
            .split('/')
            .filter(|p| !ENV.iter().any(|k| p.split(':').next() == Some(*k)))
            .map(str::to_owned)
            .collect();
        parts.push(format!("CR:{cr}"));
        parts.push(format!("IR:{ir}"));
        parts.push(format!("AR:{ar}"));
        if self.version == Version::V40 && criticality == Criticality::LifeSustaining {
            if self.metric("VI").is_some_and(|v| v != "N") {
                parts.push("MSI:S".into());
            }
            if self.metric("VA").is_some_and(|v| v != "N") {
                parts.push("MSA:S".into());
            }
        }
        Some(parts.join("/"))
    }

    /// The score with the clinical-impact adjustment for a device of `criticality`; never below
    /// the base score.
    pub fn clinical_score(&self, criticality: Criticality) -> f64 {
        self.clinical[criticality as usize]
    }

    fn compute_clinical(&self, criticality: Criticality) -> f64 {
        let adjusted = self
            .clinical_vector(criticality)
            .and_then(|v| environmental_text(&v, self.version));
        adjusted.map_or(self.base, |a| a.max(self.base))
    }
}

impl std::fmt::Display for Vector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_scores_match_the_specification_examples() {
        // CVE-2014-0160-like vector from the CVSS v3.1 examples: 7.5.
        let v: Vector = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N"
            .parse()
            .unwrap();
        assert_eq!(v.base_score(), 7.5);
        let v: Vector = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"
            .parse()
            .unwrap();
        assert_eq!(v.base_score(), 9.8);
        let v: Vector = "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"
            .parse()
            .unwrap();
        assert_eq!(v.base_score(), 9.3);
        assert!("CVSS:3.1/AV:X".parse::<Vector>().is_err());
        assert!("nonsense".parse::<Vector>().is_err());
    }

    #[test]
    fn clinical_adjustment_raises_integrity_and_availability_for_critical_devices() {
        // Adjacent-network DoS of moderate base severity.
        let v: Vector = "CVSS:3.1/AV:A/AC:L/PR:N/UI:N/S:U/C:N/I:L/A:H"
            .parse()
            .unwrap();
        let base = v.base_score();
        assert_eq!(base, 7.1);
        assert_eq!(v.clinical_score(Criticality::Low), base);
        let life = v.clinical_score(Criticality::LifeSustaining);
        assert!(life > base, "{life} > {base}");
        assert!(v.clinical_score(Criticality::Moderate) >= base);

        let v4: Vector = "CVSS:4.0/AV:A/AC:L/AT:N/PR:N/UI:N/VC:N/VI:L/VA:H/SC:N/SI:N/SA:N"
            .parse()
            .unwrap();
        let vec = v4.clinical_vector(Criticality::LifeSustaining).unwrap();
        assert!(vec.ends_with("CR:M/IR:H/AR:H/MSI:S/MSA:S"), "{vec}");
        assert!(v4.clinical_score(Criticality::LifeSustaining) > v4.base_score());
        assert!(v4.clinical_score(Criticality::High) >= v4.base_score());
    }
}
