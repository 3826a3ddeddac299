//! Detection rules as data: YAML files under `rules/`, each rule a typed condition over event
//! fields, an optional count/window/group-by threshold, its place in the taxonomies, and inline
//! test cases.
//!
//! The shipped files are built into the library ([`built_in`]), so a `heir` binary copied
//! anywhere runs them; rules directories on the host ([`Sources`]) add rules or replace a
//! built-in one by id. `heir rules check|test|list` call [`check`], [`test`] and [`load`]; the
//! agent loads with [`load`] and watches with [`Watcher`], swapping sets through
//! [`crate::Engine::set_rules`] or [`crate::Engine::load_rules`].

mod case;
pub mod expr;
pub mod field;
pub mod file;
mod set;

use std::path::{Path, PathBuf};
use std::time::SystemTime;

pub use case::{BASE_SECS, Case};
pub use file::{Origin, Rule, Threshold};
pub use set::{RuleSet, Runtime};

/// One problem in a rule file, at a position a sysadmin can jump to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub path: PathBuf,
    pub line: u64,
    pub column: u64,
    pub message: String,
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.path.display(),
            self.line,
            self.column,
            self.message
        )
    }
}

/// Why a rules directory could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read rules from {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} problem(s) in rule files:\n{}", .0.len(), .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Diagnostic>),
}

/// Rule files under `dir`, recursively, in a stable order.
pub fn files(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let rd = std::fs::read_dir(&d).map_err(|source| Error::Io {
            path: d.clone(),
            source,
        })?;
        for entry in rd {
            let entry = entry.map_err(|source| Error::Io {
                path: d.clone(),
                source,
            })?;
            let p = entry.path();
            let ft = entry.file_type().map_err(|source| Error::Io {
                path: p.clone(),
                source,
            })?;
            if ft.is_dir() {
                stack.push(p);
            } else if matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")) {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Parses and checks one file's text.
pub fn parse_str(path: &Path, text: &str) -> Result<RuleSet, Error> {
    let mut diags = Vec::new();
    let rules = file::parse(path, text, &mut diags);
    finish(rules, diags)
}

/// The rule files built into heir: the source tree's `rules/` when it was built, as
/// (path under `rules/`, text).
const BUILT_IN: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/built_in.rs"));

/// Where built-in rules say they come from in diagnostics and listings.
pub const BUILT_IN_ROOT: &str = "built-in";

/// The rules built into heir, checked. They are tested with the source tree, so an error here
/// is a build defect, reported like any other rule file's.
pub fn built_in() -> Result<RuleSet, Error> {
    let mut diags = Vec::new();
    let mut rules = Vec::new();
    for (name, text) in BUILT_IN {
        let path = Path::new(BUILT_IN_ROOT).join(name);
        rules.extend(file::parse(&path, text, &mut diags));
    }
    for r in &mut rules {
        r.origin = Origin::BuiltIn;
    }
    finish(rules, diags)
}

/// Where a rule set is read from: optionally the built-in rules, then directories in order.
/// A rule in a later layer replaces an earlier rule with the same id; within one layer a
/// repeated id is an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sources {
    pub built_in: bool,
    /// Directories that do not exist are skipped: `/etc/heir/rules` is optional.
    pub dirs: Vec<PathBuf>,
}

impl Sources {
    /// One directory and nothing else (`heir rules check DIR`, tests).
    pub fn dir(dir: impl Into<PathBuf>) -> Self {
        Self {
            built_in: false,
            dirs: vec![dir.into()],
        }
    }

    /// The built-in rules, then these directories.
    pub fn built_in_and(dirs: Vec<PathBuf>) -> Self {
        Self {
            built_in: true,
            dirs,
        }
    }
}

/// Loads every layer of `sources`; any problem in any file rejects the whole set, so a
/// half-edited directory never replaces a working one.
pub fn load(sources: &Sources) -> Result<RuleSet, Error> {
    let mut set = if sources.built_in {
        built_in()?
    } else {
        RuleSet::default()
    };
    for dir in &sources.dirs {
        // Only a layer given alone must exist: an absent optional directory adds nothing.
        if sources.built_in && !dir.exists() {
            continue;
        }
        let layer = load_dir(dir)?;
        for rule in layer.rules {
            match set.rules.iter_mut().find(|r| r.id == rule.id) {
                Some(slot) => set.overridden.push(std::mem::replace(slot, rule)),
                None => set.rules.push(rule),
            }
        }
    }
    Ok(set)
}

/// Loads every rule file under `dir`; any problem in any file rejects the whole set, so a
/// half-edited directory never replaces a working one.
pub fn load_dir(dir: &Path) -> Result<RuleSet, Error> {
    let mut diags = Vec::new();
    let mut rules = Vec::new();
    for path in files(dir)? {
        let text = std::fs::read_to_string(&path).map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
        rules.extend(file::parse(&path, &text, &mut diags));
    }
    finish(rules, diags)
}

fn finish(rules: Vec<Rule>, mut diags: Vec<Diagnostic>) -> Result<RuleSet, Error> {
    let mut seen: std::collections::HashMap<&str, &Rule> = std::collections::HashMap::new();
    for r in &rules {
        if let Some(first) = seen.insert(&r.id, r) {
            diags.push(Diagnostic {
                path: r.file.clone(),
                line: r.line,
                column: 1,
                message: format!(
                    "duplicate rule id `{}` (first defined at {}:{})",
                    r.id,
                    first.file.display(),
                    first.line
                ),
            });
        }
    }
    if !diags.is_empty() {
        return Err(Error::Invalid(diags));
    }
    Ok(RuleSet {
        rules: rules.into_iter().map(std::sync::Arc::new).collect(),
        overridden: Vec::new(),
    })
}

/// `heir rules check`: the loaded set, or every problem found.
pub fn check(sources: &Sources) -> Result<RuleSet, Error> {
    load(sources)
}

/// The outcome of one inline test case.
#[derive(Debug, Clone)]
pub struct CaseResult {
    pub rule: String,
    pub file: PathBuf,
    pub line: u64,
    pub expect_fire: bool,
    pub alerts: usize,
}

impl CaseResult {
    pub fn passed(&self) -> bool {
        (self.alerts > 0) == self.expect_fire
    }
}

impl std::fmt::Display for CaseResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}:{} {} expected to {}, raised {} alert(s)",
            if self.passed() { "ok  " } else { "FAIL" },
            self.file.display(),
            self.line,
            self.rule,
            if self.expect_fire {
                "fire"
            } else {
                "stay quiet"
            },
            self.alerts
        )
    }
}

