//! Every detector heir ships, built from one configuration table.
//!
//! Adding a detector means: a module under `detectors/` with a `Config` and a type implementing
//! [`Detector`], a field here, and a line in [`build`].

use serde::{Deserialize, Serialize};

use crate::detectors::{
    brute_force, cleartext, credential_access, cryptomining, default_credentials, exfiltration,
    injection, kernel_module, persistence, port_scan, privilege_escalation, ransomware,
    reverse_shell, syn_flood, weak_tls,
};
use crate::{Detector, aggregate, anomaly, beacon};

/// The `[detect]` table of heir's configuration file: one sub-table per detector, each with an
/// `enabled` switch and documented keys; anything unknown is rejected with its name.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Rules directory loaded at start and watched for changes.
    pub rules_dir: Option<std::path::PathBuf>,
    pub aggregate: AggregateConfig,
    pub port_scan: port_scan::Config,
    pub brute_force: brute_force::Config,
    pub default_credentials: default_credentials::Config,
    pub cleartext: cleartext::Config,
    pub weak_tls: weak_tls::Config,
    pub syn_flood: syn_flood::Config,
    pub reverse_shell: reverse_shell::Config,
    pub credential_access: credential_access::Config,
    pub privilege_escalation: privilege_escalation::Config,
    pub kernel_module: kernel_module::Config,
    pub injection: injection::Config,
    pub persistence: persistence::Config,
    pub ransomware: ransomware::Config,
    pub exfiltration: exfiltration::Config,
    pub cryptomining: cryptomining::Config,
    pub anomaly: anomaly::Config,
    pub beacon: beacon::Config,
}

/// Incident aggregation (see [`crate::aggregate`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AggregateConfig {
    /// Seconds of quiet after which an incident closes.
    pub window_secs: u64,
    /// Seconds between update lines of an incident that goes on.
    pub update_secs: u64,
    /// Evidence lines kept per incident.
    pub max_evidence: usize,
    /// Open incidents tracked at most.
    pub max_incidents: usize,
}

impl Default for AggregateConfig {
    fn default() -> Self {
        let d = aggregate::Config::default();
        Self {
            window_secs: d.window_secs,
            update_secs: d.update_secs,
            max_evidence: d.max_evidence,
            max_incidents: d.max_incidents,
        }
    }
}

impl From<&AggregateConfig> for aggregate::Config {
    fn from(c: &AggregateConfig) -> Self {
        aggregate::Config {
            window_secs: c.window_secs,
            update_secs: c.update_secs,
            max_evidence: c.max_evidence,
            max_incidents: c.max_incidents,
        }
    }
}

/// Error in the detector configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid detector configuration")]
    Toml(#[from] toml::de::Error),
}

impl Config {
    /// The configuration with every key at its default, as TOML (for `heir config` output and
    /// documentation).
    pub fn default_toml() -> String {
        toml::to_string(&Config::default()).unwrap_or_default()
    }

    /// Parses the `[detect]` table from TOML text; errors name the key and line.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        Ok(toml::from_str(text)?)
    }
}

/// Builds every enabled detector.
pub fn build(cfg: &Config) -> Vec<Box<dyn Detector>> {
    let mut v: Vec<Box<dyn Detector>> = Vec::new();
    macro_rules! add {
        ($field:ident, $ty:path) => {
            if cfg.$field.enabled {
                v.push(Box::new(<$ty>::new(cfg.$field.clone())));
            }
        };
    }
    add!(port_scan, port_scan::PortScan);
    add!(brute_force, brute_force::BruteForce);
    add!(default_credentials, default_credentials::DefaultCredentials);
    add!(cleartext, cleartext::Cleartext);
    add!(weak_tls, weak_tls::WeakTls);
    add!(syn_flood, syn_flood::SynFlood);
    add!(reverse_shell, reverse_shell::ReverseShell);
    add!(credential_access, credential_access::CredentialAccess);
    add!(
        privilege_escalation,
        privilege_escalation::PrivilegeEscalation
    );
    add!(kernel_module, kernel_module::KernelModule);
    add!(injection, injection::Injection);
    add!(persistence, persistence::Persistence);
    add!(ransomware, ransomware::Ransomware);
    add!(exfiltration, exfiltration::Exfiltration);
    add!(cryptomining, cryptomining::Cryptomining);
    add!(anomaly, anomaly::Anomaly);
    add!(beacon, beacon::Beacon);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_build_every_detector_and_unknown_keys_are_named() {
        let names: Vec<&str> = build(&Config::default()).iter().map(|d| d.name()).collect();
        assert_eq!(names.len(), 17);
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len(), "detector names are unique");
        let cfg =
            Config::from_toml("[port_scan]\nvertical_ports = 50\n[beacon]\nenabled = false\n")
                .unwrap();
        assert_eq!(cfg.port_scan.vertical_ports, 50);
        assert_eq!(build(&cfg).len(), 16);
        let err = Config::from_toml("[port_scan]\nvertical_port = 50\n").unwrap_err();
        let cause = std::error::Error::source(&err).unwrap().to_string();
        assert!(cause.contains("vertical_port"), "{cause}");
        assert!(cause.contains("line 2"), "{cause}");
        assert!(
            !err.to_string().contains("vertical_port"),
            "the cause is printed once"
        );
    }
}
