//! RAMA — Risk Assessment of Medical Applications — and the device inventory it scores.
//!
//! One number per device and per hospital, 0–100, that says how exposed and how attacked a
//! device is, that anyone can recompute by hand from docs/RAMA.md, and that explains itself.
//!
//! - [`Inventory`] merges passive [`DeviceFact`]s from the sensors with the operator's
//!   [`Registry`] (`devices.toml`); [`oui::Table`] names manufacturers from MAC addresses.
//! - [`Knowledge`] holds offline imports (CycloneDX SBOMs, MDS2 forms, OSV / NVD 2.0 / CISA KEV
//!   feeds) and matches them to devices.
//! - [`Score`] is the formula; [`Rama`] keeps every device's score current as observations and
//!   [`heir_model::Alert`]s arrive, one device at a time.

pub mod clinical;
pub mod clock;
pub mod engine;
pub mod fact;
pub mod history;
pub mod hospital;
pub mod import;
pub mod inventory;
pub mod knowledge;
pub mod oui;
pub mod registry;
pub mod score;
pub mod text;
pub mod threat;
pub mod version;
pub mod vuln;

pub use clock::{Clock, ManualClock, SystemClock};
pub use engine::{Listing, Rama, Report, Snapshot, Update};
pub use fact::{DeviceFact, Fact, Protocol, Service, TlsVersion, Transport};
pub use heir_model::mac::MacAddr;
pub use hospital::Hospital;
pub use inventory::{Device, DeviceId, Inventory};
pub use knowledge::{Imported, Knowledge, Match};
pub use registry::{Class, Criticality, Registry};
pub use score::{Band, Explanation, Factors, Inputs, Score};
