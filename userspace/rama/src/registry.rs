//! The operator's device registry, `devices.toml`: what passive sensing cannot know (names,
//! clinical role, location, which devices automation must never touch).
//!
//! ```toml
//! [device.pump-icu-3]
//! name = "Infusion pump, ICU bed 3"
//! class = "infusion_pump"
//! criticality = "life_sustaining"   # optional: defaults from the class
//! manufacturer = "Baxter"           # optional: overrides the MAC OUI
//! model = "Sigma Spectrum"
//! firmware = "8.00.01"
//! location = "ICU, bed 3"
//! protected = true
//! ip = "10.20.0.13"
//! mac = "58:46:e1:20:00:13"
//! segmented = true                  # on an isolated clinical VLAN
//! mitigated = ["CVE-2020-12040"]    # vulnerabilities fixed or compensated on this unit
//! ```

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use heir_model::mac::MacAddr;

/// What kind of device, in the terms a biomedical engineer uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    InfusionPump,
    PatientMonitor,
    Ventilator,
    ImagingModality,
    Pacs,
    LabAnalyser,
    Workstation,
    Gateway,
    Other,
}

impl Class {
    pub const fn as_str(self) -> &'static str {
        match self {
            Class::InfusionPump => "infusion_pump",
            Class::PatientMonitor => "patient_monitor",
            Class::Ventilator => "ventilator",
            Class::ImagingModality => "imaging_modality",
            Class::Pacs => "pacs",
            Class::LabAnalyser => "lab_analyser",
            Class::Workstation => "workstation",
            Class::Gateway => "gateway",
            Class::Other => "other",
        }
    }

    /// The criticality assumed when the operator does not state one (docs/RAMA.md, table C).
    pub const fn default_criticality(self) -> Criticality {
        match self {
            Class::InfusionPump | Class::Ventilator => Criticality::LifeSustaining,
            Class::PatientMonitor | Class::ImagingModality => Criticality::High,
            Class::Pacs | Class::LabAnalyser | Class::Gateway => Criticality::Moderate,
            Class::Workstation | Class::Other => Criticality::Low,
        }
    }
}

impl std::fmt::Display for Class {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Clinical impact if the device is compromised or unavailable. Ordered least to most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Criticality {
    /// No direct effect on patient care.
    Low,
    /// Care is delayed or degraded (results, images unavailable).
    Moderate,
    /// Diagnosis or monitoring of patients depends on it.
    High,
    /// Therapy or life support: a compromise can harm a patient directly.
    LifeSustaining,
}

impl Criticality {
    pub const fn as_str(self) -> &'static str {
        match self {
            Criticality::Low => "low",
            Criticality::Moderate => "moderate",
            Criticality::High => "high",
            Criticality::LifeSustaining => "life_sustaining",
        }
    }
}

impl std::fmt::Display for Criticality {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One registered device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub name: String,
    pub class: Class,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub criticality: Option<Criticality>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manufacturer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firmware: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Automated response never acts on a protected device.
    #[serde(default)]
    pub protected: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<MacAddr>,
    /// On a segment that only the systems it needs can reach.
    #[serde(default)]
    pub segmented: bool,
    /// Vulnerability ids (CVE, GHSA, ...) patched or compensated on this unit.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mitigated: Vec<String>,
}

impl Entry {
    pub fn criticality(&self) -> Criticality {
        self.criticality
            .unwrap_or_else(|| self.class.default_criticality())
    }
}

/// The whole registry, keyed by the operator's device id.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registry {
    #[serde(default, rename = "device")]
    pub devices: BTreeMap<String, Entry>,
}

/// Why `devices.toml` was refused. Nothing of a refused file is used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading {file}")]
    Io {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}, line {line}, key `{key}`: {message}")]
    Invalid {
        file: PathBuf,
        line: usize,
        key: String,
        message: String,
    },
}

