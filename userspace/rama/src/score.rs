//! The RAMA formula (docs/RAMA.md is its specification; the constants here are its tables).
//!
//! Each of the five factors is a number in [0, 1]:
//!
//! - exposure E = 1 − Π(1 − wᵢ) over exposure findings,
//! - vulnerability V = 1 − Π(1 − vⱼ) over known vulnerabilities,
//! - threat T = 1 − e^(−L) for the decayed alert load L,
//! - resilience R = Σ capability weights,
//! - criticality multiplier c from the device's clinical criticality,
//!
//! and the score is `100 · c · (1 − 0.3·R) · (1 − (1 − 0.45·E)(1 − 0.55·V)(1 − 0.9·T))`,
//! rounded to one decimal. Products of (1 − x) make every factor monotone: a new finding,
//! vulnerability or alert can only raise the score; removing one can only lower it.

use serde::{Deserialize, Serialize};

use crate::fact::{Protocol, Service, TlsVersion, Transport};
use crate::import::mds2::Capability;
use crate::registry::Criticality;
use crate::vuln::Remediation;

/// How much each factor can move the likelihood of harm.
pub const EXPOSURE_WEIGHT: f64 = 0.45;
pub const VULNERABILITY_WEIGHT: f64 = 0.55;
pub const THREAT_WEIGHT: f64 = 0.9;
/// Full resilience removes at most this share of the risk.
pub const RESILIENCE_CEILING: f64 = 0.3;

/// Table C: criticality multiplier.
pub const fn criticality_multiplier(c: Criticality) -> f64 {
    match c {
        Criticality::Low => 0.7,
        Criticality::Moderate => 0.8,
        Criticality::High => 0.9,
        Criticality::LifeSustaining => 1.0,
    }
}

/// Table R: resilience weight of each capability (they sum to 1).
pub const fn capability_weight(c: Capability) -> f64 {
    match c {
        Capability::Segmentation => 0.25,
        Capability::EncryptionInTransit => 0.20,
        Capability::Authentication => 0.20,
        Capability::Patching => 0.15,
        Capability::EncryptionAtRest => 0.10,
        Capability::MalwareProtection => 0.05,
        Capability::AuditLogging => 0.05,
    }
}

/// Table E: weight of a cleartext service by protocol.
const fn cleartext_weight(p: Protocol) -> f64 {
    match p {
        Protocol::Telnet => 0.45,
        Protocol::Ftp | Protocol::Tftp | Protocol::Modbus | Protocol::Vnc => 0.35,
        Protocol::Dicom | Protocol::Hl7Mllp | Protocol::Mqtt | Protocol::Snmp => 0.25,
        _ => 0.20,
    }
}

/// Table E: weight of a risky (remote administration, file sharing) service.
pub const RISKY_WEIGHT: f64 = 0.30;
/// Table E: any other listening service (attack surface, reachability).
pub const SERVICE_WEIGHT: f64 = 0.05;
/// Table E: a default password accepted.
pub const DEFAULT_CREDENTIALS_WEIGHT: f64 = 0.60;

/// Table E: an obsolete TLS version negotiated.
pub const fn tls_weight(v: TlsVersion) -> f64 {
    match v {
        TlsVersion::Ssl3 => 0.40,
        TlsVersion::Tls10 => 0.30,
        TlsVersion::Tls11 => 0.20,
        TlsVersion::Tls12 | TlsVersion::Tls13 => 0.0,
    }
}

/// Table V: CVSS scores assumed when a vulnerability publishes no vector.
pub const UNSCORED_CVSS: f64 = 5.0;
/// Table V: weight of a vulnerability nobody is known to exploit, relative to a KEV-listed one.
pub const UNEXPLOITED_FACTOR: f64 = 0.5;

/// One exposure finding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Exposure {
    Cleartext {
        port: u16,
        transport: Transport,
        protocol: Protocol,
    },
    Risky {
        port: u16,
        transport: Transport,
        protocol: Protocol,
    },
    Service {
        port: u16,
        transport: Transport,
        protocol: Protocol,
    },
    DefaultCredentials {
        port: u16,
        protocol: Protocol,
    },
    ObsoleteTls {
        port: u16,
        version: TlsVersion,
    },
}

impl Exposure {
    /// The finding a service contributes: whichever of its cleartext, risky or plain-surface
    /// weights is largest.
    pub fn of_service(s: &Service) -> Exposure {
        let clear = if s.cleartext {
            cleartext_weight(s.protocol)
        } else {
            0.0
        };
        let risky = if s.risky { RISKY_WEIGHT } else { 0.0 };
        let (port, transport, protocol) = (s.port, s.transport, s.protocol);
        if clear > 0.0 && clear >= risky {
            Exposure::Cleartext {
                port,
                transport,
                protocol,
            }
        } else if risky > 0.0 {
            Exposure::Risky {
                port,
                transport,
                protocol,
            }
        } else {
            Exposure::Service {
                port,
                transport,
                protocol,
            }
        }
    }

