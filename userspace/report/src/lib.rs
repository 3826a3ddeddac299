//! The observatory's report: one self-contained HTML file (inline SVG charts, no scripts, no
//! fonts or stylesheets fetched from anywhere, printable) for one of four readers.
//!
//! What each reader may see is enforced by the types in [`roles`], not by the page:
//!
//! - [`roles::hospital::HospitalView`] is built from the hospital's own data (inventory, RAMA,
//!   alerts, knowledge) and the consortium's shared view. It is the only view that holds device
//!   names, addresses and the hospital's label.
//! - [`roles::manufacturer::ManufacturerView`] is built only from
//!   [`roles::manufacturer::ProductRecord`]s, a projection with no name, address, location or
//!   label field at all; groups of fewer than k devices are withheld.
//! - [`roles::regulator::RegulatorView`] and [`roles::public::PublicView`] are built only from
//!   [`roles::release::Released`] histograms, which only [`roles::release::Releaser`] makes:
//!   fixed vocabularies as labels (category slugs, device classes, OWASP and ENISA classes,
//!   score bands), at least k contributors, discrete Laplace noise from the mesh's privacy
//!   framework, and cells below k suppressed after noise.
//!
//! [`render`] turns a view into the page; [`charts`] draws with plotters' SVG backend and
//! [`html`] escapes every piece of text it is given.

pub mod charts;
pub mod html;
pub mod roles;

use std::fmt;
use std::str::FromStr;

use heir_model::Timestamp;

pub use roles::hospital::{HospitalView, Sources};
pub use roles::manufacturer::{ManufacturerView, ProductRecord};
pub use roles::public::PublicView;
pub use roles::regulator::RegulatorView;
pub use roles::release::{Released, Releaser};

/// Who the report is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Hospital,
    Manufacturer,
    Regulator,
    Public,
}

impl Role {
    pub const ALL: [Role; 4] = [
        Role::Hospital,
        Role::Manufacturer,
        Role::Regulator,
        Role::Public,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Hospital => "hospital",
            Role::Manufacturer => "manufacturer",
            Role::Regulator => "regulator",
            Role::Public => "public",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| Error::UnknownRole(s.to_owned()))
    }
}

/// The period a report covers, `since` inclusive to `until` inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub since: Timestamp,
    pub until: Timestamp,
}

impl Window {
    pub fn contains(&self, ts: Timestamp) -> bool {
        self.since <= ts && ts <= self.until
    }

    /// Days touched by the window (UTC), first and last included.
    pub fn days(&self) -> Vec<u64> {
        let first = self.since.as_nanos() / DAY_NS;
        let last = self.until.as_nanos() / DAY_NS;
        (first..=last).collect()
    }
}

pub(crate) const DAY_NS: u64 = 86_400 * 1_000_000_000;

/// What the page states on top: for whom, which period, from which data, when.
#[derive(Debug, Clone)]
pub struct Cover {
    pub role: Role,
    pub window: Window,
    pub generated: Timestamp,
    /// The data the report was built from, as the reader should know them (e.g. "alert store
    /// (1 204 alerts)", "RAMA state"). Never names or addresses.
    pub sources: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("unknown role `{0}` (expected hospital, manufacturer, regulator or public)")]
    UnknownRole(String),
    #[error("the manufacturer report needs --manufacturer NAME")]
    NoManufacturer,
    #[error("drawing the chart `{chart}`: {reason}")]
    Chart { chart: &'static str, reason: String },
    #[error("writing the report to {path}")]
    Write {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

/// The page for a view.
pub trait Page {
    fn render(&self, cover: &Cover) -> Result<String, Error>;
}

/// Renders `view` with its cover: the complete HTML document.
pub fn render(view: &impl Page, cover: &Cover) -> Result<String, Error> {
    view.render(cover)
}

/// Writes the page to `path` (through a temporary file beside it, then a rename, so a reader
/// never sees half a report).
pub fn write(path: &std::path::Path, page: &str) -> Result<(), Error> {
    let err = |source| Error::Write {
        path: path.to_owned(),
        source,
    };
    let name = path.file_name().ok_or_else(|| {
        err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a file name",
        ))
    })?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    std::fs::write(&tmp, page).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        err(e)
    })
}
