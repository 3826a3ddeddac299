//! What heir knows offline about device models and vulnerabilities, and how it matches them to
//! devices.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::clinical;
use crate::import::{self, Format, csaf, kev, mds2, sbom};
use crate::inventory::Device;
use crate::vuln::{self, Feed, Remediation, Target, Vulnerability, normalise, purl_base};

/// What one import added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Imported {
    Sbom {
        model: String,
        components: usize,
    },
    Mds2 {
        model: String,
        answers: usize,
    },
    Vulnerabilities {
        feed: Format,
        count: usize,
    },
    Kev {
        count: usize,
    },
    /// A CSAF advisory, replacing what an earlier import of the same advisory id said.
    Advisory {
        id: String,
        title: String,
        vulnerabilities: usize,
    },
    /// A directory: every file, in the order imported.
    Batch(Vec<(PathBuf, Imported)>),
}

impl std::fmt::Display for Imported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Imported::Sbom { model, components } => {
                write!(f, "SBOM for {model}: {components} components")
            }
            Imported::Mds2 { model, answers } => write!(f, "MDS2 for {model}: {answers} answers"),
            Imported::Vulnerabilities { feed, count } => {
                let feed = if *feed == Format::Nvd { "NVD" } else { "OSV" };
                write!(f, "{count} vulnerabilities ({feed})")
            }
            Imported::Kev { count } => write!(f, "{count} known exploited vulnerabilities"),
            Imported::Advisory {
                id,
                title,
                vulnerabilities,
            } => write!(
                f,
                "advisory {id} ({title}): {vulnerabilities} vulnerabilities"
            ),
            Imported::Batch(items) => {
                // One line per kind: a directory of 124 advisories is one summary, not 124.
                let mut kinds: BTreeMap<&str, (usize, usize, &str)> = BTreeMap::new();
                for (_, i) in items {
                    let (kind, n, unit) = match i {
                        Imported::Sbom { components, .. } => ("SBOMs", *components, "components"),
                        Imported::Mds2 { answers, .. } => ("MDS2 forms", *answers, "answers"),
                        Imported::Vulnerabilities { count, .. } => {
                            ("vulnerability feeds", *count, "vulnerabilities")
                        }
                        Imported::Kev { count } => ("KEV lists", *count, "entries"),
                        Imported::Advisory {
                            vulnerabilities, ..
                        } => ("advisories", *vulnerabilities, "vulnerabilities"),
                        Imported::Batch(_) => ("directories", 0, "files"),
                    };
                    let e = kinds.entry(kind).or_insert((0, 0, unit));
                    e.0 += 1;
                    e.1 += n;
                }
                let parts: Vec<String> = kinds
                    .iter()
                    .map(|(kind, (files, n, unit))| format!("{files} {kind} ({n} {unit})"))
                    .collect();
                write!(f, "{} files: {}", items.len(), parts.join(", "))
            }
        }
    }
}

/// A file read and checked but not yet stored, so a directory can be refused whole.
enum Parsed {
    Sbom(sbom::Sbom),
    Mds2(mds2::Form),
    Vulnerabilities(Format, Vec<Vulnerability>),
    Kev(BTreeMap<String, kev::Entry>),
    Advisory(csaf::Advisory),
}

/// A vulnerability found on a device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Match {
    /// The CVE id when there is one.
    pub id: String,
    /// The component (or firmware) and version that matched.
    pub component: String,
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vector: Option<clinical::Vector>,
    /// Listed in CISA KEV (or marked exploited by the feed).
    pub exploited: bool,
    /// KEV says ransomware campaigns use it.
    pub ransomware: bool,
    /// The lowest version that fixes it, when the feed says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed_in: Option<String>,
    /// The advisories that list it for this device's product (CSAF tracking ids).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub advisories: Vec<String>,
    /// What those advisories tell operators of this product to do, each with its advisory.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remediations: Vec<Remediation>,
    /// Every record that lists it for this device, whichever feed: the same CVE from an
    /// advisory, OSV and NVD is one match with three sources.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<Source>,
}

/// A record that reported a match: its feed and its id there (the advisory's tracking id for
/// CSAF, the record id for OSV and NVD).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    pub feed: Feed,
    pub id: String,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.feed {
            Feed::Csaf => f.write_str(&self.id),
            Feed::Osv => write!(f, "OSV {}", self.id),
            Feed::Nvd => write!(f, "NVD {}", self.id),
        }
    }
}

impl Match {
    /// The remediation to propose first (see [`vuln::preferred`]).
    pub fn preferred_remediation(&self) -> Option<&Remediation> {
        vuln::preferred(&self.remediations)
    }
}

/// The knowledge base. Serialisable so the agent can keep it in its store.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Knowledge {
    sboms: BTreeMap<String, sbom::Sbom>,
    forms: BTreeMap<String, mds2::Form>,
    vulns: BTreeMap<String, Vulnerability>,
    kev: BTreeMap<String, kev::Entry>,
    /// Match key → (vulnerability id, affected index). Rebuilt after each import.
    #[serde(skip)]
    index: HashMap<String, Vec<(String, usize)>>,
}

