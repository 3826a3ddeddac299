//! The responder: what the agent does about an alert that names an attacker's address.
//!
//! `observe` only records; `ask` proposes a block that an operator approves or denies (API,
//! TUI); `auto` blocks in the kernel at once, for a limited time. The mode is chosen per
//! category, and only alerts at or above the configured severity and confidence are acted on.
//! Nothing can block a protected device (the tables refuse it), loopback or an unspecified
//! address; every decision is written to the store's audit log.
//!
//! Indicators from the other hospitals are a separate input with their own mode (`mesh`):
//! the mesh only hands over indicators the consortium corroborated enough (see
//! `heir_mesh::knowledge::Entry::actionable`), and the same protected list holds for them.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use heir_api::Chain;
use heir_model::{Alert, Category, Severity, Timestamp};
use heir_store::{AuditEntry, Store};
use serde::Deserialize;

use super::{Origin, SystemClock, Tables, Target};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Observe,
    Ask,
    Auto,
}

/// `[respond]` in the configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The mode for categories without their own.
    pub mode: Mode,
    /// Per-category modes, e.g. `{ port_scan = "auto", brute_force = "ask" }`.
    pub categories: BTreeMap<Category, Mode>,
    pub min_severity: Severity,
    pub min_confidence: f32,
    /// How long an automatic or approved block lasts.
    pub ttl_secs: u64,
    /// What to do with an attacker address the other hospitals corroborated.
    pub mesh: Mode,
    /// Addresses and prefixes no block may ever reach (the EHR, the PACS, a partner's
    /// link), beside the registry's protected devices.
    #[serde(deserialize_with = "targets")]
    pub never_block: Vec<Target>,
    /// Also never block the host's own infrastructure: its default gateways, the resolvers
    /// in resolv.conf, its NTP servers and the mesh's bootstrap peers.
    pub protect_infrastructure: bool,
}

fn targets<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Target>, D::Error> {
    let raw = Vec::<String>::deserialize(d)?;
    raw.iter()
        .map(|s| s.parse::<Target>().map_err(serde::de::Error::custom))
        .collect()
}

impl Default for Config {
    fn default() -> Self {
        Config {
            mode: Mode::Observe,
            categories: BTreeMap::new(),
            min_severity: Severity::High,
            min_confidence: 0.8,
            ttl_secs: 3600,
            mesh: Mode::Observe,
            never_block: Vec::new(),
            protect_infrastructure: true,
        }
    }
}

/// What the responder did with an alert.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Nothing to act on (no attacker address, below thresholds, or observe mode).
    None,
    /// Waiting for an operator: the pending id.
    Proposed(String),
    Blocked(IpAddr),
    /// The tables said no (a protected device) or failed.
    Refused(String),
}

/// A block waiting for an operator.
#[derive(Debug, Clone)]
pub struct Pending {
    pub id: String,
    pub addr: IpAddr,
    pub reason: String,
    pub category: Category,
    pub severity: Severity,
    pub confidence: f32,
    pub requested: Timestamp,
}

