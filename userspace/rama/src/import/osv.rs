//! OSV JSON (https://ossf.github.io/osv-schema/): one record, or an array of records.

use std::path::Path;

use serde::Deserialize;

use super::Error;
use crate::clinical;
use crate::vuln::{Affected, Bound, Feed, Range, Target, Vulnerability};

#[derive(Deserialize)]
struct Record {
    id: String,
    #[serde(default)]
    aliases: Vec<String>,
    #[serde(default)]
    summary: Option<String>,
    #[serde(default)]
    severity: Vec<Severity>,
    #[serde(default)]
    affected: Vec<RawAffected>,
}

#[derive(Deserialize)]
struct Severity {
    #[serde(rename = "type")]
    kind: String,
    score: String,
}

#[derive(Deserialize)]
struct RawAffected {
    #[serde(default)]
    package: Option<Package>,
    #[serde(default)]
    ranges: Vec<RawRange>,
    #[serde(default)]
    versions: Vec<String>,
    #[serde(default)]
    severity: Vec<Severity>,
}

#[derive(Deserialize)]
struct Package {
    #[serde(default)]
    ecosystem: Option<String>,
    name: String,
    #[serde(default)]
    purl: Option<String>,
}

#[derive(Deserialize)]
struct RawRange {
    #[serde(rename = "type")]
    kind: String,
    events: Vec<Event>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum Event {
    Introduced(String),
    Fixed(String),
    LastAffected(String),
    Limit(String),
}

pub fn load(file: &Path) -> Result<Vec<Vulnerability>, Error> {
    parse(file, &super::read(file)?)
}

pub fn parse(file: &Path, bytes: &[u8]) -> Result<Vec<Vulnerability>, Error> {
    // Deserialise as a Value first so the untagged array/object choice does not swallow the
    // field path of the real error.
    let value: serde_json::Value = super::json(file, bytes)?;
    let (records, many) = match value {
        serde_json::Value::Array(items) => (items, true),
        other => (vec![other], false),
    };
    let mut out = Vec::with_capacity(records.len());
    for (i, rec) in records.into_iter().enumerate() {
        let at = if many {
            format!("[{i}]")
        } else {
            String::new()
        };
        let r: Record = serde_path_to_error::deserialize(rec).map_err(|e| {
            let path = e.path().to_string();
            Error::invalid(file, join(&at, &path), None, e.into_inner().to_string())
        })?;
        out.push(convert(file, &at, r)?);
    }
    Ok(out)
}

fn join(a: &str, b: &str) -> String {
    match (a.is_empty(), b == ".") {
        (true, _) => b.to_owned(),
        (false, true) => a.to_owned(),
        (false, false) => format!("{a}.{b}"),
    }
}

fn vectors(file: &Path, at: &str, sev: &[Severity]) -> Result<Vec<clinical::Vector>, Error> {
    let mut out = Vec::new();
    for (j, s) in sev.iter().enumerate() {
        if !matches!(s.kind.as_str(), "CVSS_V2" | "CVSS_V3" | "CVSS_V4") {
            continue;
        }
        let v = s.score.parse().map_err(|e: clinical::InvalidVector| {
            Error::invalid(
                file,
                join(at, &format!("severity[{j}].score")),
                None,
                e.to_string(),
            )
        })?;
        out.push(v);
    }
    Ok(out)
}

fn convert(file: &Path, at: &str, r: Record) -> Result<Vulnerability, Error> {
    if r.id.trim().is_empty() {
        return Err(Error::invalid(
            file,
            join(at, "id"),
            None,
            "must not be empty",
        ));
    }
    let mut cvss = vectors(file, at, &r.severity)?;
    let mut affected = Vec::new();
    for (k, a) in r.affected.iter().enumerate() {
        let here = join(at, &format!("affected[{k}]"));
        cvss.extend(vectors(file, &here, &a.severity)?);
        let Some(pkg) = &a.package else {
            return Err(Error::invalid(
                file,
                format!("{here}.package"),
                None,
                "missing: RAMA matches vulnerabilities by package",
            ));
        };
        if pkg.name.trim().is_empty() {
            return Err(Error::invalid(
                file,
                format!("{here}.package.name"),
                None,
                "must not be empty",
            ));
        }
        let mut ranges = Vec::new();
        for (m, rr) in a.ranges.iter().enumerate() {
            let rat = format!("{here}.ranges[{m}]");
            if !matches!(rr.kind.as_str(), "SEMVER" | "ECOSYSTEM" | "GIT") {
                return Err(Error::invalid(
                    file,
                    format!("{rat}.type"),
                    None,
                    format!("`{}` is not SEMVER, ECOSYSTEM or GIT", rr.kind),
                ));
            }
            if rr.kind == "GIT" {
                continue; // commit ranges cannot be compared with firmware versions
            }
            ranges.extend(events_to_ranges(file, &rat, &rr.events)?);
        }
        if ranges.is_empty() && a.versions.is_empty() {
            continue;
        }
        affected.push(Affected::new(
            Target::Package {
                name: pkg.name.clone(),
                ecosystem: pkg.ecosystem.clone(),
                purl: pkg.purl.clone(),
            },
            ranges,
            a.versions.clone(),
        ));
    }
    Ok(Vulnerability {
        id: r.id,
        aliases: r.aliases,
        summary: r.summary,
        cvss,
        affected,
        feed: Feed::Osv,
        exploited: false,
        advisory: None,
        cwe: None,
    })
}

fn events_to_ranges(file: &Path, at: &str, events: &[Event]) -> Result<Vec<Range>, Error> {
    let mut out = Vec::new();
    let mut open: Option<Option<Bound>> = None;
    for (i, e) in events.iter().enumerate() {
        match e {
            Event::Introduced(v) => {
                if open.is_some() {
                    return Err(Error::invalid(
                        file,
                        format!("{at}.events[{i}].introduced"),
                        None,
                        "introduced twice without a fix in between",
                    ));
                }
                open = Some((v != "0").then(|| Bound {
                    version: v.clone(),
                    inclusive: true,
                }));
            }
            Event::Fixed(v) | Event::LastAffected(v) | Event::Limit(v) => {
                let Some(start) = open.take() else {
                    return Err(Error::invalid(
                        file,
                        format!("{at}.events[{i}]"),
                        None,
                        "range end without `introduced` before it",
                    ));
                };
                let inclusive = matches!(e, Event::LastAffected(_));
                out.push(Range {
                    start,
                    end: Some(Bound {
                        version: v.clone(),
                        inclusive,
                    }),
                });
            }
        }
    }
    if let Some(start) = open {
        out.push(Range { start, end: None });
    }
    Ok(out)
}