impl Knowledge {
    /// Imports one file, recognised by content, or every knowledge file of a directory (see
    /// [`import::files_in`]). All or nothing: on error nothing changes, and for a directory
    /// every file is parsed before any is stored, so one bad file refuses the directory.
    pub fn import(&mut self, path: &Path) -> Result<Imported, import::Error> {
        if path.is_dir() {
            return self.import_dir(path);
        }
        let bytes = import::read(path)?;
        self.import_bytes(path, &bytes)
    }

    pub fn import_dir(&mut self, dir: &Path) -> Result<Imported, import::Error> {
        let mut parsed = Vec::new();
        for file in import::files_in(dir)? {
            let bytes = import::read(&file)?;
            let format = Format::detect(&file, &bytes)?;
            let p = parse(format, &file, &bytes)?;
            parsed.push((file, p));
        }
        let done = parsed
            .into_iter()
            .map(|(file, p)| {
                let i = self.store(p);
                (file, i)
            })
            .collect();
        self.reindex();
        Ok(Imported::Batch(done))
    }

    pub fn import_bytes(&mut self, file: &Path, bytes: &[u8]) -> Result<Imported, import::Error> {
        let format = Format::detect(file, bytes)?;
        self.import_as(format, file, bytes)
    }

    pub fn import_as(
        &mut self,
        format: Format,
        file: &Path,
        bytes: &[u8],
    ) -> Result<Imported, import::Error> {
        let p = parse(format, file, bytes)?;
        let vulns = matches!(p, Parsed::Vulnerabilities(..) | Parsed::Advisory(_));
        let imported = self.store(p);
        if vulns {
            self.reindex();
        }
        Ok(imported)
    }

    /// Stores a parsed file; the caller reindexes. Cannot fail: everything was checked.
    fn store(&mut self, p: Parsed) -> Imported {
        match p {
            Parsed::Sbom(s) => {
                let r = Imported::Sbom {
                    model: s.model.clone(),
                    components: s.components.len(),
                };
                self.sboms.insert(normalise(&s.model), s);
                r
            }
            Parsed::Mds2(m) => {
                let r = Imported::Mds2 {
                    model: m.model.clone(),
                    answers: m.answers.len(),
                };
                self.forms.insert(normalise(&m.model), m);
                r
            }
            Parsed::Vulnerabilities(feed, list) => {
                let count = list.len();
                for v in list {
                    self.vulns.insert(v.id.clone(), v);
                }
                Imported::Vulnerabilities { feed, count }
            }
            Parsed::Kev(k) => {
                let count = k.len();
                self.kev.extend(k);
                Imported::Kev { count }
            }
            Parsed::Advisory(a) => {
                // A revised advisory replaces the earlier one whole: CVEs it no longer lists
                // go too.
                self.vulns
                    .retain(|_, v| v.advisory.as_deref() != Some(a.id.as_str()));
                let r = Imported::Advisory {
                    id: a.id.clone(),
                    title: a.title.clone(),
                    vulnerabilities: a.vulnerabilities.len(),
                };
                for v in a.vulnerabilities {
                    self.vulns.insert(v.id.clone(), v);
                }
                r
            }
        }
    }

    /// Rebuilds the lookup index (after deserialising a stored knowledge base).
    pub fn reindex(&mut self) {
        self.index.clear();
        for (id, v) in &self.vulns {
            for (i, a) in v.affected.iter().enumerate() {
                for key in target_keys(&a.target) {
                    self.index.entry(key).or_default().push((id.clone(), i));
                }
            }
        }
    }

    pub fn sbom(&self, model: &str) -> Option<&sbom::Sbom> {
        self.sboms.get(&normalise(model))
    }

    pub fn mds2(&self, model: &str) -> Option<&mds2::Form> {
        self.forms.get(&normalise(model))
    }

    pub fn vulnerability(&self, id: &str) -> Option<&Vulnerability> {
        self.vulns.get(id)
    }

    pub fn vulnerability_count(&self) -> usize {
        self.vulns.len()
    }

    pub fn kev(&self, cve: &str) -> Option<&kev::Entry> {
        self.kev.get(cve)
    }

    /// The device's components: its model's SBOM plus its firmware as a component of its own.
    pub fn components(&self, dev: &Device) -> Vec<sbom::Component> {
        let mut out = Vec::new();
        if let Some(model) = dev.model() {
            if let Some(s) = self.sbom(model) {
                out.extend(s.components.iter().cloned());
            }
            if let Some(fw) = dev.firmware() {
                out.push(sbom::Component {
                    name: model.to_owned(),
                    version: Some(fw.to_owned()),
                    purl: None,
                    cpe: None,
                });
            }
        }
        out
    }

