//! The packet path in userspace, pure: no kernel, no aya, no I/O.
//!
//! The XDP sensor writes three kinds of record into its ring buffer (a flow's first packet, a
//! dropped packet, a payload sample) and keeps a flow table. This crate turns both into
//! [`heir_model::Event`]s, the one vocabulary every later stage reads:
//!
//! - [`record::Decoder`] reads each ring-buffer record once: flows, server answers and drops
//!   as they are; samples through [`recognize`] (DICOM, HL7 over MLLP, TLS, HTTP, DNS, FTP,
//!   SSH, telnet, MQTT) and the FTP login tracker ([`logins`]);
//! - [`flows::Sweeper`] pairs the flow table's two directions into connection records.
//!
//! The well-known ports come from [`heir_abi::ports`], shared with the probe; TLS versions and
//! cipher suites from [`heir_model::tls`]; what a service's protocol is from
//! [`heir_model::service`].

pub mod dns;
pub mod flows;
pub mod logins;
pub mod recognize;
pub mod record;
pub mod samples;

pub use flows::{FlowCounters, Sweeper};
pub use record::{Decoder, Error};