/// `heir rules test`: every rule's cases, each on a fresh runtime holding only that rule.
pub fn test_set(set: &RuleSet) -> Vec<CaseResult> {
    let mut results = Vec::new();
    for rule in &set.rules {
        for case in &rule.cases {
            let mut rt = Runtime::new(&RuleSet {
                rules: vec![rule.clone()],
                overridden: Vec::new(),
            });
            let mut out = Vec::new();
            for ev in &case.events {
                rt.inspect(ev, &mut out);
            }
            results.push(CaseResult {
                rule: rule.id.clone(),
                file: rule.file.clone(),
                line: case.line,
                expect_fire: case.expect_fire,
                alerts: out.len(),
            });
        }
    }
    results
}

/// Loads `sources` and runs every inline case.
pub fn test(sources: &Sources) -> Result<Vec<CaseResult>, Error> {
    Ok(test_set(&load(sources)?))
}

/// Notices changes to the rules directories of a [`Sources`] by polling names, sizes and
/// modification times: cheap enough for a once-a-second tick and free of platform watcher
/// quirks. A directory that appears later (a new `/etc/heir/rules`) counts as a change.
#[derive(Debug)]
pub struct Watcher {
    sources: Sources,
    stamp: Vec<(PathBuf, u64, Option<SystemTime>)>,
}

impl Watcher {
    /// Starts watching; the current contents count as seen.
    pub fn new(sources: Sources) -> Self {
        let stamp = Self::stamp(&sources);
        Self { sources, stamp }
    }

    pub fn sources(&self) -> &Sources {
        &self.sources
    }

    /// True once per change.
    pub fn changed(&mut self) -> bool {
        let now = Self::stamp(&self.sources);
        if now != self.stamp {
            self.stamp = now;
            true
        } else {
            false
        }
    }

    fn stamp(sources: &Sources) -> Vec<(PathBuf, u64, Option<SystemTime>)> {
        sources
            .dirs
            .iter()
            .flat_map(|d| files(d).unwrap_or_default())
            .map(|p| {
                let md = std::fs::metadata(&p).ok();
                let len = md.as_ref().map_or(0, |m| m.len());
                let mtime = md.and_then(|m| m.modified().ok());
                (p, len, mtime)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