impl Registry {
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            file: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses registry text; `file` only names the source in errors.
    pub fn parse(text: &str, file: &Path) -> Result<Self, Error> {
        let invalid =
            |span: Option<std::ops::Range<usize>>, key: String, message: String| Error::Invalid {
                file: file.to_path_buf(),
                line: span.map_or(0, |s| line_of(text, s.start)),
                key,
                message,
            };
        let de = toml::Deserializer::parse(text)
            .map_err(|e| invalid(e.span(), String::new(), e.message().to_owned()))?;
        let reg: Registry = serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            let inner = e.into_inner();
            invalid(inner.span(), key, inner.message().to_owned())
        })?;
        reg.validate(text, file)?;
        Ok(reg)
    }

    fn validate(&self, text: &str, file: &Path) -> Result<(), Error> {
        let mut ips: HashMap<IpAddr, &str> = HashMap::new();
        let mut macs: HashMap<MacAddr, &str> = HashMap::new();
        for (id, e) in &self.devices {
            let err = |field: &str, message: String| Error::Invalid {
                file: file.to_path_buf(),
                line: text
                    .find(&format!("[device.{id}]"))
                    .map_or(0, |at| line_of(text, at)),
                key: format!("device.{id}.{field}"),
                message,
            };
            if e.name.trim().is_empty() {
                return Err(err("name", "must not be empty".into()));
            }
            if e.ip.is_none() && e.mac.is_none() {
                return Err(err(
                    "ip",
                    "a device needs `ip` or `mac` so sensors can find it".into(),
                ));
            }
            if let Some(ip) = e.ip
                && let Some(other) = ips.insert(ip, id)
            {
                return Err(err(
                    "ip",
                    format!("{ip} is already the address of `{other}`"),
                ));
            }
            if let Some(mac) = e.mac
                && let Some(other) = macs.insert(mac, id)
            {
                return Err(err(
                    "mac",
                    format!("{mac} is already the address of `{other}`"),
                ));
            }
        }
        Ok(())
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())]
        .bytes()
        .filter(|&b| b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::arbitrary::Arbitrary;

    const GOOD: &str = r#"
[device.pump-icu-3]
name = "Infusion pump, ICU bed 3"
class = "infusion_pump"
model = "Sigma Spectrum"
firmware = "8.00.01"
location = "ICU, bed 3"
protected = true
ip = "10.20.0.13"
mac = "58:46:e1:20:00:13"

[device.ws-admin]
name = "Admissions workstation"
class = "workstation"
criticality = "moderate"
ip = "10.30.0.5"
"#;

    #[test]
    fn parses_and_defaults_criticality_from_class() {
        let r = Registry::parse(GOOD, Path::new("devices.toml")).unwrap();
        let pump = &r.devices["pump-icu-3"];
        assert_eq!(pump.class, Class::InfusionPump);
        assert_eq!(pump.criticality(), Criticality::LifeSustaining);
        assert!(pump.protected);
        assert_eq!(r.devices["ws-admin"].criticality(), Criticality::Moderate);
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let text = GOOD.replace("protected = true", "protectd = true");
        let e = Registry::parse(&text, Path::new("/etc/heir/devices.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("/etc/heir/devices.toml"), "{e}");
        assert!(e.contains("protectd"), "{e}");
        assert!(e.contains("device.pump-icu-3"), "{e}");
        assert!(e.contains("line 8"), "{e}");
    }

    #[test]
    fn bad_values_and_duplicates_are_refused_with_their_key() {
        let text = GOOD.replace("\"infusion_pump\"", "\"toaster\"");
        let e = Registry::parse(&text, Path::new("d.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("device.pump-icu-3.class") && e.contains("toaster"),
            "{e}"
        );

        let text = GOOD.replace("10.30.0.5", "10.20.0.13");
        let e = Registry::parse(&text, Path::new("d.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("device.ws-admin.ip") && e.contains("pump-icu-3"),
            "{e}"
        );

        let text = GOOD.replace("\"58:46:e1:20:00:13\"", "\"58:46:e1\"");
        let e = Registry::parse(&text, Path::new("d.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("device.pump-icu-3.mac"), "{e}");
    }

    proptest::proptest! {
        #[test]
        fn parser_never_panics_and_errors_name_the_file(
            edits in proptest::collection::vec((proptest::sample::Index::arbitrary(), 0x20u8..0x7f), 1..6),
        ) {
            let mut bytes = GOOD.as_bytes().to_vec();
            for (at, b) in edits {
                let i = at.index(bytes.len());
                bytes[i] = b;
            }
            let text = String::from_utf8(bytes).unwrap();
            if let Err(e) = Registry::parse(&text, Path::new("fuzzed.toml")) {
                proptest::prop_assert!(e.to_string().starts_with("fuzzed.toml"), "{}", e);
            }
        }

        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,300}") {
            let _ = Registry::parse(&text, Path::new("any.toml"));
        }
    }
}
