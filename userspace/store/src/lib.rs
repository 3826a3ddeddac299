//! heir's embedded store: one redb file under the data directory holding the event ring,
//! alerts with their acknowledgements, and named state blobs (RAMA, detector models).
//!
//! redb gives ACID transactions with copy-on-write commits, so a `kill -9` at any moment
//! loses nothing that was committed. Records are stored as JSON: the event model uses tagged
//! and flattened serde representations, which only self-describing formats can read back, and
//! JSON keeps the file inspectable with ordinary tools after export.

use std::path::{Path, PathBuf};
use std::time::Duration;

use heir_model::{Alert, Event, Timestamp};
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::Deserialize;

/// The schema this build writes. Older files are migrated on open; newer ones are refused.
pub const SCHEMA: u64 = 2;

const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
const ALERTS: TableDefinition<u64, &[u8]> = TableDefinition::new("alerts");
const BLOBS: TableDefinition<&str, &[u8]> = TableDefinition::new("blobs");
/// Since schema 2: the responder's audit log.
/// How far out of order stored events' stamps may be (see [`Read::events_between`]).
pub const ARRIVAL_SKEW: Duration = Duration::from_secs(60);
const AUDIT: TableDefinition<u64, &[u8]> = TableDefinition::new("audit");

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("opening the store {path}")]
    Open {
        path: PathBuf,
        source: Box<redb::DatabaseError>,
    },
    #[error(
        "store {path} is not a heir store (a redb file without heir's schema); it was left untouched"
    )]
    Foreign { path: PathBuf },
    #[error(
        "store {path} was written by a newer heir (schema {found}, this build reads up to {SCHEMA}); it was left untouched"
    )]
    Newer { path: PathBuf, found: u64 },
    #[error("store {path}: {what}")]
    Db {
        path: PathBuf,
        what: &'static str,
        source: Box<redb::Error>,
    },
    #[error("store {path}: record {key} in `{table}` is unreadable")]
    Record {
        path: PathBuf,
        table: &'static str,
        key: u64,
        source: serde_json::Error,
    },
}

/// How much of the event stream is kept.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Retention {
    /// Events kept at most.
    pub max_events: u64,
    /// Events older than this are dropped.
    #[serde(with = "secs")]
    pub max_age: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            max_events: 1_000_000,
            max_age: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

mod secs {
    use serde::{Deserialize, Deserializer};
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<std::time::Duration, D::Error> {
        u64::deserialize(d).map(std::time::Duration::from_secs)
    }
}

pub use heir_model::stored::{Ack, AuditEntry, StoredAlert};

pub struct Store {
    db: Database,
    path: PathBuf,
    retention: Retention,
}

/// The read side of the store, apart from the writes only the agent makes.
pub trait Read {
    #[doc(hidden)]
    fn parts(&self) -> (&dyn DynRead, &Path);

    /// The newest `limit` events, oldest first.
    fn recent_events(&self, limit: usize) -> Result<Vec<Event>, Error> {
        let (db, path) = self.parts();
        let rx = db.read().map_err(db_error(path, "reading events"))?;
        let t = rx
            .open_table(EVENTS)
            .map_err(db_error(path, "reading events"))?;
        let mut out = Vec::new();
        for item in t
            .iter()
            .map_err(db_error(path, "reading events"))?
            .rev()
            .take(limit)
        {
            let (k, v) = item.map_err(db_error(path, "reading events"))?;
            out.push(
                serde_json::from_slice(v.value()).map_err(|source| Error::Record {
                    path: path.to_owned(),
                    table: "events",
                    key: k.value(),
                    source,
                })?,
            );
        }
        out.reverse();
        Ok(out)
    }

    /// Visits the stored events stamped in `from..to`, newest first, and returns how many it
    /// visited. Events are stored as they arrive, so their stamps are nearly but not strictly
    /// ordered (two sensors batch apart): the walk ends at the first event older than `from`
    /// by more than [`ARRIVAL_SKEW`], having visited every one in range.
    fn events_between(
        &self,
        from: Timestamp,
        to: Timestamp,
        visit: &mut dyn FnMut(Event),
    ) -> Result<u64, Error> {
        let (db, path) = self.parts();
        let rx = db.read().map_err(db_error(path, "reading events"))?;
        let t = rx
            .open_table(EVENTS)
            .map_err(db_error(path, "reading events"))?;
        let stop = Timestamp::from_nanos(
            from.as_nanos()
                .saturating_sub(ARRIVAL_SKEW.as_nanos() as u64),
        );
        let mut n = 0;
        for item in t.iter().map_err(db_error(path, "reading events"))?.rev() {
            let (k, v) = item.map_err(db_error(path, "reading events"))?;
            let ev: Event = serde_json::from_slice(v.value()).map_err(|source| Error::Record {
                path: path.to_owned(),
                table: "events",
                key: k.value(),
                source,
            })?;
            if ev.ts < stop {
                break;
            }
            if ev.ts >= from && ev.ts < to {
                n += 1;
                visit(ev);
            }
        }
        Ok(n)
    }

