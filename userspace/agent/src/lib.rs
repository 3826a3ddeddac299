//! The heir agent: kernel sensors, the event pipeline that turns their records into enriched
//! events and alerts, and the commands behind the `heir` binary.

pub mod config;
pub mod decode;
pub mod flows;
pub mod logins;
pub mod mesh;
pub mod metrics;
pub mod packets;
pub mod persist;
pub mod pipeline;
pub mod proctable;
pub mod recognize;
pub mod respond;
pub mod risk;
pub mod sensor;
pub mod syslog;
pub mod traffic;

pub use config::Config;
pub mod api;
pub mod bench;
pub mod bench_xdp;
