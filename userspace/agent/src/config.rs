//! The agent's configuration: one TOML file, every key documented, unknown keys rejected.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::sensor;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the agent keeps its state.
    pub data_dir: PathBuf,
    /// The operator's device registry (TOML); default: `devices.toml` in the data directory,
    /// when present.
    pub registry: Option<PathBuf>,
    /// The kernel sensor.
    pub sensor: sensor::Config,
    /// How much of the event stream the store keeps (`max_events`, `max_age` in seconds).
    pub retention: heir_store::Retention,
    /// Detectors and rules (`[detect]`: `rules_dir`, one table per detector).
    pub detect: heir_detect::Config,
    /// Sharing with the other hospitals (`[mesh]`).
    pub mesh: crate::mesh::Config,
    /// Known indicators, from the mesh and imports (`[intel]`: `retro_hunt_days`).
    pub intel: crate::intel::Config,
    /// What the responder does about alerts naming an attacker (`[respond]`).
    pub respond: crate::respond::policy::Config,
    /// The local API's Unix socket; default `api.sock` in the data directory.
    pub api_socket: Option<PathBuf>,
    /// The group whose members (besides root) may change state through the API: acknowledge,
    /// block, unblock, approve, deny. Everyone else who can open the socket (the `heir`
    /// group) may only read.
    pub api_operators: String,
    /// Serve Prometheus metrics at `http://ADDR/metrics` (e.g. "127.0.0.1:9464"); off when absent.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Send every alert as an RFC 5424 syslog datagram to this UDP address (a SIEM).
    pub syslog: Option<std::net::SocketAddr>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("/var/lib/heir"),
            registry: None,
            sensor: sensor::Config::default(),
            retention: heir_store::Retention::default(),
            detect: heir_detect::Config::default(),
            mesh: crate::mesh::Config::default(),
            intel: crate::intel::Config::default(),
            respond: crate::respond::policy::Config::default(),
            api_socket: None,
            api_operators: "heir-admin".into(),
            metrics_listen: None,
            syslog: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read config file {path}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
}

impl Config {
    /// Where the detection rules come from: the rules built into heir, then the host's own,
    /// which add rules or replace a built-in one by id. The host's own are `[detect]
    /// rules_dir` when set, else `/etc/heir/rules` and `rules/` in the data directory (either
    /// may be absent).
    pub fn rules_sources(&self) -> heir_detect::rules::Sources {
        let dirs = match &self.detect.rules_dir {
            Some(d) => vec![d.clone()],
            None => vec![
                PathBuf::from("/etc/heir/rules"),
                self.data_dir.join("rules"),
            ],
        };
        heir_detect::rules::Sources::built_in_and(dirs)
    }

    pub fn api_socket(&self) -> PathBuf {
        self.api_socket
            .clone()
            .unwrap_or_else(|| self.data_dir.join("api.sock"))
    }

    pub fn load(path: &Path) -> Result<Config, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::parse(&text).map_err(|source| Error::Parse {
            path: path.to_owned(),
            source: Box::new(source),
        })
    }

    pub fn parse(text: &str) -> Result<Config, toml::de::Error> {
        toml::from_str(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_working_defaults() {
        let c = Config::parse("").unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/var/lib/heir"));
        assert!(c.sensor.watch.iter().any(|w| w.prefix == "/etc/shadow"));
    }

    #[test]
    fn unknown_keys_are_named() {
        let err = Config::parse("[sensor]\nring_byte = 4096\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("ring_byte"), "{err}");
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn the_readme_example_is_a_valid_configuration() {
        let readme = include_str!("../../../README.md");
        let start = readme.find("```toml\n").expect("README has a TOML example") + 8;
        let end = start + readme[start..].find("```").expect("closed");
        let c =
            Config::parse(&readme[start..end]).unwrap_or_else(|e| panic!("README example: {e}"));
        assert!(c.metrics_listen.is_some() && c.syslog.is_some());
        assert_eq!(c.sensor.watch.len(), 3);
        assert_eq!(c.sensor.flows(), heir_packet::flows::Config::default());
    }

    #[test]
    fn flow_sweep_keys_parse_and_never_go_below_a_second() {
        let c = Config::parse("[sensor]\nflow_sweep_secs = 0\nflow_idle_secs = 3\n").unwrap();
        let f = c.sensor.flows();
        assert_eq!(f.sweep, std::time::Duration::from_secs(1));
        assert_eq!(f.idle, std::time::Duration::from_secs(3));
        assert_eq!(f.update, heir_packet::flows::Config::default().update);
        let err = Config::parse("[sensor]\nflow_sweep_ms = 10\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("flow_sweep_ms"), "{err}");
    }

    #[test]
    fn watch_rules_parse() {
        let c =
            Config::parse("[sensor]\nwatch = [{ prefix = \"/srv/pacs/\", access = \"write\" }]\n")
                .unwrap();
        assert_eq!(c.sensor.watch.len(), 1);
        assert_eq!(c.sensor.watch[0].access, sensor::watch::Access::Write);
    }
}
