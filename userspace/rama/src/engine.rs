//! The live scorer: inventory + knowledge + alerts → per-device and hospital RAMA, kept up to
//! date incrementally.
//!
//! An observation rescores only its device (O(its findings)); an alert only its device's threat
//! factor (O(1) plus O(log n) to re-rank). The hospital score reads the five worst devices off
//! an ordered index. Only registry reloads and knowledge imports, which can change any device,
//! recompute the fleet.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::path::Path;

use heir_model::{Alert, Category, Timestamp};
use serde::{Deserialize, Serialize};

use crate::clock::Clock;
use crate::fact::{DeviceFact, Fact, Protocol};
use crate::history::Series;
use crate::hospital::{self, Hospital};
use crate::import::{self, mds2::Capability};
use crate::inventory::{Device, DeviceId, Inventory};
use crate::knowledge::{Imported, Knowledge, Match};
use crate::oui;
use crate::registry::{Class, Criticality, Registry};
use crate::score::{Band, Explanation, Exposure, Factors, Inputs, Score, UNSCORED_CVSS, VulnInput};
use crate::threat::{self, Threat};

/// Cached inputs and score of one device.
#[derive(Debug, Clone)]
struct State {
    criticality: Criticality,
    exposures: Vec<Exposure>,
    matches: Vec<Match>,
    vulns: Vec<VulnInput>,
    capabilities: Vec<Capability>,
    threat: Threat,
    score: Score,
}

/// A device score that changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Update {
    pub device: DeviceId,
    pub before: Option<f64>,
    pub score: Score,
}

/// Everything `heir rama --explain` shows for one device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub device: DeviceId,
    pub name: String,
    pub class: Class,
    pub criticality: Criticality,
    pub at: Timestamp,
    pub explanation: Explanation,
    pub matches: Vec<Match>,
    pub recent_alerts: Vec<threat::Seen>,
}

fn key(score: f64) -> Reverse<i64> {
    Reverse((score * 10.0).round() as i64)
}

fn band_index(b: Band) -> usize {
    b as usize
}

/// The RAMA engine.
pub struct Rama<C: Clock> {
    clock: C,
    inventory: Inventory,
    knowledge: Knowledge,
    states: HashMap<DeviceId, State>,
    ranking: BTreeSet<(Reverse<i64>, DeviceId)>,
    bands: [usize; 4],
    active: BTreeSet<DeviceId>,
    history: HashMap<DeviceId, Series>,
    hospital_history: Series,
}

impl<C: Clock> Rama<C> {
    pub fn new(clock: C, oui: oui::Table) -> Self {
        Self {
            clock,
            inventory: Inventory::new(oui),
            knowledge: Knowledge::default(),
            states: HashMap::new(),
            ranking: BTreeSet::new(),
            bands: [0; 4],
            active: BTreeSet::new(),
            history: HashMap::new(),
            hospital_history: Series::default(),
        }
    }

    pub fn clock(&self) -> &C {
        &self.clock
    }

    pub fn inventory(&self) -> &Inventory {
        &self.inventory
    }

    pub fn knowledge(&self) -> &Knowledge {
        &self.knowledge
    }

    /// Applies the operator registry and rescores the fleet.
    pub fn load_registry(&mut self, reg: &Registry) {
        for (old, new) in self.inventory.apply_registry(reg) {
            if let Some(st) = self.states.remove(&old) {
                self.unrank(&old, &st.score);
                self.rank(&new, &st.score);
                self.states.insert(new.clone(), st);
            }
            if let Some(h) = self.history.remove(&old) {
                self.history.insert(new.clone(), h);
            }
            if self.active.remove(&old) {
                self.active.insert(new);
            }
        }
        self.recompute_all();
    }

    /// Imports a knowledge file (all or nothing) and rescores the fleet.
    pub fn import(&mut self, file: &Path) -> Result<Imported, import::Error> {
        let done = self.knowledge.import(file)?;
        self.recompute_all();
        Ok(done)
    }

