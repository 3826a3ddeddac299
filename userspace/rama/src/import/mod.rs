//! Offline knowledge imports: SBOMs, MDS2 forms and vulnerability feeds.
//!
//! Every importer parses and validates the whole file before anything is stored, so a file is
//! imported completely or not at all, and a refusal names the file and the field (and line or
//! row where the format has them).

pub mod csaf;
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
    #[error("{dir}: no .json or .csv knowledge files in the directory")]
    EmptyDirectory { dir: PathBuf },
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
    /// CSAF 2.0 advisory (e.g. CISA ICS medical advisories, ICSMA).
    Csaf,
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
            } else if v
                .get("document")
                .is_some_and(|d| d.get("csaf_version").is_some())
            {
                Ok(Format::Csaf)
            } else if v.get("vulnerabilities").is_some()
                && v.get("format").is_some_and(|f| f == "NVD_CVE")
            {
                Ok(Format::Nvd)
            } else if v.is_array() || v.get("id").is_some() {
                Ok(Format::Osv)
            } else {
                Err(unknown(
                    "JSON that is neither CycloneDX (`bomFormat`), CSAF (`document.csaf_version`), NVD 2.0 (`format: NVD_CVE`) nor OSV (`id`)",
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

/// The knowledge files of a directory, recursively, in name order: `.json` and `.csv` only,
/// so the README, signatures (`.asc`) and checksums (`.sha512`) that CSAF providers publish
/// beside their advisories are not mistaken for documents. Hidden entries are skipped.
pub fn files_in(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let mut out = Vec::new();
    collect(dir, &mut out)?;
    out.sort();
    if out.is_empty() {
        return Err(Error::EmptyDirectory {
            dir: dir.to_path_buf(),
        });
    }
    Ok(out)
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), Error> {
    let io = |source| Error::Io {
        file: dir.to_path_buf(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        // `DirEntry::file_type` does not follow symlinks, so a link loop cannot recurse.
        let kind = entry.file_type().map_err(io)?;
        if kind.is_dir() {
            collect(&path, out)?;
        } else if path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("json") || e.eq_ignore_ascii_case("csv"))
        {
            out.push(path);
        }
    }
    Ok(())
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
