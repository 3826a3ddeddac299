//! MDS2 (ANSI/NEMA HN 1-2019 Manufacturer Disclosure Statement for Medical Device Security)
//! answers, from the form's CSV export.
//!
//! The export is a table with a `Question ID` column (`DOC-3`, `STCF-1`, …) and an `Answer`
//! column (`Yes`, `No`, `N/A`, `See Note`), possibly after a few title rows. RAMA reads the
//! device model (`DOC-3`) and the capabilities listed in [`CAPABILITIES`].

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::Error;

/// A security capability RAMA credits as resilience.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Capability {
    /// On a segment only the systems it needs can reach (from the registry, not MDS2).
    Segmentation,
    EncryptionInTransit,
    Authentication,
    Patching,
    EncryptionAtRest,
    MalwareProtection,
    AuditLogging,
}

impl Capability {
    pub const ALL: [Capability; 7] = [
        Capability::Segmentation,
        Capability::EncryptionInTransit,
        Capability::Authentication,
        Capability::Patching,
        Capability::EncryptionAtRest,
        Capability::MalwareProtection,
        Capability::AuditLogging,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Capability::Segmentation => "segmentation",
            Capability::EncryptionInTransit => "encryption_in_transit",
            Capability::Authentication => "authentication",
            Capability::Patching => "patching",
            Capability::EncryptionAtRest => "encryption_at_rest",
            Capability::MalwareProtection => "malware_protection",
            Capability::AuditLogging => "audit_logging",
        }
    }
}

impl std::fmt::Display for Capability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which HN 1-2019 questions grant which capability (any `Yes` grants it).
pub const CAPABILITIES: &[(Capability, &[&str])] = &[
    (Capability::EncryptionInTransit, &["TXCF-2"]),
    (Capability::Authentication, &["PAUT-1", "AUTH-1"]),
    (Capability::Patching, &["CSUP-2.1", "CSUP-9"]),
    (Capability::EncryptionAtRest, &["STCF-1"]),
    (Capability::MalwareProtection, &["MLDP-2"]),
    (Capability::AuditLogging, &["AUDT-1"]),
];

/// The question naming the device model.
pub const MODEL_QUESTION: &str = "DOC-3";

/// One answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    Yes,
    No,
    NotApplicable,
    SeeNote,
    Blank,
}

/// The MDS2 answers for one device model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Form {
    pub model: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manufacturer: Option<String>,
    pub answers: BTreeMap<String, Answer>,
}

impl Form {
    pub fn has(&self, cap: Capability) -> bool {
        CAPABILITIES
            .iter()
            .filter(|(c, _)| *c == cap)
            .flat_map(|(_, qs)| qs.iter())
            .any(|q| self.answers.get(*q) == Some(&Answer::Yes))
    }
}

fn norm(h: &str) -> String {
    h.trim().trim_start_matches('\u{feff}').to_ascii_lowercase()
}

fn is_id_header(h: &str) -> bool {
    matches!(norm(h).as_str(), "question id" | "question_id" | "id")
}

fn is_answer_header(h: &str) -> bool {
    matches!(
        norm(h).as_str(),
        "answer" | "response" | "yes, no, n/a, or see note"
    )
}

/// A CSV line that is the header row of an MDS2 export.
pub fn is_header(line: &str) -> bool {
    let cells: Vec<&str> = line.split(',').map(|c| c.trim_matches('"')).collect();
    cells.iter().any(|c| is_id_header(c)) && cells.iter().any(|c| is_answer_header(c))
}

pub fn load(file: &Path) -> Result<Form, Error> {
    parse(file, &super::read(file)?)
}

pub fn parse(file: &Path, bytes: &[u8]) -> Result<Form, Error> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut header: Option<(usize, usize)> = None;
    let mut answers = BTreeMap::new();
    let mut texts: BTreeMap<String, String> = BTreeMap::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| {
            let line = e.position().map(|p| p.line() as usize);
            Error::invalid(file, "(csv)", line, e.to_string())
        })?;
        let line = rec.position().map(|p| p.line() as usize);
        let Some((id_col, ans_col)) = header else {
            let id = rec.iter().position(is_id_header);
            let ans = rec.iter().position(is_answer_header);
            if let (Some(i), Some(a)) = (id, ans) {
                header = Some((i, a));
            }
            continue;
        };
        let id = rec.get(id_col).unwrap_or("").trim();
        if id.is_empty() {
            continue;
        }
        let raw = rec.get(ans_col).unwrap_or("").trim();
        let row = |col: &str| format!("{id}, {col}");
        if !valid_id(id) {
            return Err(Error::invalid(
                file,
                row("Question ID"),
                line,
                format!("`{id}` is not an MDS2 question id (like STCF-1)"),
            ));
        }
        if id.starts_with("DOC-") {
            texts.insert(id.to_owned(), raw.to_owned());
            answers.insert(id.to_owned(), Answer::Blank);
            continue;
        }
        let answer = match raw.to_ascii_lowercase().as_str() {
            "yes" | "y" => Answer::Yes,
            "no" | "n" => Answer::No,
            "n/a" | "na" => Answer::NotApplicable,
            "see note" | "see notes" => Answer::SeeNote,
            "" => Answer::Blank,
            _ => {
                return Err(Error::invalid(
                    file,
                    row("Answer"),
                    line,
                    format!("`{raw}` is not Yes, No, N/A or See Note"),
                ));
            }
        };
        if answers.insert(id.to_owned(), answer).is_some() {
            return Err(Error::invalid(
                file,
                row("Question ID"),
                line,
                "question answered twice",
            ));
        }
    }
    if header.is_none() {
        return Err(Error::invalid(
            file,
            "(header)",
            None,
            "no header row with `Question ID` and `Answer` columns",
        ));
    }
    let model = texts
        .get(MODEL_QUESTION)
        .filter(|m| !m.is_empty())
        .cloned()
        .ok_or_else(|| {
            Error::invalid(
                file,
                MODEL_QUESTION,
                None,
                "missing: the device model the form describes",
            )
        })?;
    Ok(Form {
        model,
        manufacturer: texts.get("DOC-1").filter(|m| !m.is_empty()).cloned(),
        answers,
    })
}

fn valid_id(id: &str) -> bool {
    let Some((sec, num)) = id.split_once('-') else {
        return false;
    };
    (3..=4).contains(&sec.len())
        && sec.bytes().all(|b| b.is_ascii_uppercase())
        && !num.is_empty()
        && num.bytes().all(|b| b.is_ascii_digit() || b == b'.')
}
