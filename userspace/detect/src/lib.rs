//! Threat hunting for heir: turns [`heir_model::Event`]s into [`heir_model::Alert`]s a hospital
//! sysadmin can act on.
//!
//! Three families of detection share one [`Engine`]:
//! - declarative [`rules`] shipped in `rules/` and built in, plus the host's own (YAML, a small typed condition language,
//!   thresholds, inline test cases, hot reload);
//! - stateful [`detectors`] for attacks that need memory across events (scans, brute force,
//!   ransomware bursts, reverse shells, …), plus streaming [`anomaly`] detection per device and
//!   FFT-based [`beacon`] detection;
//! - [`aggregate`]: one alert per incident, with a count, instead of one line per packet.
//!
//! Every stage takes its notion of "now" from the events it sees and from an injectable
//! [`Clock`] for housekeeping, so replays and tests are exact.
//!
//! # Using it from the agent
//! ```no_run
//! use std::sync::Arc;
//! use heir_detect::{Config, Engine, SystemClock};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // `[detect]` table of the agent's TOML configuration; unknown keys are rejected by name.
//! let cfg = Config::from_toml("[port_scan]\nvertical_ports = 25\n")?;
//! let mut engine = Engine::new(&cfg, Arc::new(SystemClock));
//! engine.set_local_device("pacs-gw-1");
//! // The built-in rules, then the host's own (added, or replacing a built-in one by id).
//! let sources = heir_detect::rules::Sources::built_in_and(vec!["/etc/heir/rules".into()]);
//! engine.load_rules(&sources)?; // error: file:line:col
//! # let saved: Vec<u8> = Vec::new();
//! engine.restore_state(&saved)?; // baselines and anomaly models from the store
//! let mut alerts = Vec::new();
//! # let events: Vec<heir_model::Event> = Vec::new();
//! for ev in &events {
//!     engine.process(ev, &mut alerts); // publish `alerts`, then clear
//! }
//! // Once a second: close windows, flush incidents, pick up edited rule files.
//! engine.tick(&mut alerts);
//! if let Some(Err(e)) = engine.reload_if_changed() {
//!     eprintln!("{e}"); // the previous rules stay active
//! }
//! let _snapshot = engine.save_state(); // persist periodically and at shutdown
//! # Ok(())
//! # }
//! ```
//! `heir rules check DIR` is [`rules::check`] (errors display as `file:line:column: message`),
//! `heir rules test DIR` is [`rules::test`] (one [`rules::CaseResult`] per inline case).

pub mod aggregate;
pub mod anomaly;
pub mod beacon;
pub mod clock;
pub mod detector;
pub mod detectors;
pub mod engine;
pub mod kind;
pub mod known;
pub mod registry;
pub mod rules;
pub mod scenario;
mod util;

pub use clock::{Clock, ManualClock, SystemClock};
pub use detector::{Detector, Spec, StateError};
pub use engine::Engine;
pub use kind::Kind;
pub use registry::{Config, ConfigError};
