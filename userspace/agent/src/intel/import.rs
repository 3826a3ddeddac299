//! `heir import`: indicators from files the operator trusts (a STIX 2.1 bundle, a MISP event
//! or feed, a plain list) read all or nothing, and kept in the store beside the alerts, so
//! they are matched until the operator removes them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use heir_api::{ImportKind, Imported};
use heir_detect::known::{Known, Origin, Target};
use heir_mesh::{Item, Observable, Tlp};
use heir_model::{Category, Severity, Timestamp};

/// The store blob holding every imported indicator (JSON).
pub const BLOB: &str = "intel.imports";
/// The store blob listing imports made while the agent was stopped, which it hunts for in
/// the stored events when it starts.
pub const UNHUNTED: &str = "intel.unhunted";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: `{text}` is not an IP address, CIDR block, domain or http(s) URL")]
    Line {
        path: PathBuf,
        line: usize,
        text: String,
    },
    #[error("{path}")]
    Exchange {
        path: PathBuf,
        source: heir_mesh::exchange::Error,
    },
    #[error("{path}: {field}: {reason}")]
    Field {
        path: PathBuf,
        field: String,
        reason: String,
    },
    #[error("{path}: no indicator heir can match (IP addresses, blocks, domains, URLs)")]
    Empty { path: PathBuf },
    #[error("the store's imported indicators (blob `{BLOB}`)")]
    Stored { source: serde_json::Error },
    #[error("the store")]
    Store(#[from] heir_store::Error),
}

/// What a file does not say for itself (a plain list says nothing but the values).
#[derive(Debug, Clone)]
pub struct Options {
    /// For every indicator; a STIX or MISP file's own marking when absent, TLP:AMBER for a
    /// plain list.
    pub tlp: Option<Tlp>,
    pub category: Category,
    pub severity: Severity,
    pub confidence: u8,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            tlp: None,
            category: Category::KnownIndicator,
            severity: Severity::High,
            confidence: 80,
        }
    }
}

/// A file's indicators, and how many of its items heir cannot match in traffic (file hashes,
/// products, vulnerabilities: those belong to `heir vuln import` and the sensors' hashes).
#[derive(Debug)]
pub struct Parsed {
    pub indicators: Vec<Imported>,
    pub skipped: usize,
}

/// Reads `path`: a MISP feed (a directory holding `manifest.json`, or the manifest itself),
/// a STIX 2.1 bundle or MISP event (JSON), or a plain list (one IP, CIDR or domain — or an
/// http(s) URL — per line; `#` starts a comment). Any bad entry fails the whole file.
pub fn read(path: &Path, opts: &Options, now: Timestamp) -> Result<Parsed, Error> {
    let source = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    let mut out = Collect {
        opts,
        source,
        now,
        by_key: BTreeMap::new(),
        skipped: 0,
    };
    let manifest = if path.is_dir() {
        Some(path.join("manifest.json"))
    } else if path.file_name().is_some_and(|n| n == "manifest.json") {
        Some(path.to_owned())
    } else {
        None
    };
    if let Some(manifest) = manifest {
        misp_feed(&manifest, &mut out)?;
    } else {
        let text = read_text(path)?;
        if text.trim_start().starts_with('{') {
            let items = heir_mesh::exchange::import(&text).map_err(|source| Error::Exchange {
                path: path.to_owned(),
                source,
            })?;
            out.items(path, items)?;
        } else {
            out.list(path, &text)?;
        }
    }
    if out.by_key.is_empty() {
        return Err(Error::Empty {
            path: path.to_owned(),
        });
    }
    Ok(Parsed {
        indicators: out.by_key.into_values().collect(),
        skipped: out.skipped,
    })
}

fn read_text(path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_owned(),
        source,
    })
}

/// A MISP feed: a manifest naming events by UUID, each in `UUID.json` beside it.
fn misp_feed(manifest: &Path, out: &mut Collect) -> Result<(), Error> {
    let text = read_text(manifest)?;
    let field = |field: &str, reason: String| Error::Field {
        path: manifest.to_owned(),
        field: field.to_owned(),
        reason,
    };
    let events: BTreeMap<String, serde_json::Value> =
        serde_json::from_str(&text).map_err(|e| field("manifest", e.to_string()))?;
    let dir = manifest.parent().unwrap_or(Path::new("."));
    for uuid in events.keys() {
        // The names become paths: only a UUID may, so a hostile manifest reads nothing else.
        let is_uuid = uuid.len() == 36
            && uuid.bytes().enumerate().all(|(i, c)| {
                matches!(i, 8 | 13 | 18 | 23) == (c == b'-') && (c == b'-' || c.is_ascii_hexdigit())
            });
        if !is_uuid {
            return Err(field(uuid, "an event key must be a UUID".into()));
        }
        let event = dir.join(format!("{uuid}.json"));
        let items =
            heir_mesh::exchange::import(&read_text(&event)?).map_err(|source| Error::Exchange {
                path: event.clone(),
                source,
            })?;
        out.items(&event, items)?;
    }
    Ok(())
}

