//! heir's local API: what the agent tells its operators, and what they can ask it to do.
//!
//! The agent serves JSON over HTTP on a Unix socket (root and the `heir` group only); the TUI,
//! the CLI and users' scripts talk to it. This crate holds the three parts both sides share, so
//! that the TUI builds without the kernel loader:
//!
//! - the DTOs ([`status`], [`device`], [`alert`], [`mesh`], [`response`], [`live`]);
//! - the [`Backend`] trait the agent implements, the [`router`] over it, and [`Socket`] which
//!   serves the router on a Unix socket;
//! - the [`Client`].
//!
//! Anyone who can open the socket may read; the `POST` routes need an operator (root or the
//! operators' group, see [`access`]), and answer 403 `forbidden` to anyone else.
//!
//! Routes (all JSON; errors are `{"error": "...", "code": "..."}` with a 4xx/5xx status):
//!
//! | method | path | body / query | answer |
//! |---|---|---|---|
//! | GET | `/v1/status` | | [`Status`] |
//! | GET | `/v1/devices` | | `[`[`Device`]`]` |
//! | GET | `/v1/devices/{id}` | | [`heir_rama::Report`] |
//! | GET | `/v1/rama` | | [`Rama`] |
//! | GET | `/v1/alerts` | `?limit=N&after=SEQ&before=SEQ&unacknowledged=true` | `[`[`Stored`]`]`, newest first |
//! | POST | `/v1/alerts/{seq}/ack` | | [`Stored`] |
//! | GET | `/v1/indicators` | | [`Availability`]`<[`[`Indicator`]`]>` |
//! | POST | `/v1/indicators` | [`ImportRequest`] | [`ImportOutcome`] |
//! | GET | `/v1/peers` | | [`Availability`]`<[`[`Peer`]`]>` |
//! | GET | `/v1/blocks` | | [`Availability`]`<`[`Blocks`]`>` |
//! | POST | `/v1/block` | [`BlockRequest`] | [`Block`] |
//! | POST | `/v1/unblock` | [`UnblockRequest`] | [`Block`] (the one removed) |
//! | POST | `/v1/pending/{id}/approve` | | [`Block`] |
//! | POST | `/v1/pending/{id}/deny` | | [`Pending`] |
//! | GET | `/v1/stream` | `?alerts=true&events=false` | JSON lines of [`Live`] |

pub mod access;
pub mod alert;
pub mod availability;
pub mod backend;
pub mod client;
pub mod device;
pub mod error;
#[cfg(feature = "fixture")]
pub mod fixture;
pub mod lines;
pub mod live;
pub mod mesh;
pub mod response;
pub mod server;
pub mod socket;
pub mod status;

pub use access::{Access, Caller, Role};
pub use alert::{Ack, AlertQuery, Stored};
pub use availability::Availability;
pub use backend::Backend;
pub use client::Error as ClientError;
pub use client::{Client, LiveStream};
pub use device::{Device, Rama};
pub use error::{ApiError, BackendError, Chain, ErrorBody};
pub use live::{Live, StreamQuery};
pub use mesh::{
    ImportKind, ImportOutcome, ImportRequest, Imported, Indicator, IndicatorOrigin, Peer,
};
pub use response::{AuditEntry, Block, BlockRequest, Blocks, Origin, Pending, UnblockRequest};
pub use server::router;
pub use socket::Error as SocketError;
pub use socket::Socket;
pub use status::{Pipeline, Probe, Probes, SensorCounts, SinkDrops, Status};

/// Where the agent listens unless told otherwise.
pub const DEFAULT_SOCKET: &str = "/run/heir/api.sock";