    fn event_count(&self) -> Result<u64, Error> {
        let (db, path) = self.parts();
        let rx = db.read().map_err(db_error(path, "counting events"))?;
        let t = rx
            .open_table(EVENTS)
            .map_err(db_error(path, "counting events"))?;
        t.len().map_err(db_error(path, "counting events"))
    }

    /// Alerts with a sequence number above `after`, oldest first, at most `limit`.
    fn alerts(&self, after: u64, limit: usize) -> Result<Vec<StoredAlert>, Error> {
        let (db, path) = self.parts();
        let rx = db.read().map_err(db_error(path, "reading alerts"))?;
        let t = rx
            .open_table(ALERTS)
            .map_err(db_error(path, "reading alerts"))?;
        let mut out = Vec::new();
        for item in t
            .range(after + 1..)
            .map_err(db_error(path, "reading alerts"))?
            .take(limit)
        {
            let (k, v) = item.map_err(db_error(path, "reading alerts"))?;
            out.push(decode_alert(path, k.value(), v.value())?);
        }
        Ok(out)
    }

    /// The audit log, oldest first.
    fn audit(&self) -> Result<Vec<AuditEntry>, Error> {
        let (db, path) = self.parts();
        let rx = db.read().map_err(db_error(path, "reading the audit log"))?;
        let t = rx
            .open_table(AUDIT)
            .map_err(db_error(path, "reading the audit log"))?;
        let mut out = Vec::new();
        for item in t.iter().map_err(db_error(path, "reading the audit log"))? {
            let (k, v) = item.map_err(db_error(path, "reading the audit log"))?;
            out.push(
                serde_json::from_slice(v.value()).map_err(|source| Error::Record {
                    path: path.to_owned(),
                    table: "audit",
                    key: k.value(),
                    source,
                })?,
            );
        }
        Ok(out)
    }

    fn blob(&self, name: &str) -> Result<Option<Vec<u8>>, Error> {
        let (db, path) = self.parts();
        let rx = db.read().map_err(db_error(path, "reading state"))?;
        let t = rx
            .open_table(BLOBS)
            .map_err(db_error(path, "reading state"))?;
        Ok(t.get(name)
            .map_err(db_error(path, "reading state"))?
            .map(|v| v.value().to_vec()))
    }
}

/// Object-safe access to a read transaction of either database kind.
#[doc(hidden)]
pub trait DynRead {
    fn read(&self) -> Result<redb::ReadTransaction, redb::TransactionError>;
}

impl DynRead for Database {
    fn read(&self) -> Result<redb::ReadTransaction, redb::TransactionError> {
        self.begin_read()
    }
}

impl Read for Store {
    fn parts(&self) -> (&dyn DynRead, &Path) {
        (&self.db, &self.path)
    }
}

fn db_error<'a, E: Into<redb::Error>>(
    path: &'a Path,
    what: &'static str,
) -> impl FnOnce(E) -> Error + 'a {
    move |e| Error::Db {
        path: path.to_owned(),
        what,
        source: Box::new(e.into()),
    }
}

fn decode_alert(path: &Path, key: u64, bytes: &[u8]) -> Result<StoredAlert, Error> {
    serde_json::from_slice(bytes).map_err(|source| Error::Record {
        path: path.to_owned(),
        table: "alerts",
        key,
        source,
    })
}

/// The page cache the store may hold in memory. redb's default (1 GiB) is more than a
/// gateway has to spare: under an event flood the agent's memory would grow to it. Recent
/// pages are what writers and the live views touch; 64 MiB holds them.
const CACHE_BYTES: usize = 64 * 1024 * 1024;