struct Collect<'a> {
    opts: &'a Options,
    source: String,
    now: Timestamp,
    /// Later entries for the same value replace earlier ones.
    by_key: BTreeMap<(ImportKind, String), Imported>,
    skipped: usize,
}

impl Collect<'_> {
    fn push(&mut self, kind: ImportKind, value: String, f: impl FnOnce(&mut Imported)) {
        let mut i = Imported {
            kind,
            value: value.clone(),
            category: self.opts.category,
            severity: self.opts.severity,
            confidence: self.opts.confidence.min(100),
            tlp: self.opts.tlp.unwrap_or(Tlp::Amber).label().to_owned(),
            attack: None,
            source: self.source.clone(),
            imported_at: self.now,
        };
        f(&mut i);
        self.by_key.insert((kind, value), i);
    }

    fn list(&mut self, path: &Path, text: &str) -> Result<(), Error> {
        for (n, line) in text.lines().enumerate() {
            let t = line.split('#').next().unwrap_or("").trim();
            if t.is_empty() {
                continue;
            }
            let (kind, value) = classify(t).ok_or_else(|| Error::Line {
                path: path.to_owned(),
                line: n + 1,
                text: t.chars().take(80).collect(),
            })?;
            self.push(kind, value, |_| {});
        }
        Ok(())
    }

    fn items(&mut self, path: &Path, items: Vec<Item>) -> Result<(), Error> {
        for item in items {
            let Item::Indicator(ind) = item else {
                self.skipped += 1;
                continue;
            };
            let (kind, value) = match &ind.observable {
                Observable::Ip(a) => (ImportKind::Ip, a.to_string()),
                Observable::Domain(d) | Observable::Url(d) => {
                    classify(d).ok_or_else(|| Error::Field {
                        path: path.to_owned(),
                        field: format!("indicator {}", ind.id),
                        reason: format!("`{d}` is not a domain or http(s) URL heir can match"),
                    })?
                }
                Observable::Sha256(_) | Observable::Product(_) => {
                    self.skipped += 1;
                    continue;
                }
            };
            let tlp = self.opts.tlp.unwrap_or(ind.tlp);
            self.push(kind, value, |i| {
                i.category = ind.category;
                i.severity = ind.severity;
                i.confidence = ind.confidence.min(100);
                i.tlp = tlp.label().to_owned();
                i.attack = ind.attack.clone();
            });
        }
        Ok(())
    }
}

/// What one written value is, normalised; `None` for anything else.
fn classify(t: &str) -> Option<(ImportKind, String)> {
    if let Ok(ip) = t.parse::<std::net::IpAddr>() {
        return Some((ImportKind::Ip, ip.to_string()));
    }
    if let Some((net, len)) = t.split_once('/')
        && let (Ok(net), Ok(len)) = (net.parse(), len.parse::<u8>())
    {
        return match Target::prefix(net, len)? {
            Target::Address(a) => Some((ImportKind::Ip, a.to_string())),
            Target::Prefix { net, len } => Some((ImportKind::Cidr, format!("{net}/{len}"))),
            _ => None,
        };
    }
    if t.contains("://") {
        Target::url(t)?;
        return Some((ImportKind::Url, t.to_owned()));
    }
    match Target::domain(t)? {
        Target::Domain(d) => Some((ImportKind::Domain, d)),
        _ => None,
    }
}

/// The matcher's key of an import.
pub fn id(i: &Imported) -> String {
    format!("import:{}:{}", i.kind.as_str(), i.value)
}

