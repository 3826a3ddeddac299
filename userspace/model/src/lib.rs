//! The lingua franca of heir.
//!
//! Every source (kernel sensors, pcap or event replay, the mesh) produces [`Event`]s and every
//! stage after it consumes them; every detector produces [`Alert`]s. Keeping these types in a
//! crate of their own lets the TUI, the mesh and offline tools share them without building the
//! kernel loader.

pub mod alert;
pub mod clock;
pub mod event;
pub mod kind;
pub mod mac;
pub mod service;
pub mod stored;
pub mod time;
pub mod tls;

pub use alert::{Alert, Category, Severity, Taxonomy};
pub use clock::{Clock, ManualClock, SystemClock};
pub use event::{Event, EventKind, NetAddr, Process, SockFamily};
pub use kind::Kind;
pub use mac::MacAddr;
pub use stored::{Ack, AuditEntry, StoredAlert};
pub use time::{BootClock, Timestamp};