    pub fn weight(&self) -> f64 {
        match *self {
            Exposure::Cleartext { protocol, .. } => cleartext_weight(protocol),
            Exposure::Risky { .. } => RISKY_WEIGHT,
            Exposure::Service { .. } => SERVICE_WEIGHT,
            Exposure::DefaultCredentials { .. } => DEFAULT_CREDENTIALS_WEIGHT,
            Exposure::ObsoleteTls { version, .. } => tls_weight(version),
        }
    }

    /// What an operator does to remove the finding.
    pub fn remedy(&self) -> String {
        match self {
            Exposure::Cleartext {
                port,
                transport,
                protocol,
            } => {
                format!("disable cleartext {protocol} on {port}/{transport} or move it behind TLS")
            }
            Exposure::Risky {
                port,
                transport,
                protocol,
            } => {
                format!(
                    "disable {protocol} on {port}/{transport} or restrict it to the management network"
                )
            }
            Exposure::Service {
                port,
                transport,
                protocol,
            } => {
                format!("close {protocol} on {port}/{transport} if the device does not need it")
            }
            Exposure::DefaultCredentials { port, protocol } => {
                format!("change the vendor default password of {protocol} on port {port}")
            }
            Exposure::ObsoleteTls { port, version } => {
                format!("disable {version} on port {port} (require TLS 1.2 or later)")
            }
        }
    }
}

/// A vulnerability as the formula sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VulnInput {
    pub id: String,
    /// CVSS after the clinical adjustment (0–10).
    pub cvss: f64,
    pub exploited: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed_in: Option<String>,
    /// The advisory that published it for this device (e.g. `ICSMA-20-049-01`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advisory: Option<String>,
    /// The publisher's remediation, proposed as the action for this vulnerability.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remediation: Option<Remediation>,
}

impl VulnInput {
    pub fn weight(&self) -> f64 {
        let s = (self.cvss / 10.0).clamp(0.0, 1.0);
        if self.exploited {
            s
        } else {
            s * UNEXPLOITED_FACTOR
        }
    }
}

/// Everything the formula needs about one device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Inputs {
    pub criticality: Criticality,
    pub exposures: Vec<Exposure>,
    pub vulnerabilities: Vec<VulnInput>,
    /// Decayed alert load L ≥ 0 (see [`crate::threat`]).
    pub threat_load: f64,
    pub capabilities: Vec<Capability>,
}

/// Score bands (table B).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Band {
    Low,
    Medium,
    High,
    Critical,
}

impl Band {
    pub fn of(score: f64) -> Band {
        if score >= 75.0 {
            Band::Critical
        } else if score >= 50.0 {
            Band::High
        } else if score >= 25.0 {
            Band::Medium
        } else {
            Band::Low
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Band::Low => "low",
            Band::Medium => "medium",
            Band::High => "high",
            Band::Critical => "critical",
        }
    }
}

impl std::fmt::Display for Band {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The five factors, each in [0, 1] (criticality as its multiplier).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Factors {
    pub exposure: f64,
    pub vulnerability: f64,
    pub threat: f64,
    pub resilience: f64,
    pub criticality: f64,
}

/// A device's RAMA score.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Score {
    /// 0–100, one decimal.
    pub value: f64,
    pub band: Band,
    pub factors: Factors,
}

fn any_of(ws: impl Iterator<Item = f64>) -> f64 {
    1.0 - ws.fold(1.0, |acc, w| acc * (1.0 - w.clamp(0.0, 1.0)))
}

/// Rounds to one decimal, the precision RAMA is published with.
pub fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

impl Factors {
    pub fn of(i: &Inputs) -> Factors {
        Self::from_parts(
            i.criticality,
            &i.exposures,
            &i.vulnerabilities,
            i.threat_load,
            &i.capabilities,
        )
    }

    /// The factors from borrowed inputs (the engine's hot path: no allocation).
    pub fn from_parts(
        criticality: Criticality,
        exposures: &[Exposure],
        vulnerabilities: &[VulnInput],
        threat_load: f64,
        capabilities: &[Capability],
    ) -> Factors {
        // Each capability counts once however often it is listed.
        let mut seen = 0u32;
        let mut resilience = 0.0;
        for c in capabilities {
            let bit = 1u32 << (*c as u32);
            if seen & bit == 0 {
                seen |= bit;
                resilience += capability_weight(*c);
            }
        }
        Factors {
            exposure: any_of(exposures.iter().map(Exposure::weight)),
            vulnerability: any_of(vulnerabilities.iter().map(VulnInput::weight)),
            threat: 1.0 - (-threat_load.max(0.0)).exp(),
            resilience: f64::min(resilience, 1.0),
            criticality: criticality_multiplier(criticality),
        }
    }