/// An import as the matcher needs it; `None` for a value that is not of its kind (a store
/// written by hand).
pub fn known(i: &Imported) -> Option<Known> {
    let target = match i.kind {
        ImportKind::Ip => Target::Address(i.value.parse().ok()?),
        ImportKind::Cidr => {
            let (net, len) = i.value.split_once('/')?;
            Target::prefix(net.parse().ok()?, len.parse().ok()?)?
        }
        ImportKind::Domain => Target::domain(&i.value)?,
        ImportKind::Url => Target::url(&i.value)?,
    };
    Some(Known {
        id: id(i),
        target,
        reported_as: i.category,
        reporters: vec![i.source.clone()],
        tlp: i.tlp.clone(),
        confidence: i.confidence.min(100),
        severity: i.severity,
        attack: i.attack.clone(),
        origin: Origin::Import,
    })
}

/// The indicator to publish for an import (`--share`), or why there is none.
pub fn shareable(i: &Imported) -> Result<heir_mesh::Indicator, String> {
    let tlp: Tlp = i
        .tlp
        .parse()
        .map_err(|_| format!("unknown TLP `{}`", i.tlp))?;
    if tlp == Tlp::Red {
        return Err("TLP:RED never leaves this hospital".into());
    }
    let observable = match i.kind {
        ImportKind::Ip => Observable::Ip(i.value.parse().map_err(|_| "not an address")?),
        ImportKind::Domain => Observable::Domain(i.value.clone()),
        ImportKind::Url => Observable::Url(i.value.clone()),
        ImportKind::Cidr => return Err("an address block has no shared form".into()),
    };
    let mut ind = heir_mesh::Indicator::new(observable, i.category, i.severity, i.imported_at);
    ind.confidence = i.confidence.min(100);
    ind.tlp = tlp;
    ind.attack = i.attack.clone();
    ind.rule = "intel.import".into();
    Ok(ind)
}

/// The imports the store holds.
pub fn stored(store: &impl heir_store::Read) -> Result<Vec<Imported>, Error> {
    match store.blob(BLOB)? {
        None => Ok(Vec::new()),
        Some(bytes) => serde_json::from_slice(&bytes).map_err(|source| Error::Stored { source }),
    }
}

/// Adds `new` to `all`, replacing entries for the same value: (added, replaced).
pub fn merge(all: &mut Vec<Imported>, new: &[Imported]) -> (usize, usize) {
    let mut by_key: BTreeMap<(ImportKind, String), Imported> = all
        .drain(..)
        .map(|i| ((i.kind, i.value.clone()), i))
        .collect();
    let before = by_key.len();
    for i in new {
        by_key.insert((i.kind, i.value.clone()), i.clone());
    }
    let added = by_key.len() - before;
    all.extend(by_key.into_values());
    (added, new.len() - added)
}

/// Stores `new` beside the imports already held, in one write: all or nothing.
pub fn store(
    store: &heir_store::Store,
    new: &[Imported],
    unhunted: bool,
) -> Result<(usize, usize), Error> {
    let mut all = stored(store)?;
    let counts = merge(&mut all, new);
    store.put_blob(BLOB, &serde_json::to_vec(&all).expect("imports serialise"))?;
    if unhunted {
        let mut ids = pending_hunts(store)?;
        ids.extend(new.iter().map(id));
        store.put_blob(UNHUNTED, &serde_json::to_vec(&ids).expect("ids serialise"))?;
    }
    Ok(counts)
}

/// Ids of imports not yet hunted for (made while the agent was stopped).
pub fn pending_hunts(store: &impl heir_store::Read) -> Result<Vec<String>, Error> {
    match store.blob(UNHUNTED)? {
        None => Ok(Vec::new()),
        Some(bytes) => serde_json::from_slice(&bytes).map_err(|source| Error::Stored { source }),
    }
}

