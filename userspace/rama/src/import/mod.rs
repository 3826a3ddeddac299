//! Offline knowledge imports: SBOMs, MDS2 forms and vulnerability feeds.
//!
//! Every importer parses and validates the whole file before anything is stored, so a file is
//! imported completely or not at all, and a refusal names the file and the field (and line or
//! row where the format has them).

pub mod kev;
pub mod mds2;
pub mod nvd;
pub mod osv;
pub mod sbom;

use std::path::{Path, PathBuf};

/// Why a file was refused. Nothing from a refused file is stored.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading {file}")]
    Io {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: field `{field}`{}: {message}", line.map(|l| format!(" (line {l})")).unwrap_or_default())]
    Invalid {
        file: PathBuf,
        /// Path of the offending field, e.g. `components[3].version` or `row 12, Answer`.
        field: String,
        line: Option<usize>,
        message: String,
    },
    #[error("{file}: not a recognised knowledge file ({reason})")]
    UnknownFormat { file: PathBuf, reason: String },
}

impl Error {
    pub(crate) fn invalid(
        file: &Path,
        field: impl Into<String>,
        line: Option<usize>,
        message: impl Into<String>,
    ) -> Self {
        Error::Invalid {
            file: file.to_path_buf(),
            field: field.into(),
            line,
            message: message.into(),
        }
    }
}

/// The formats `heir vuln import` understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// CycloneDX JSON SBOM.
    CycloneDx,
    /// MDS2 (ANSI/NEMA HN 1-2019) CSV export.
    Mds2,
    /// OSV JSON (one record or an array).
    Osv,
    /// NVD CVE API 2.0 JSON.
    Nvd,
    /// CISA Known Exploited Vulnerabilities CSV.
    Kev,
}

impl Format {
    /// Recognises a file by its content, not its name.
    pub fn detect(file: &Path, bytes: &[u8]) -> Result<Self, Error> {
        let unknown = |reason: &str| Error::UnknownFormat {
            file: file.to_path_buf(),
            reason: reason.to_owned(),
        };
        let text = std::str::from_utf8(bytes).map_err(|_| unknown("not UTF-8 text"))?;
        let head = text.trim_start_matches('\u{feff}').trim_start();
        if head.starts_with('{') || head.starts_with('[') {
            let v: serde_json::Value = serde_json::from_str(head).map_err(|e| Error::Invalid {
                file: file.to_path_buf(),
                field: "(document)".into(),
                line: Some(e.line()),
                message: e.to_string(),
            })?;
            if v.get("bomFormat").is_some() {
                Ok(Format::CycloneDx)
            } else if v.get("vulnerabilities").is_some()
                && v.get("format").is_some_and(|f| f == "NVD_CVE")
            {
                Ok(Format::Nvd)
            } else if v.is_array() || v.get("id").is_some() {
                Ok(Format::Osv)
            } else {
                Err(unknown(
                    "JSON that is neither CycloneDX (`bomFormat`), NVD 2.0 (`format: NVD_CVE`) nor OSV (`id`)",
                ))
            }
        } else {
            let first = head.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
            if first.contains("cveID") {
                Ok(Format::Kev)
            } else if head.lines().take(30).any(mds2::is_header) {
                Ok(Format::Mds2)
            } else {
                Err(unknown(
                    "CSV that is neither CISA KEV (`cveID` column) nor an MDS2 export (`Question ID` and `Answer` columns)",
                ))
            }
        }
    }
}

pub(crate) fn read(file: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(file).map_err(|source| Error::Io {
        file: file.to_path_buf(),
        source,
    })
}

/// Deserialises JSON, naming the field path and line of the first problem.
pub(crate) fn json<T: serde::de::DeserializeOwned>(file: &Path, bytes: &[u8]) -> Result<T, Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let v = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner();
        Error::invalid(file, field, Some(inner.line()), inner.to_string())
    })?;
    de.end()
        .map_err(|e| Error::invalid(file, "(document)", Some(e.line()), e.to_string()))?;
    Ok(v)
}
