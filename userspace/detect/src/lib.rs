//! Threat hunting for heir: turns [`heir_model::Event`]s into [`heir_model::Alert`]s a hospital
//! sysadmin can act on.
//!
//! Three families of detection share one [`Engine`]:
//! - declarative [`rules`] loaded from `rules/` (YAML, a small typed condition language,
//!   thresholds, inline test cases, hot reload);
//! - stateful [`detectors`] for attacks that need memory across events (scans, brute force,
//!   ransomware bursts, reverse shells, …), plus streaming [`anomaly`] detection per device and
//!   FFT-based [`beacon`] detection;
//! - [`aggregate`]: one alert per incident, with a count, instead of one line per packet.
//!
//! Every stage takes its notion of "now" from the events it sees and from an injectable
//! [`Clock`] for housekeeping, so replays and tests are exact.

pub mod aggregate;
pub mod anomaly;
pub mod beacon;
pub mod clock;
pub mod detector;
pub mod detectors;
pub mod engine;
pub mod kind;
pub mod registry;
pub mod rules;
pub mod scenario;
mod util;

pub use clock::{Clock, ManualClock, SystemClock};
pub use detector::{Detector, Spec, StateError};
pub use engine::Engine;
pub use kind::Kind;
pub use registry::Config;