/// An import as the API lists indicators.
pub fn listed(i: &Imported) -> heir_api::Indicator {
    heir_api::Indicator {
        id: id(i),
        kind: i.kind.as_str().to_owned(),
        value: i.value.clone(),
        category: i.category,
        confidence: f32::from(i.confidence) / 100.0,
        sources: vec![i.source.clone()],
        first_seen: i.imported_at,
        last_seen: i.imported_at,
        sightings: 0,
        device_model: None,
        origin: heir_api::IndicatorOrigin::Import,
        tlp: Some(i.tlp.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn a_plain_list_gives_addresses_blocks_domains_and_urls() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "c2.txt",
            "# known C2\n203.0.113.66\n198.51.100.0/24  # a hoster\n2001:db8::/32\n\
             C2.Example.NET.\nhttp://drop.example.org/x.bin?id=1\n192.0.2.1/32\n203.0.113.66\n",
        );
        let opts = Options {
            tlp: Some(Tlp::Green),
            ..Options::default()
        };
        let parsed = read(&p, &opts, Timestamp::from_secs(1)).unwrap();
        let got: Vec<(ImportKind, &str)> = parsed
            .indicators
            .iter()
            .map(|i| (i.kind, i.value.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (ImportKind::Ip, "192.0.2.1"),
                (ImportKind::Ip, "203.0.113.66"),
                (ImportKind::Cidr, "198.51.100.0/24"),
                (ImportKind::Cidr, "2001:db8::/32"),
                (ImportKind::Domain, "c2.example.net"),
                (ImportKind::Url, "http://drop.example.org/x.bin?id=1"),
            ]
        );
        for i in &parsed.indicators {
            assert_eq!((i.tlp.as_str(), i.source.as_str()), ("TLP:GREEN", "c2.txt"));
            let k = known(i).expect("every stored import matches something");
            assert_eq!(k.origin, Origin::Import);
        }
        // A block cannot be shared; RED never is.
        assert!(shareable(&parsed.indicators[2]).is_err());
        let mut red = parsed.indicators[1].clone();
        red.tlp = "TLP:RED".into();
        assert!(shareable(&red).unwrap_err().contains("RED"));
        assert!(shareable(&parsed.indicators[1]).is_ok());
    }

    #[test]
    fn one_bad_line_fails_the_file_by_name_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "list.txt", "203.0.113.66\n\n10.0.0.0/33\n");
        let e = read(&p, &Options::default(), Timestamp::from_secs(1)).unwrap_err();
        let msg = heir_mesh::report(&e);
        assert!(
            msg.contains("list.txt:3") && msg.contains("10.0.0.0/33"),
            "{msg}"
        );
        let p = write(dir.path(), "empty.txt", "# nothing\n\n");
        assert!(matches!(
            read(&p, &Options::default(), Timestamp::from_secs(1)),
            Err(Error::Empty { .. })
        ));
    }

    #[test]
    fn a_misp_feed_is_read_through_its_manifest_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let uuid = "5f1c4a1e-0b7c-4c1e-9d2e-2a6f0c3b9e11";
        let event = r#"{"Event":{"uuid":"5f1c4a1e-0b7c-4c1e-9d2e-2a6f0c3b9e11","info":"c2","date":"2026-11-30","timestamp":"1764460800","Tag":[{"name":"tlp:green"}],"Attribute":[{"uuid":"a1","type":"ip-dst","category":"Network activity","value":"203.0.113.66","timestamp":"1764460800"},{"uuid":"a2","type":"domain","category":"Network activity","value":"locker.example.net","timestamp":"1764460800"}]}}"#;
        write(dir.path(), &format!("{uuid}.json"), event);
        write(
            dir.path(),
            "manifest.json",
            &format!(r#"{{"{uuid}": {{"info": "c2", "timestamp": "1764460800"}}}}"#),
        );
        let parsed = read(dir.path(), &Options::default(), Timestamp::from_secs(1)).unwrap();
        let values: Vec<&str> = parsed.indicators.iter().map(|i| i.value.as_str()).collect();
        assert_eq!(values, ["203.0.113.66", "locker.example.net"]);
        // A manifest naming a path outside the feed is refused before anything is read.
        write(
            dir.path(),
            "manifest.json",
            r#"{"../../etc/passwd": {"info": "x"}}"#,
        );
        let msg = heir_mesh::report(
            &read(dir.path(), &Options::default(), Timestamp::from_secs(1)).unwrap_err(),
        );
        assert!(
            msg.contains("manifest.json") && msg.contains("UUID"),
            "{msg}"
        );
    }

    #[test]
    fn imports_merge_by_value() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "a.txt", "203.0.113.66\nc2.example.net\n");
        let first = read(&p, &Options::default(), Timestamp::from_secs(1)).unwrap();
        let p = write(dir.path(), "b.txt", "c2.example.net\n198.51.100.9\n");
        let second = read(&p, &Options::default(), Timestamp::from_secs(2)).unwrap();
        let mut all = first.indicators;
        assert_eq!(merge(&mut all, &second.indicators), (1, 1));
        assert_eq!(all.len(), 3);
        let c2 = all.iter().find(|i| i.value == "c2.example.net").unwrap();
        assert_eq!(c2.source, "b.txt", "the newer import's facts");
    }
}
