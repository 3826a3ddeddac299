//! The heir agent: kernel sensors, the event pipeline that turns their records into enriched
//! events and alerts, the sinks that keep and act on them, and the [`Agent`] runtime that
//! runs them all behind the `heir` binary. `docs/ARCHITECTURE.md` shows where each part lives.

pub mod api;
pub mod bench;
pub mod bench_flood;
pub mod bench_xdp;
pub mod config;
pub mod decode;
pub mod files;
pub mod host;
pub mod intel;
pub mod mesh;
pub mod metrics;
pub mod packets;
pub mod pipeline;
pub mod proctable;
pub mod rama_state;
pub mod respond;
pub mod runtime;
pub mod sensor;
pub mod sink;
pub mod traffic;

pub use config::Config;
pub use runtime::{Agent, Notify, Options};