impl Store {
    /// Opens (or creates) the store at `path`. A file that is not a heir store, or one written
    /// by a newer schema, is refused and left as it was.
    pub fn open(path: &Path, retention: Retention) -> Result<Store, Error> {
        let existed = path.metadata().map(|m| m.len() > 0).unwrap_or(false);
        if existed {
            // Look before opening for writing: a writable open may update the file's header,
            // and a file that is not ours must stay exactly as it was.
            inspect(path)?;
        }
        let db = Database::builder()
            .set_check_integrity_on_open(true)
            .set_cache_size(CACHE_BYTES)
            .create(path)
            .map_err(|source| Error::Open {
                path: path.to_owned(),
                source: Box::new(source),
            })?;
        let store = Store {
            db,
            path: path.to_owned(),
            retention,
        };
        store.check_schema()?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn db_err<E: Into<redb::Error>>(&self, what: &'static str) -> impl FnOnce(E) -> Error + '_ {
        move |e| Error::Db {
            path: self.path.clone(),
            what,
            source: Box::new(e.into()),
        }
    }

    fn check_schema(&self) -> Result<(), Error> {
        let found = {
            let rx = self
                .db
                .begin_read()
                .map_err(self.db_err("reading schema"))?;
            match rx.open_table(META) {
                Ok(t) => t
                    .get("schema")
                    .map_err(self.db_err("reading schema"))?
                    .map(|v| v.value()),
                Err(redb::TableError::TableDoesNotExist(_)) => None,
                Err(e) => return Err(self.db_err("reading schema")(e)),
            }
        };
        match found {
            Some(v) if v > SCHEMA => Err(Error::Newer {
                path: self.path.clone(),
                found: v,
            }),
            Some(v) if v == SCHEMA => Ok(()),
            Some(v) => self.migrate(v),
            None if self.has_tables()? => Err(Error::Foreign {
                path: self.path.clone(),
            }),
            None => self.migrate(0),
        }
    }

    fn has_tables(&self) -> Result<bool, Error> {
        let rx = self
            .db
            .begin_read()
            .map_err(self.db_err("listing tables"))?;
        Ok(rx
            .list_tables()
            .map_err(self.db_err("listing tables"))?
            .next()
            .is_some())
    }

    /// Brings a store at schema `from` to [`SCHEMA`], one step per version, in one transaction.
    fn migrate(&self, from: u64) -> Result<(), Error> {
        let tx = self.db.begin_write().map_err(self.db_err("migrating"))?;
        {
            if from < 1 {
                tx.open_table(EVENTS).map_err(self.db_err("migrating"))?;
                tx.open_table(ALERTS).map_err(self.db_err("migrating"))?;
                tx.open_table(BLOBS).map_err(self.db_err("migrating"))?;
            }
            if from < 2 {
                tx.open_table(AUDIT).map_err(self.db_err("migrating"))?;
            }
            let mut meta = tx.open_table(META).map_err(self.db_err("migrating"))?;
            meta.insert("schema", SCHEMA)
                .map_err(self.db_err("migrating"))?;
        }
        tx.commit().map_err(self.db_err("migrating"))
    }

    /// Appends events and applies retention, in one transaction.
    pub fn append_events(&self, events: &[Event]) -> Result<(), Error> {
        if events.is_empty() {
            return Ok(());
        }
        let e = self.db_err("appending events");
        let tx = self
            .db
            .begin_write()
            .map_err(self.db_err("appending events"))?;
        {
            let mut t = tx
                .open_table(EVENTS)
                .map_err(self.db_err("appending events"))?;
            let first = t
                .last()
                .map_err(self.db_err("appending events"))?
                .map(|(k, _)| k.value() + 1)
                .unwrap_or(0);
            for (seq, ev) in (first..).zip(events) {
                let bytes = serde_json::to_vec(ev).expect("events serialise");
                t.insert(seq, bytes.as_slice())
                    .map_err(self.db_err("appending events"))?;
            }
            self.prune(&mut t, events.last().map(|e| e.ts).unwrap_or_default())?;
        }
        tx.commit().map_err(e)
    }

    fn prune(&self, t: &mut redb::Table<u64, &[u8]>, now: Timestamp) -> Result<(), Error> {
        let len = t.len().map_err(self.db_err("pruning events"))?;
        let mut excess = len.saturating_sub(self.retention.max_events);
        let cutoff = now
            .as_nanos()
            .saturating_sub(self.retention.max_age.as_nanos() as u64);
        loop {
            let Some((k, v)) = t.first().map_err(self.db_err("pruning events"))? else {
                break;
            };
            let key = k.value();
            let old = excess > 0 || {
                let ev: Event =
                    serde_json::from_slice(v.value()).map_err(|source| Error::Record {
                        path: self.path.clone(),
                        table: "events",
                        key,
                        source,
                    })?;
                ev.ts.as_nanos() < cutoff
            };
            drop((k, v));
            if !old {
                break;
            }
            t.remove(key).map_err(self.db_err("pruning events"))?;
            excess = excess.saturating_sub(1);
        }
        Ok(())
    }

    /// Stores alerts; returns their sequence numbers. Committed (durable) on return.
    pub fn append_alerts(&self, alerts: &[Alert]) -> Result<Vec<u64>, Error> {
        let tx = self
            .db
            .begin_write()
            .map_err(self.db_err("appending alerts"))?;
        let mut seqs = Vec::with_capacity(alerts.len());
        {
            let mut t = tx
                .open_table(ALERTS)
                .map_err(self.db_err("appending alerts"))?;
            let first = t
                .last()
                .map_err(self.db_err("appending alerts"))?
                .map(|(k, _)| k.value() + 1)
                .unwrap_or(1);
            for (seq, a) in (first..).zip(alerts) {
                let stored = StoredAlert {
                    seq,
                    acknowledged: None,
                    alert: a.clone(),
                };
                let bytes = serde_json::to_vec(&stored).expect("alerts serialise");
                t.insert(seq, bytes.as_slice())
                    .map_err(self.db_err("appending alerts"))?;
                seqs.push(seq);
            }
        }
        tx.commit().map_err(self.db_err("appending alerts"))?;
        Ok(seqs)
    }

    /// Acknowledges alert `seq`. Returns false when there is no such alert.
    pub fn acknowledge(&self, seq: u64, by: &str, at: Timestamp) -> Result<bool, Error> {
        let tx = self
            .db
            .begin_write()
            .map_err(self.db_err("acknowledging"))?;
        let found = {
            let mut t = tx
                .open_table(ALERTS)
                .map_err(self.db_err("acknowledging"))?;
            let current = t
                .get(seq)
                .map_err(self.db_err("acknowledging"))?
                .map(|v| decode_alert(&self.path, seq, v.value()))
                .transpose()?;
            match current {
                Some(mut stored) => {
                    stored.acknowledged = Some(Ack {
                        at,
                        by: by.to_owned(),
                    });
                    let bytes = serde_json::to_vec(&stored).expect("alerts serialise");
                    t.insert(seq, bytes.as_slice())
                        .map_err(self.db_err("acknowledging"))?;
                    true
                }
                None => false,
            }
        };
        tx.commit().map_err(self.db_err("acknowledging"))?;
        Ok(found)
    }

    /// Appends one audit entry, durably; returns its sequence number.
    pub fn append_audit(&self, entry: &AuditEntry) -> Result<u64, Error> {
        let tx = self.db.begin_write().map_err(self.db_err("auditing"))?;
        let seq = {
            let mut t = tx.open_table(AUDIT).map_err(self.db_err("auditing"))?;
            let seq = t
                .last()
                .map_err(self.db_err("auditing"))?
                .map(|(k, _)| k.value() + 1)
                .unwrap_or(1);
            let bytes = serde_json::to_vec(entry).expect("audit entries serialise");
            t.insert(seq, bytes.as_slice())
                .map_err(self.db_err("auditing"))?;
            seq
        };
        tx.commit().map_err(self.db_err("auditing"))?;
        Ok(seq)
    }

    /// Saves a named state blob (RAMA state, detector models), replacing the previous one.
    pub fn put_blob(&self, name: &str, bytes: &[u8]) -> Result<(), Error> {
        let tx = self.db.begin_write().map_err(self.db_err("saving state"))?;
        {
            let mut t = tx.open_table(BLOBS).map_err(self.db_err("saving state"))?;
            t.insert(name, bytes).map_err(self.db_err("saving state"))?;
        }
        tx.commit().map_err(self.db_err("saving state"))
    }
}

/// Checks, read-only, that an existing file is a heir store this build can open.
fn inspect(path: &Path) -> Result<(), Error> {
    let db_err = |what: &'static str| {
        move |e: redb::Error| Error::Db {
            path: path.to_owned(),
            what,
            source: Box::new(e),
        }
    };
    let db = match redb::ReadOnlyDatabase::open(path) {
        Ok(db) => db,
        // Not shut down cleanly (a crash, a kill -9): only a writable open can repair it, and
        // the schema is checked again after that.
        Err(redb::DatabaseError::RepairAborted) => return Ok(()),
        Err(source) => {
            return Err(Error::Open {
                path: path.to_owned(),
                source: Box::new(source),
            });
        }
    };
    let rx = db
        .begin_read()
        .map_err(|e| db_err("inspecting")(e.into()))?;
    let schema = match rx.open_table(META) {
        Ok(t) => t
            .get("schema")
            .map_err(|e| db_err("inspecting")(e.into()))?
            .map(|v| v.value()),
        Err(redb::TableError::TableDoesNotExist(_)) => None,
        Err(e) => return Err(db_err("inspecting")(e.into())),
    };
    let has_tables = rx
        .list_tables()
        .map_err(|e| db_err("inspecting")(e.into()))?
        .next()
        .is_some();
    match schema {
        Some(found) if found > SCHEMA => Err(Error::Newer {
            path: path.to_owned(),
            found,
        }),
        None if has_tables => Err(Error::Foreign {
            path: path.to_owned(),
        }),
        _ => Ok(()),
    }
}