pub struct Responder {
    config: Config,
    pin_dir: PathBuf,
    tables: Mutex<Option<Tables>>,
    pending: Mutex<BTreeMap<String, Pending>>,
    store: Arc<Store>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no pending block `{0}`")]
    NoPending(String),
    #[error(transparent)]
    Tables(#[from] super::blocklist::Error),
    #[error(transparent)]
    Store(#[from] heir_store::Error),
}

impl Responder {
    pub fn new(config: Config, pin_dir: &Path, store: Arc<Store>) -> Responder {
        Responder {
            config,
            pin_dir: pin_dir.to_owned(),
            tables: Mutex::new(None),
            pending: Mutex::new(BTreeMap::new()),
            store,
        }
    }

    fn with_tables<T>(
        &self,
        f: impl FnOnce(&mut Tables) -> Result<T, super::blocklist::Error>,
    ) -> Result<T, Error> {
        let mut guard = self.tables.lock().expect("tables lock");
        if guard.is_none() {
            *guard = Some(Tables::open(&self.pin_dir)?);
        }
        Ok(f(guard.as_mut().expect("opened above"))?)
    }

    fn audit(&self, action: &str, target: &str, reason: &str, actor: &str, outcome: &str) {
        let entry = AuditEntry {
            at: Timestamp::now(),
            action: action.into(),
            target: target.into(),
            reason: reason.into(),
            actor: actor.into(),
            outcome: outcome.into(),
        };
        if let Err(e) = self.store.append_audit(&entry) {
            tracing::error!("audit log: {}", Chain(&e));
        }
    }

    /// Marks registry devices protected in the kernel tables, so no block reaches them.
    pub fn protect(&self, targets: impl IntoIterator<Item = Target>) -> Result<(), Error> {
        for t in targets {
            self.with_tables(|tables| tables.protect(t))?;
        }
        Ok(())
    }

    pub fn ttl_secs(&self) -> u64 {
        self.config.ttl_secs
    }

    fn mode_for(&self, c: Category) -> Mode {
        self.config
            .categories
            .get(&c)
            .copied()
            .unwrap_or(self.config.mode)
    }

    /// Decides what to do about an alert, and does it.
    pub fn consider(&self, alert: &Alert) -> Decision {
        let Some(addr) = alert.src_ip else {
            return Decision::None;
        };
        if addr.is_loopback() || addr.is_unspecified() {
            return Decision::None;
        }
        if alert.severity < self.config.min_severity
            || alert.confidence < self.config.min_confidence
        {
            return Decision::None;
        }
        let reason = format!("{}: {}", alert.rule, alert.title);
        let reason: String = reason.chars().take(60).collect();
        match self.mode_for(alert.category) {
            Mode::Observe => Decision::None,
            Mode::Ask => self.propose(
                Pending {
                    id: String::new(),
                    addr,
                    reason,
                    category: alert.category,
                    severity: alert.severity,
                    confidence: alert.confidence,
                    requested: alert.ts,
                },
                "policy",
            ),
            Mode::Auto => match self.block(addr, &reason, Origin::Rule, "policy") {
                Ok(()) => Decision::Blocked(addr),
                Err(e) => Decision::Refused(Chain(&e).to_string()),
            },
        }
    }

    /// Decides what to do about an address the consortium reported and corroborated, and
    /// does it. `reason` says who reported what; the caller has already checked the
    /// corroboration threshold.
    pub fn consider_indicator(&self, addr: IpAddr, category: Category, reason: &str) -> Decision {
        if addr.is_loopback() || addr.is_unspecified() {
            return Decision::None;
        }
        let reason: String = reason.chars().take(60).collect();
        match self.config.mesh {
            Mode::Observe => Decision::None,
            Mode::Ask => self.propose(
                Pending {
                    id: String::new(),
                    addr,
                    reason,
                    category,
                    severity: Severity::High,
                    confidence: 1.0,
                    requested: Timestamp::now(),
                },
                "mesh",
            ),
            Mode::Auto => match self.block(addr, &reason, Origin::Mesh, "mesh") {
                Ok(()) => Decision::Blocked(addr),
                Err(e) => Decision::Refused(Chain(&e).to_string()),
            },
        }
    }

    /// Records a block waiting for an operator (one per address); `request.id` is assigned
    /// here.
    fn propose(&self, request: Pending, actor: &str) -> Decision {
        let mut pending = self.pending.lock().expect("pending lock");
        if let Some(p) = pending.values().find(|p| p.addr == request.addr) {
            return Decision::Proposed(p.id.clone());
        }
        let id = format!("{:x}", Timestamp::now().as_nanos());
        self.audit(
            "propose",
            &request.addr.to_string(),
            &request.reason,
            actor,
            "pending",
        );
        pending.insert(
            id.clone(),
            Pending {
                id: id.clone(),
                ..request
            },
        );
        Decision::Proposed(id)
    }

    /// Blocks `addr` for the configured time, auditing the attempt either way.
    pub fn block(
        &self,
        addr: IpAddr,
        reason: &str,
        origin: Origin,
        actor: &str,
    ) -> Result<(), Error> {
        let ttl = Duration::from_secs(self.config.ttl_secs);
        self.block_for(addr, reason, origin, actor, ttl)
    }

    /// Blocks `addr` for `ttl` (an operator's own choice), auditing the attempt either way.
    pub fn block_for(
        &self,
        addr: IpAddr,
        reason: &str,
        origin: Origin,
        actor: &str,
        ttl: Duration,
    ) -> Result<(), Error> {
        let r = self
            .with_tables(|t| t.block(Target::from(addr), Some(ttl), reason, origin, &SystemClock));
        let outcome = match &r {
            Ok(()) => "done".to_owned(),
            Err(e) => Chain(e).to_string(),
        };
        let action = if r.is_ok() { "block" } else { "refuse" };
        self.audit(action, &addr.to_string(), reason, actor, &outcome);
        r
    }

    pub fn unblock(&self, addr: IpAddr, actor: &str) -> Result<bool, Error> {
        let r = self.with_tables(|t| t.unblock(&Target::from(addr)));
        let outcome = match &r {
            Ok(true) => "done".to_owned(),
            Ok(false) => "was not blocked".to_owned(),
            Err(e) => Chain(e).to_string(),
        };
        self.audit("unblock", &addr.to_string(), "", actor, &outcome);
        r
    }

    pub fn approve(&self, id: &str, actor: &str) -> Result<Pending, Error> {
        let p = self
            .pending
            .lock()
            .expect("pending lock")
            .remove(id)
            .ok_or_else(|| Error::NoPending(id.to_owned()))?;
        self.audit("approve", &p.addr.to_string(), &p.reason, actor, "approved");
        self.block(p.addr, &p.reason, Origin::Operator, actor)?;
        Ok(p)
    }

    pub fn deny(&self, id: &str, actor: &str) -> Result<Pending, Error> {
        let p = self
            .pending
            .lock()
            .expect("pending lock")
            .remove(id)
            .ok_or_else(|| Error::NoPending(id.to_owned()))?;
        self.audit("deny", &p.addr.to_string(), &p.reason, actor, "denied");
        Ok(p)
    }

    pub fn pending(&self) -> Vec<Pending> {
        self.pending
            .lock()
            .expect("pending lock")
            .values()
            .cloned()
            .collect()
    }

    pub fn blocks(&self) -> Result<Vec<super::Block>, Error> {
        self.with_tables(|t| t.blocks(&SystemClock))
    }
}