    /// Everything the engine learnt, for the agent's store: restoring it after a restart keeps
    /// the inventory, the knowledge base, the decaying threat of each device and the history.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            knowledge: self.knowledge.clone(),
            devices: self.inventory.sorted().into_iter().cloned().collect(),
            threats: self
                .states
                .iter()
                .filter(|(_, s)| s.threat != Threat::default())
                .map(|(id, s)| (id.clone(), s.threat.clone()))
                .collect(),
            history: self
                .history
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            hospital_history: self.hospital_history.clone(),
        }
    }

    /// An engine continuing from `snap`, scored as of the clock's now.
    pub fn restore(clock: C, oui: oui::Table, snap: Snapshot) -> Self {
        let mut r = Self::new(clock, oui::Table::curated());
        r.inventory = Inventory::restore(oui, snap.devices);
        r.set_knowledge(snap.knowledge);
        let now = r.clock.now();
        for (id, threat) in snap.threats {
            if let Some(st) = r.states.get_mut(&id) {
                st.threat = threat;
                r.active.insert(id.clone());
                r.refresh(&id, now, false, false);
            }
        }
        // The history continues the stored one; rebuilding above is not history.
        r.history = snap.history.into_iter().collect();
        r.hospital_history = snap.hospital_history;
        for (id, st) in &r.states {
            r.history
                .entry(id.clone())
                .or_default()
                .record(now, st.score.value);
        }
        r.record_hospital(now);
        r
    }

    /// Services not seen since `cutoff` are forgotten and their devices rescored.
    pub fn expire_services(&mut self, cutoff: Timestamp) -> Vec<Update> {
        let now = self.clock.now();
        let changed = self.inventory.expire_services(cutoff);
        let out: Vec<Update> = changed
            .iter()
            .filter_map(|id| self.refresh(id, now, true, false))
            .collect();
        self.record_hospital(now);
        out
    }

    /// The operator changed the default password on `port`: drop the finding and rescore.
    pub fn clear_default_credentials(&mut self, id: &str, port: u16) -> Option<Update> {
        if !self.inventory.clear_default_credentials(id, port) {
            return None;
        }
        let now = self.clock.now();
        let u = self.refresh(id, now, true, false);
        self.record_hospital(now);
        u
    }

    /// Replaces the knowledge base (e.g. loaded from the agent's store) and rescores the fleet.
    pub fn set_knowledge(&mut self, mut k: Knowledge) {
        k.reindex();
        self.knowledge = k;
        self.recompute_all();
    }

    /// Re-derives every device's inputs and score from scratch.
    pub fn recompute_all(&mut self) {
        let now = self.clock.now();
        let ids: Vec<DeviceId> = self.inventory.devices().map(|d| d.id.clone()).collect();
        for id in ids {
            self.refresh(&id, now, true, true);
        }
        self.record_hospital(now);
    }

    /// Folds a sensor observation in and rescores its device if its exposure changed.
    pub fn observe(&mut self, o: &DeviceFact) -> Option<Update> {
        let now = self.clock.now();
        let out = self.inventory.observe(o);
        if !(out.new || out.exposure_changed) {
            return None;
        }
        let u = self.refresh(&out.device, now, out.exposure_changed || out.new, out.new);
        self.record_hospital(now);
        u
    }

    /// Folds in what a sensor event tells the inventory (see [`crate::fact::facts_of`]);
    /// returns the devices whose score changed.
    pub fn observe_event(&mut self, e: &heir_model::Event) -> Vec<Update> {
        let mut facts = Vec::new();
        crate::fact::facts_of(e, &mut facts);
        facts.iter().filter_map(|f| self.observe(f)).collect()
    }

    /// The device an alert is about: its `device` field, else the device at `dst_ip`, else at
    /// `src_ip` (a compromised device calling out).
    pub fn device_of(&self, a: &Alert) -> Option<DeviceId> {
        if let Some(d) = &a.device
            && self.inventory.get(d).is_some()
        {
            return Some(d.clone());
        }
        let by = |ip: Option<IpAddr>| {
            ip.and_then(|ip| self.inventory.by_ip(ip))
                .map(|d| d.id.clone())
        };
        by(a.dst_ip).or_else(|| by(a.src_ip))
    }

    /// Adds an alert to its device's threat factor and rescores that device only.
    pub fn alert(&mut self, a: &Alert) -> Option<Update> {
        let id = self.device_of(a)?;
        let now = self.clock.now();
        let mut exposure = false;
        if a.category == Category::DefaultCredentials
            && let (Some(port), Some(ip)) = (a.dst_port, self.inventory.get(&id).and_then(|d| d.ip))
        {
            let o = DeviceFact {
                ts: a.ts,
                ip,
                mac: None,
                seen: Fact::DefaultCredentials {
                    port,
                    protocol: Protocol::Other,
                },
            };
            exposure = self.inventory.observe(&o).exposure_changed;
        }
        self.states.get_mut(&id)?.threat.add(a, now);
        self.active.insert(id.clone());
        let u = self.refresh(&id, now, exposure, false);
        self.record_hospital(now);
        u
    }

    /// Lets threat activity decay: rescores the devices with a non-zero alert load (and only
    /// those). Call periodically.
    pub fn tick(&mut self) -> Vec<Update> {
        let now = self.clock.now();
        let active: Vec<DeviceId> = self.active.iter().cloned().collect();
        let mut out = Vec::new();
        for id in active {
            let still = self
                .states
                .get_mut(&id)
                .is_some_and(|s| s.threat.settle(now));
            if !still {
                self.active.remove(&id);
            }
            out.extend(self.refresh(&id, now, false, false));
        }
        self.record_hospital(now);
        out
    }

    pub fn score(&self, id: &str) -> Option<Score> {
        self.states.get(id).map(|s| s.score)
    }

    /// All scores, worst first.
    pub fn scores(&self) -> Vec<(DeviceId, Score)> {
        self.ranking
            .iter()
            .map(|(_, id)| (id.clone(), self.states[id].score))
            .collect()
    }

    /// The formula inputs of a device as of now.
    pub fn inputs(&self, id: &str) -> Option<Inputs> {
        let s = self.states.get(id)?;
        Some(Self::inputs_of(s, self.clock.now()))
    }

    pub fn explain(&self, id: &str) -> Option<Report> {
        let dev = self.inventory.get(id)?;
        let s = self.states.get(id)?;
        let now = self.clock.now();
        Some(Report {
            device: id.to_owned(),
            name: dev.name().to_owned(),
            class: dev.class(),
            criticality: s.criticality,
            at: now,
            explanation: Explanation::of(&Self::inputs_of(s, now)),
            matches: s.matches.clone(),
            recent_alerts: s.threat.recent().cloned().collect(),
        })
    }

    pub fn hospital(&self) -> Hospital {
        let worst: Vec<(DeviceId, f64)> = self
            .ranking
            .iter()
            .take(1 + hospital::RUNNERS_UP)
            .map(|(_, id)| (id.clone(), self.states[id].score.value))
            .collect();
        let values: Vec<f64> = worst.iter().map(|(_, v)| *v).collect();
        let value = hospital::value(&values);
        Hospital {
            value,
            band: Band::of(value),
            devices: self.states.len(),
            bands: self.bands,
            worst,
        }
    }

    pub fn history(&self, id: &str) -> Option<&Series> {
        self.history.get(id)
    }

    pub fn hospital_history(&self) -> &Series {
        &self.hospital_history
    }

    fn inputs_of(s: &State, now: Timestamp) -> Inputs {
        Inputs {
            criticality: s.criticality,
            exposures: s.exposures.clone(),
            vulnerabilities: s.vulns.clone(),
            threat_load: s.threat.load(now),
            capabilities: s.capabilities.clone(),
        }
    }

    fn exposures(dev: &Device) -> Vec<Exposure> {
        let mut v: Vec<Exposure> = dev
            .services
            .values()
            .map(|r| Exposure::of_service(&r.service))
            .collect();
        v.extend(
            dev.tls
                .iter()
                .filter(|(_, t)| t.is_obsolete())
                .map(|(port, version)| Exposure::ObsoleteTls {
                    port: *port,
                    version: *version,
                }),
        );
        v.extend(dev.default_credentials.iter().map(|(port, protocol)| {
            Exposure::DefaultCredentials {
                port: *port,
                protocol: *protocol,
            }
        }));
        v
    }

    fn capabilities(k: &Knowledge, dev: &Device) -> Vec<Capability> {
        let mut caps = Vec::new();
        if dev.is_segmented() {
            caps.push(Capability::Segmentation);
        }
        if let Some(form) = dev.model().and_then(|m| k.mds2(m)) {
            caps.extend(
                Capability::ALL
                    .into_iter()
                    .filter(|c| *c != Capability::Segmentation && form.has(*c)),
            );
        }
        caps
    }

    /// Re-derives what changed for one device and rescores it.
    fn refresh(
        &mut self,
        id: &str,
        now: Timestamp,
        exposure: bool,
        knowledge: bool,
    ) -> Option<Update> {
        let dev = self.inventory.get(id)?;
        let criticality = dev.criticality();
        let before = self.states.get(id).map(|s| s.score);
        if before.is_none() {
            let empty = Factors::from_parts(criticality, &[], &[], 0.0, &[]);
            let fresh = State {
                criticality,
                exposures: Vec::new(),
                matches: Vec::new(),
                vulns: Vec::new(),
                capabilities: Vec::new(),
                threat: Threat::default(),
                score: Score::from_factors(empty),
            };
            self.states.insert(id.to_owned(), fresh);
        }
        let st = self.states.get_mut(id)?;
        if exposure || before.is_none() {
            st.exposures = Self::exposures(dev);
        }
        if knowledge || before.is_none() || st.criticality != criticality {
            st.criticality = criticality;
            st.matches = self.knowledge.matches(dev);
            st.vulns = st
                .matches
                .iter()
                .map(|m| VulnInput {
                    id: m.id.clone(),
                    cvss: m
                        .vector
                        .as_ref()
                        .map_or(UNSCORED_CVSS, |v| v.clinical_score(criticality)),
                    exploited: m.exploited,
                    fixed_in: m.fixed_in.clone(),
                    advisory: m
                        .preferred_remediation()
                        .and_then(|r| r.advisory.clone())
                        .or_else(|| m.advisories.first().cloned()),
                    remediation: m.preferred_remediation().cloned(),
                })
                .collect();
            st.capabilities = Self::capabilities(&self.knowledge, dev);
        }
        let score = Score::from_factors(Factors::from_parts(
            st.criticality,
            &st.exposures,
            &st.vulns,
            st.threat.load(now),
            &st.capabilities,
        ));
        st.score = score;
        if let Some(b) = before {
            if b == score {
                return None;
            }
            self.unrank(id, &b);
        }
        self.rank(id, &score);
        match self.history.get_mut(id) {
            Some(h) => {
                h.record(now, score.value);
            }
            None => {
                let mut h = Series::default();
                h.record(now, score.value);
                self.history.insert(id.to_owned(), h);
            }
        }
        Some(Update {
            device: id.to_owned(),
            before: before.map(|b| b.value),
            score,
        })
    }

    fn rank(&mut self, id: &str, s: &Score) {
        if self.ranking.insert((key(s.value), id.to_owned())) {
            self.bands[band_index(s.band)] += 1;
        }
    }

    fn unrank(&mut self, id: &str, s: &Score) {
        if self.ranking.remove(&(key(s.value), id.to_owned())) {
            self.bands[band_index(s.band)] -= 1;
        }
    }

    fn record_hospital(&mut self, now: Timestamp) {
        let mut worst = [0.0; 1 + hospital::RUNNERS_UP];
        for (slot, (k, _)) in worst.iter_mut().zip(&self.ranking) {
            *slot = k.0 as f64 / 10.0;
        }
        self.hospital_history.record(now, hospital::value(&worst));
    }
}

/// What [`Rama::snapshot`] saves and [`Rama::restore`] continues from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Snapshot {
    pub knowledge: Knowledge,
    pub devices: Vec<Device>,
    pub threats: BTreeMap<DeviceId, Threat>,
    pub history: BTreeMap<DeviceId, Series>,
    pub hospital_history: Series,
}

/// The inventory listing `heir devices` prints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Listing {
    pub oui_source: String,
    pub devices: Vec<Device>,
}

impl<C: Clock> Rama<C> {
    pub fn listing(&self) -> Listing {
        Listing {
            oui_source: self.inventory.oui_source().to_string(),
            devices: self.inventory.sorted().into_iter().cloned().collect(),
        }
    }
}