    /// Known vulnerabilities of the device's components and firmware, minus those the registry
    /// marks mitigated; one entry per vulnerability (feeds agreeing on a CVE count once).
    pub fn matches(&self, dev: &Device) -> Vec<Match> {
        let mut found: BTreeMap<String, Match> = BTreeMap::new();
        for c in self.components(dev) {
            let Some(version) = c.version.as_deref() else {
                continue;
            };
            let mut candidates: Vec<&(String, usize)> = component_keys(&c)
                .iter()
                .filter_map(|k| self.index.get(k))
                .flatten()
                .collect();
            candidates.sort();
            candidates.dedup();
            for (id, ai) in candidates {
                let v = &self.vulns[id];
                let a = &v.affected[*ai];
                if !target_matches(&a.target, &c) || !a.covers(version) {
                    continue;
                }
                if v.ids().any(|i| dev.is_mitigated(i)) {
                    continue;
                }
                let kev = v.ids().find_map(|i| self.kev.get(i));
                let source = Source {
                    feed: v.feed,
                    id: v.advisory.clone().unwrap_or_else(|| v.id.clone()),
                };
                let m = Match {
                    id: v.canonical_id().to_owned(),
                    component: c.name.clone(),
                    version: version.to_owned(),
                    vector: v.preferred_vector().cloned(),
                    exploited: v.exploited || kev.is_some(),
                    ransomware: kev.is_some_and(|k| k.ransomware),
                    fixed_in: a.fixed_after(version).map(str::to_owned),
                    advisories: v.advisory.iter().cloned().collect(),
                    remediations: a
                        .remediations
                        .iter()
                        .map(|r| Remediation {
                            advisory: r.advisory.clone().or_else(|| v.advisory.clone()),
                            ..r.clone()
                        })
                        .collect(),
                    sources: vec![source],
                };
                found
                    .entry(m.id.clone())
                    .and_modify(|prev| {
                        prev.exploited |= m.exploited;
                        prev.ransomware |= m.ransomware;
                        if prev.vector.is_none() {
                            prev.vector.clone_from(&m.vector);
                        }
                        if prev.fixed_in.is_none() {
                            prev.fixed_in.clone_from(&m.fixed_in);
                        }
                        for a in &m.advisories {
                            if !prev.advisories.contains(a) {
                                prev.advisories.push(a.clone());
                            }
                        }
                        for r in &m.remediations {
                            if !prev.remediations.contains(r) {
                                prev.remediations.push(r.clone());
                            }
                        }
                        for s in &m.sources {
                            if !prev.sources.contains(s) {
                                prev.sources.push(s.clone());
                            }
                        }
                    })
                    .or_insert(m);
            }
        }
        found.into_values().collect()
    }
}

/// Parses and checks one file of a known format, storing nothing.
fn parse(format: Format, file: &Path, bytes: &[u8]) -> Result<Parsed, import::Error> {
    Ok(match format {
        Format::CycloneDx => Parsed::Sbom(sbom::parse(file, bytes)?),
        Format::Mds2 => Parsed::Mds2(mds2::parse(file, bytes)?),
        Format::Osv => Parsed::Vulnerabilities(format, import::osv::parse(file, bytes)?),
        Format::Nvd => Parsed::Vulnerabilities(format, import::nvd::parse(file, bytes)?),
        Format::Kev => Parsed::Kev(kev::parse(file, bytes)?),
        Format::Csaf => Parsed::Advisory(csaf::parse(file, bytes)?),
    })
}

fn target_keys(t: &Target) -> Vec<String> {
    match t {
        Target::Package { name, purl, .. } => {
            let mut k = vec![format!("name:{}", normalise(name))];
            if let Some(p) = purl {
                k.push(format!("purl:{}", purl_base(p)));
            }
            k
        }
        Target::Cpe { product, .. } => {
            let p = normalise(product);
            let mut k = vec![format!("name:{p}")];
            if let Some(stem) = p.strip_suffix("-firmware") {
                k.push(format!("name:{stem}"));
            }
            k
        }
    }
}

fn component_keys(c: &sbom::Component) -> Vec<String> {
    let mut k = vec![format!("name:{}", normalise(&c.name))];
    if let Some(p) = &c.purl {
        k.push(format!("purl:{}", purl_base(p)));
    }
    if let Some((_, product, _)) = c.cpe.as_deref().and_then(vuln::cpe_parts) {
        k.push(format!("name:{}", normalise(product)));
    }
    k
}

fn target_matches(t: &Target, c: &sbom::Component) -> bool {
    match t {
        Target::Package { name, purl, .. } => match (purl, &c.purl) {
            (Some(a), Some(b)) => purl_base(a) == purl_base(b),
            _ => normalise(name) == normalise(&c.name),
        },
        Target::Cpe { vendor, product } => match c.cpe.as_deref().and_then(vuln::cpe_parts) {
            Some((cv, cp, _)) => {
                normalise(cv) == normalise(vendor) && normalise(cp) == normalise(product)
            }
            None => {
                let p = normalise(product);
                let n = normalise(&c.name);
                p == n || p.strip_suffix("-firmware") == Some(n.as_str())
            }
        },
    }
}