    /// The unrounded score.
    pub fn raw(&self) -> f64 {
        let likelihood = 1.0
            - (1.0 - EXPOSURE_WEIGHT * self.exposure)
                * (1.0 - VULNERABILITY_WEIGHT * self.vulnerability)
                * (1.0 - THREAT_WEIGHT * self.threat);
        (100.0 * self.criticality * (1.0 - RESILIENCE_CEILING * self.resilience) * likelihood)
            .clamp(0.0, 100.0)
    }
}

impl Score {
    pub fn of(i: &Inputs) -> Score {
        Self::from_factors(Factors::of(i))
    }

    pub fn from_factors(factors: Factors) -> Score {
        let value = round1(factors.raw());
        Score {
            value,
            band: Band::of(value),
            factors,
        }
    }
}

/// How one factor moves the score: the score with the factor at its most favourable value,
/// and the difference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contribution {
    pub factor: String,
    pub value: f64,
    /// Points the factor adds to the score (for resilience: points it removes).
    pub points: f64,
}

/// Something an operator can do, and what the score would become.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Action {
    pub action: String,
    pub score_after: f64,
    pub lowers_by: f64,
}

/// A score taken apart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    pub score: Score,
    pub contributions: Vec<Contribution>,
    /// Each finding with its weight (exposure, vulnerability) in the factor.
    pub exposures: Vec<(Exposure, f64)>,
    pub vulnerabilities: Vec<(VulnInput, f64)>,
    pub capabilities: Vec<Capability>,
    pub missing_capabilities: Vec<Capability>,
    /// Best first.
    pub actions: Vec<Action>,
}

impl Explanation {
    pub fn of(i: &Inputs) -> Explanation {
        let score = Score::of(i);
        let f = score.factors;
        let with = |g: &dyn Fn(&mut Factors)| {
            let mut x = f;
            g(&mut x);
            round1(x.raw())
        };
        let contributions = vec![
            Contribution {
                factor: "exposure".into(),
                value: f.exposure,
                points: round1(score.value - with(&|x| x.exposure = 0.0)),
            },
            Contribution {
                factor: "vulnerability".into(),
                value: f.vulnerability,
                points: round1(score.value - with(&|x| x.vulnerability = 0.0)),
            },
            Contribution {
                factor: "threat".into(),
                value: f.threat,
                points: round1(score.value - with(&|x| x.threat = 0.0)),
            },
            Contribution {
                factor: "resilience".into(),
                value: f.resilience,
                points: round1(with(&|x| x.resilience = 0.0) - score.value),
            },
            Contribution {
                factor: "criticality".into(),
                value: f.criticality,
                points: round1(score.value - with(&|x| x.criticality = 0.7)),
            },
        ];
        let mut actions = Vec::new();
        let mut consider = |action: String, after: Inputs| {
            let s = Score::of(&after).value;
            if s < score.value {
                actions.push(Action {
                    action,
                    score_after: s,
                    lowers_by: round1(score.value - s),
                });
            }
        };
        for (k, e) in i.exposures.iter().enumerate() {
            let mut after = i.clone();
            after.exposures.remove(k);
            consider(e.remedy(), after);
        }
        for (k, v) in i.vulnerabilities.iter().enumerate() {
            let mut after = i.clone();
            after.vulnerabilities.remove(k);
            let mut what = match &v.fixed_in {
                Some(fix) => format!("patch {} (update to {fix} or later)", v.id),
                None => format!("patch or mitigate {}", v.id),
            };
            if let Some(r) = &v.remediation {
                let from = v.advisory.as_deref().unwrap_or("advisory");
                what = format!("{what}; {from} {}: {}", r.category, r.details);
                if let Some(url) = &r.url {
                    what = format!("{what} ({url})");
                }
            }
            consider(what, after);
        }
        let missing: Vec<Capability> = Capability::ALL
            .into_iter()
            .filter(|c| !i.capabilities.contains(c))
            .collect();
        for c in &missing {
            let mut after = i.clone();
            after.capabilities.push(*c);
            let what = match c {
                Capability::Segmentation => {
                    "move the device onto an isolated clinical segment".to_owned()
                }
                other => format!("enable {} (MDS2)", other.as_str().replace('_', " ")),
            };
            consider(what, after);
        }
        actions.sort_by(|a, b| {
            b.lowers_by
                .total_cmp(&a.lowers_by)
                .then_with(|| a.action.cmp(&b.action))
        });
        Explanation {
            score,
            contributions,
            exposures: i
                .exposures
                .iter()
                .map(|e| (e.clone(), e.weight()))
                .collect(),
            vulnerabilities: i
                .vulnerabilities
                .iter()
                .map(|v| (v.clone(), v.weight()))
                .collect(),
            capabilities: i.capabilities.clone(),
            missing_capabilities: missing,
            actions,
        }
    }
}
