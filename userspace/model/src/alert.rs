//! Alerts: what a detector concluded, in the one JSON shape users' scripts rely on.

use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::Timestamp;

/// What kind of threat an alert reports. The slugs are a public contract (alert JSON, rules,
/// mesh indicators), so they never change spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    PortScan,
    BruteForce,
    DefaultCredentials,
    CleartextProtocol,
    WeakTls,
    DosFlood,
    C2Beacon,
    Exfiltration,
    Ransomware,
    ReverseShell,
    CredentialAccess,
    PrivilegeEscalation,
    KernelModule,
    ProcessInjection,
    Persistence,
    /// Hiding or blinding: logs and history erased, timestamps forged, auditing, syslog, the
    /// firewall or heir itself stopped, libraries preloaded (ATT&CK TA0005).
    DefenseEvasion,
    Cryptomining,
    Anomaly,
    /// A mesh-shared indicator matched locally.
    KnownIndicator,
}

impl Category {
    pub const ALL: [Category; 19] = [
        Category::PortScan,
        Category::BruteForce,
        Category::DefaultCredentials,
        Category::CleartextProtocol,
        Category::WeakTls,
        Category::DosFlood,
        Category::C2Beacon,
        Category::Exfiltration,
        Category::Ransomware,
        Category::ReverseShell,
        Category::CredentialAccess,
        Category::PrivilegeEscalation,
        Category::KernelModule,
        Category::ProcessInjection,
        Category::Persistence,
        Category::DefenseEvasion,
        Category::Cryptomining,
        Category::Anomaly,
        Category::KnownIndicator,
    ];

    pub const fn slug(self) -> &'static str {
        match self {
            Category::PortScan => "port_scan",
            Category::BruteForce => "brute_force",
            Category::DefaultCredentials => "default_credentials",
            Category::CleartextProtocol => "cleartext_protocol",
            Category::WeakTls => "weak_tls",
            Category::DosFlood => "dos_flood",
            Category::C2Beacon => "c2_beacon",
            Category::Exfiltration => "exfiltration",
            Category::Ransomware => "ransomware",
            Category::ReverseShell => "reverse_shell",
            Category::CredentialAccess => "credential_access",
            Category::PrivilegeEscalation => "privilege_escalation",
            Category::KernelModule => "kernel_module",
            Category::ProcessInjection => "process_injection",
            Category::Persistence => "persistence",
            Category::DefenseEvasion => "defense_evasion",
            Category::Cryptomining => "cryptomining",
            Category::Anomaly => "anomaly",
            Category::KnownIndicator => "known_indicator",
        }
    }
}

impl std::fmt::Display for Category {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.slug())
    }
}

/// The slug was not one of the categories in the contract.
#[derive(Debug, thiserror::Error)]
#[error("unknown category `{0}` (expected one of: {list})", list = Category::ALL.iter().map(|c| c.slug()).collect::<Vec<_>>().join(", "))]
pub struct UnknownCategory(pub String);

impl FromStr for Category {
    type Err = UnknownCategory;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Category::ALL
            .into_iter()
            .find(|c| c.slug() == s)
            .ok_or_else(|| UnknownCategory(s.to_owned()))
    }
}

/// How bad it is if the alert is right. Ordered, so policies can say "high and above".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 5] = [
        Severity::Info,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The word was not one of the severities.
#[derive(Debug, thiserror::Error)]
#[error("unknown severity `{0}` (expected one of: info, low, medium, high, critical)")]
pub struct UnknownSeverity(pub String);

impl FromStr for Severity {
    type Err = UnknownSeverity;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Severity::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| UnknownSeverity(s.to_owned()))
    }
}

/// Where an alert sits in the taxonomies hospitals report against.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Taxonomy {
    /// OWASP IoT Top 10 (2018) item, "I1" to "I10".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owasp_iot: Option<String>,
    /// ENISA threat taxonomy entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enisa: Option<String>,
    /// MITRE ATT&CK technique id, e.g. "T1046".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attack: Option<String>,
}

/// One alert line. Field names and their absence-when-unknown are a public contract
/// (ARCHITECTURE.md): absent fields are omitted, never empty strings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub ts: Timestamp,
    pub id: String,
    pub rule: String,
    pub title: String,
    pub category: Category,
    pub severity: Severity,
    pub confidence: f32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src_ip: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dst_ip: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dst_port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comm: Option<String>,
    #[serde(flatten)]
    pub taxonomy: Taxonomy,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<String>,
    /// How many occurrences this alert aggregates (one alert per incident, not per packet).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub count: u64,
}

fn one() -> u64 {
    1
}

fn is_one(n: &u64) -> bool {
    *n == 1
}

impl Alert {
    /// An alert with the required fields; the optional ones start absent.
    pub fn new(
        ts: Timestamp,
        rule: impl Into<String>,
        title: impl Into<String>,
        category: Category,
        severity: Severity,
        confidence: f32,
    ) -> Self {
        let rule = rule.into();
        Self {
            id: String::new(),
            ts,
            title: title.into(),
            category,
            severity,
            confidence: confidence.clamp(0.0, 1.0),
            device: None,
            src_ip: None,
            dst_ip: None,
            dst_port: None,
            pid: None,
            comm: None,
            taxonomy: Taxonomy::default(),
            evidence: Vec::new(),
            count: 1,
            rule,
        }
        .with_fresh_id()
    }

    /// Ids are derived from the content so the same incident seen twice gets the same id,
    /// which is what de-duplication downstream (store, mesh) keys on.
    fn with_fresh_id(mut self) -> Self {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.rule.hash(&mut h);
        self.ts.hash(&mut h);
        self.title.hash(&mut h);
        self.id = format!("{:016x}", h.finish());
        self
    }

    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self).expect("alerts always serialise")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_slug_parses_back() {
        for c in Category::ALL {
            assert_eq!(c.slug().parse::<Category>().unwrap(), c);
            assert_eq!(
                serde_json::to_string(&c).unwrap(),
                format!("\"{}\"", c.slug())
            );
        }
        let err = "portscan".parse::<Category>().unwrap_err().to_string();
        assert!(err.contains("port_scan"), "{err}");
    }

    #[test]
    fn absent_fields_are_omitted_not_empty() {
        let a = Alert::new(
            Timestamp::from_secs(1_700_000_000),
            "net.port_scan",
            "Port scan",
            Category::PortScan,
            Severity::High,
            0.9,
        );
        let line = a.to_json_line();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        let obj = v.as_object().unwrap();
        for absent in [
            "device",
            "src_ip",
            "dst_port",
            "pid",
            "comm",
            "owasp_iot",
            "evidence",
            "count",
        ] {
            assert!(!obj.contains_key(absent), "{absent} present in {line}");
        }
        assert_eq!(obj["ts"], "2023-11-14T22:13:20Z");
        assert_eq!(obj["category"], "port_scan");
        assert_eq!(obj["severity"], "high");
        let back: Alert = serde_json::from_str(&line).unwrap();
        assert_eq!(back, a);
    }
}
