//! The hospital's own view: everything local (devices by name and address, alerts with their
//! titles, RAMA with its factors and actions, the advisories that affect the fleet), plus what
//! the consortium shares. The only view that holds identities; every other view is derived
//! from it through a projection ([`HospitalView::products`]) or a release
//! ([`HospitalView::histograms`]) that drops them.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use heir_mesh::observatory;
use heir_model::{Alert, Category, Timestamp};
use heir_rama::score::Action;
use heir_rama::{Band, Class, Clock, DeviceId, Hospital, Rama, Score};

use super::manufacturer::ProductRecord;
use super::release::{Histogram, Histograms, enisa_class, owasp_class};
use crate::charts::{self, BANDS, PALETTE, Series};
use crate::html::Doc;
use crate::{Cover, DAY_NS, Error, Page, Window};

/// What the hospital's report is built from.
pub struct Sources<'a, C: Clock> {
    pub rama: &'a Rama<C>,
    /// Alert lines as the store keeps them (incident updates included), any order.
    pub alerts: &'a [Alert],
    /// The consortium's view from this node's knowledge base, when it is a member.
    pub consortium: Option<observatory::Report>,
    /// The hospital's name in the consortium, when it has one.
    pub label: Option<String>,
}

/// One device as the hospital sees it.
#[derive(Debug, Clone)]
pub struct DeviceRow {
    pub id: DeviceId,
    pub name: String,
    pub ip: Option<IpAddr>,
    pub class: Class,
    pub manufacturer: Option<String>,
    pub model: Option<String>,
    pub firmware: Option<String>,
    pub score: Score,
    /// Points each factor adds (resilience: removes), as `heir rama --explain` shows them.
    pub contributions: Vec<(String, f64)>,
    /// Vulnerability ids matched on the device.
    pub vulnerabilities: Vec<String>,
    /// Incidents in the window attributed to the device, per category.
    pub incidents: BTreeMap<Category, u64>,
}

/// One incident (the last line of its id) in the window.
#[derive(Debug, Clone)]
pub struct Incident {
    /// When it opened.
    pub opened: Timestamp,
    pub alert: Alert,
    pub device: Option<DeviceId>,
}

/// A vulnerability open on at least one device of the fleet.
#[derive(Debug, Clone)]
pub struct OpenAdvisory {
    pub id: String,
    pub advisories: Vec<String>,
    pub exploited: bool,
    pub ransomware: bool,
    pub fixed_in: Option<String>,
    pub remediation: Option<String>,
    pub devices: Vec<DeviceId>,
}

/// An action and the device whose score it lowers.
#[derive(Debug, Clone)]
pub struct DeviceAction {
    pub device: DeviceId,
    pub name: String,
    pub score: f64,
    pub action: Action,
}

#[derive(Debug, Clone)]
pub struct HospitalView {
    pub label: Option<String>,
    pub window: Window,
    pub hospital: Hospital,
    /// The hospital score's changes within the window.
    pub history: Vec<(Timestamp, f64)>,
    /// Worst first.
    pub devices: Vec<DeviceRow>,
    pub incidents: Vec<Incident>,
    /// Incidents per day (days since the epoch, UTC) and category.
    pub per_day: BTreeMap<(u64, Category), u64>,
    pub attack: BTreeMap<String, u64>,
    pub owasp: BTreeMap<String, u64>,
    pub enisa: BTreeMap<String, u64>,
    pub advisories: Vec<OpenAdvisory>,
    /// Best first.
    pub actions: Vec<DeviceAction>,
    pub consortium: Option<observatory::Report>,
}

/// Devices shown with their factors.
pub const TOP_DEVICES: usize = 10;
/// Actions shown.
pub const TOP_ACTIONS: usize = 10;

/// One line per incident: the last line of each id, opened at its first line's time.
pub fn incidents(alerts: &[Alert]) -> Vec<(Timestamp, &Alert)> {
    let mut at: HashMap<&str, usize> = HashMap::with_capacity(alerts.len());
    let mut out: Vec<(Timestamp, &Alert)> = Vec::with_capacity(alerts.len());
    for a in alerts {
        if a.id.is_empty() {
            out.push((a.ts, a));
            continue;
        }
        match at.get(a.id.as_str()) {
            Some(&i) => {
                let (opened, last) = &mut out[i];
                *opened = (*opened).min(a.ts);
                if a.ts >= last.ts {
                    *last = a;
                }
            }
            None => {
                at.insert(a.id.as_str(), out.len());
                out.push((a.ts, a));
            }
        }
    }
    out
}

impl HospitalView {
    pub fn build<C: Clock>(src: Sources<'_, C>, window: Window) -> HospitalView {
        let rama = src.rama;
        let inventory = rama.inventory();
        let mut incidents_out = Vec::new();
        let mut per_day = BTreeMap::new();
        let mut attack = BTreeMap::new();
        let mut owasp = BTreeMap::new();
        let mut enisa = BTreeMap::new();
        let mut by_device: HashMap<DeviceId, BTreeMap<Category, u64>> = HashMap::new();
        for (opened, a) in incidents(src.alerts) {
            if !window.contains(opened) {
                continue;
            }
            let device = rama.device_of(a);
            *per_day
                .entry((opened.as_nanos() / DAY_NS, a.category))
                .or_insert(0) += 1;
            if let Some(t) = &a.taxonomy.attack {
                *attack.entry(t.clone()).or_insert(0) += 1;
            }
            if let Some(t) = &a.taxonomy.owasp_iot {
                *owasp.entry(t.clone()).or_insert(0) += 1;
            }
            if let Some(t) = &a.taxonomy.enisa {
                *enisa.entry(t.clone()).or_insert(0) += 1;
            }
            if let Some(d) = &device {
                *by_device
                    .entry(d.clone())
                    .or_default()
                    .entry(a.category)
                    .or_insert(0) += 1;
            }
            incidents_out.push(Incident {
                opened,
                alert: a.clone(),
                device,
            });
        }
        incidents_out.sort_by_key(|i| i.opened);

        let mut devices = Vec::new();
        let mut advisories: BTreeMap<String, OpenAdvisory> = BTreeMap::new();
        let mut actions = Vec::new();
        for (id, score) in rama.scores() {
            let Some(dev) = inventory.get(&id) else {
                continue;
            };
            let report = rama.explain(&id);
            let (contributions, vulnerabilities) = match &report {
                Some(r) => (
                    r.explanation
                        .contributions
                        .iter()
                        .map(|c| (c.factor.clone(), c.points))
                        .collect(),
                    r.matches.iter().map(|m| m.id.clone()).collect(),
                ),
                None => (Vec::new(), Vec::new()),
            };
            if let Some(r) = &report {
                for m in &r.matches {
                    let e = advisories
                        .entry(m.id.clone())
                        .or_insert_with(|| OpenAdvisory {
                            id: m.id.clone(),
                            advisories: m.advisories.clone(),
                            exploited: m.exploited,
                            ransomware: m.ransomware,
                            fixed_in: m.fixed_in.clone(),
                            remediation: m.preferred_remediation().map(|r| r.details.clone()),
                            devices: Vec::new(),
                        });
                    e.devices.push(id.clone());
                    for a in &m.advisories {
                        if !e.advisories.contains(a) {
                            e.advisories.push(a.clone());
                        }
                    }
                }
                if let Some(best) = r.explanation.actions.first() {
                    actions.push(DeviceAction {
                        device: id.clone(),
                        name: dev.name().to_owned(),
                        score: score.value,
                        action: best.clone(),
                    });
                }
            }
            devices.push(DeviceRow {
                incidents: by_device.remove(&id).unwrap_or_default(),
                id,
                name: dev.name().to_owned(),
                ip: dev.ip,
                class: dev.class(),
                manufacturer: dev.manufacturer.clone(),
                model: dev.model().map(str::to_owned),
                firmware: dev.firmware().map(str::to_owned),
                score,
                contributions,
                vulnerabilities,
            });
        }
        actions.sort_by(|a, b| {
            b.action
                .lowers_by
                .total_cmp(&a.action.lowers_by)
                .then(b.score.total_cmp(&a.score))
                .then(a.device.cmp(&b.device))
        });
        actions.truncate(TOP_ACTIONS);
        let mut advisories: Vec<OpenAdvisory> = advisories.into_values().collect();
        advisories.sort_by(|a, b| {
            (b.exploited, b.devices.len())
                .cmp(&(a.exploited, a.devices.len()))
                .then(a.id.cmp(&b.id))
        });
        let history = rama
            .hospital_history()
            .points()
            .filter(|p| window.contains(p.ts))
            .map(|p| (p.ts, p.value))
            .collect();
        HospitalView {
            label: src.label,
            window,
            hospital: rama.hospital(),
            history,
            devices,
            incidents: incidents_out,
            per_day,
            attack,
            owasp,
            enisa,
            advisories,
            actions,
            consortium: src.consortium,
        }
    }

    /// The projection a manufacturer's view is built from: one record per device, with its
    /// product, band and counts, and nothing that names or locates it.
    pub fn products(&self) -> Vec<ProductRecord> {
        self.devices
            .iter()
            .map(|d| ProductRecord {
                manufacturer: d.manufacturer.clone().unwrap_or_default(),
                model: d.model.clone().unwrap_or_default(),
                firmware: d.firmware.clone().unwrap_or_default(),
                band: d.score.band,
                incidents: d.incidents.clone(),
                vulnerabilities: d.vulnerabilities.clone(),
            })
            .collect()
    }

    /// The histograms the regulator's and the public's releases are made from: labels from
    /// fixed vocabularies only, contributors counted as distinct devices (an incident without
    /// a device counts as its own contributor).
    pub fn histograms(&self) -> Histograms {
        let mut cat = vec![0u64; Category::ALL.len()];
        let mut cat_who: BTreeSet<&str> = BTreeSet::new();
        let mut owasp = BTreeMap::<&'static str, u64>::new();
        let mut enisa = BTreeMap::<&'static str, u64>::new();
        for i in &self.incidents {
            let ix = Category::ALL
                .iter()
                .position(|c| *c == i.alert.category)
                .unwrap_or(0);
            cat[ix] += 1;
            cat_who.insert(i.device.as_deref().unwrap_or(i.alert.id.as_str()));
            if let Some(o) = i.alert.taxonomy.owasp_iot.as_deref() {
                *owasp.entry(owasp_class(o)).or_insert(0) += 1;
            }
            if let Some(e) = i.alert.taxonomy.enisa.as_deref() {
                *enisa.entry(enisa_class(e)).or_insert(0) += 1;
            }
        }
        let contributors = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        let incident_contributors = contributors(cat_who.len());
        let mut class = BTreeMap::<&'static str, u64>::new();
        let mut deciles = vec![0u64; 10];
        let mut bands = [0u64; 4];
        for d in &self.devices {
            *class.entry(d.class.as_str()).or_insert(0) += 1;
            deciles[((d.score.value / 10.0).floor() as usize).min(9)] += 1;
            bands[d.score.band as usize] += 1;
        }
        let devices = contributors(self.devices.len());
        Histograms {
            by_category: Histogram::new(
                Category::ALL.iter().map(|c| c.slug()).zip(cat).collect(),
                incident_contributors,
            ),
            by_owasp: Histogram::new(owasp.into_iter().collect(), incident_contributors),
            by_enisa: Histogram::new(enisa.into_iter().collect(), incident_contributors),
            by_class: Histogram::new(class.into_iter().collect(), devices),
            rama_deciles: Histogram::new(
                super::release::DECILES
                    .iter()
                    .copied()
                    .zip(deciles)
                    .collect(),
                devices,
            ),
            rama_bands: Histogram::new(
                [Band::Low, Band::Medium, Band::High, Band::Critical]
                    .iter()
                    .map(|b| b.as_str())
                    .zip(bands)
                    .collect(),
                devices,
            ),
        }
    }
}

pub(crate) fn day_label(day: u64) -> String {
    let s = Timestamp::from_nanos(day * DAY_NS).to_string();
    s.get(5..10).unwrap_or(&s).to_owned()
}

/// Incidents per category per day, as stacked bars: one rect per non-empty (day, category).
pub(crate) fn per_day_chart(
    window: Window,
    per_day: &BTreeMap<(u64, Category), u64>,
) -> Result<(String, Vec<(String, String)>), Error> {
    let days = window.days();
    let cats: BTreeSet<Category> = per_day.keys().map(|(_, c)| *c).collect();
    let series: Vec<Series> = cats
        .iter()
        .enumerate()
        .map(|(i, c)| Series {
            name: c.slug().to_owned(),
            colour: PALETTE[i % PALETTE.len()],
            values: days
                .iter()
                .map(|d| per_day.get(&(*d, *c)).copied().unwrap_or(0) as f64)
                .collect(),
        })
        .collect();
    let labels: Vec<String> = days.iter().map(|d| day_label(*d)).collect();
    let svg = charts::stacked_bars("alerts-per-day", "incidents", &labels, &series)?;
    Ok((svg, charts::legend(&series)))
}

fn count_rows(m: &BTreeMap<String, u64>) -> Vec<Vec<String>> {
    let mut v: Vec<(&String, &u64)> = m.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    v.into_iter()
        .map(|(k, n)| vec![k.clone(), n.to_string()])
        .collect()
}

impl Page for HospitalView {
    fn render(&self, cover: &Cover) -> Result<String, Error> {
        let title = match &self.label {
            Some(l) => format!("heir observatory: hospital report, {l}"),
            None => "heir observatory: hospital report".to_owned(),
        };
        let mut doc = Doc::new(&title, cover);

        doc.section("rama", "Hospital RAMA");
        doc.p(&format!(
            "Hospital RAMA now: {:.1} ({}), over {} devices; devices per band: {} low, {} medium, {} high, {} critical.",
            self.hospital.value,
            self.hospital.band,
            self.hospital.devices,
            self.hospital.bands[0],
            self.hospital.bands[1],
            self.hospital.bands[2],
            self.hospital.bands[3],
        ));
        if self.history.is_empty() {
            doc.not_available(
                "the RAMA state holds no change of the hospital score in this period",
            );
        } else {
            let svg = charts::scores_over_time("rama-history", self.window, &self.history)?;
            doc.figure(
                &svg,
                &format!(
                    "Hospital RAMA over the period: {} recorded changes (bands at 25, 50, 75).",
                    self.history.len()
                ),
                &[],
            );
        }
        doc.end();

        doc.section("devices", "Top devices and their factors");
        let top: Vec<&DeviceRow> = self.devices.iter().take(TOP_DEVICES).collect();
        if top.is_empty() {
            doc.not_available("the inventory is empty");
        } else {
            let labels: Vec<String> = (1..=top.len()).map(|i| format!("#{i}")).collect();
            let series: Vec<Series> = [Band::Low, Band::Medium, Band::High, Band::Critical]
                .iter()
                .map(|b| Series {
                    name: b.as_str().to_owned(),
                    colour: BANDS[*b as usize],
                    values: top
                        .iter()
                        .map(|d| {
                            if d.score.band == *b {
                                d.score.value
                            } else {
                                0.0
                            }
                        })
                        .collect(),
                })
                .collect();
            let svg = charts::stacked_bars("top-devices", "RAMA", &labels, &series)?;
            doc.figure(
                &svg,
                "RAMA of the worst devices, numbered as in the table.",
                &charts::legend(&series),
            );
            let factor = |d: &DeviceRow, f: &str| {
                d.contributions
                    .iter()
                    .find(|(n, _)| n == f)
                    .map(|(_, p)| format!("{p:.1}"))
                    .unwrap_or_default()
            };
            let rows: Vec<Vec<String>> = top
                .iter()
                .enumerate()
                .map(|(i, d)| {
                    vec![
                        format!("#{}", i + 1),
                        d.name.clone(),
                        d.ip.map(|ip| ip.to_string()).unwrap_or_default(),
                        d.class.to_string(),
                        format!("{:.1}", d.score.value),
                        d.score.band.to_string(),
                        factor(d, "exposure"),
                        factor(d, "vulnerability"),
                        factor(d, "threat"),
                        factor(d, "resilience"),
                        factor(d, "criticality"),
                        d.incidents.values().sum::<u64>().to_string(),
                    ]
                })
                .collect();
            doc.table(
                "top-devices",
                &[
                    "#",
                    "device",
                    "address",
                    "class",
                    "RAMA",
                    "band",
                    "exposure",
                    "vulnerability",
                    "threat",
                    "resilience (removes)",
                    "criticality",
                    "incidents",
                ],
                &rows,
            );
        }
        doc.end();

        doc.section("alerts", "Alerts per category per day");
        if self.incidents.is_empty() {
            doc.not_available("no alert in this period");
        } else {
            let (svg, legend) = per_day_chart(self.window, &self.per_day)?;
            doc.figure(
                &svg,
                &format!(
                    "{} incidents (one per alert id, on the day it opened).",
                    self.incidents.len()
                ),
                &legend,
            );
            let mut totals: BTreeMap<String, u64> = BTreeMap::new();
            for ((_, c), n) in &self.per_day {
                *totals.entry(c.slug().to_owned()).or_insert(0) += n;
            }
            doc.table(
                "alert-categories",
                &["category", "incidents"],
                &count_rows(&totals),
            );
            let recent: Vec<Vec<String>> = self
                .incidents
                .iter()
                .rev()
                .take(20)
                .map(|i| {
                    vec![
                        i.opened.to_string(),
                        i.alert.severity.to_string(),
                        i.alert.category.slug().to_owned(),
                        i.alert.title.clone(),
                        i.device.clone().unwrap_or_default(),
                        i.alert.count.to_string(),
                    ]
                })
                .collect();
            doc.p("Latest incidents:");
            doc.table(
                "recent-incidents",
                &["opened", "severity", "category", "title", "device", "count"],
                &recent,
            );
        }
        doc.end();

        doc.section("attack", "MITRE ATT&CK techniques seen");
        if self.attack.is_empty() {
            doc.not_available("no alert in this period carries an ATT&CK technique");
        } else {
            doc.table(
                "attack",
                &["technique", "incidents"],
                &count_rows(&self.attack),
            );
        }
        doc.end();

        doc.section("taxonomy", "OWASP IoT Top 10 and ENISA classes");
        if self.owasp.is_empty() && self.enisa.is_empty() {
            doc.not_available("no alert in this period carries an OWASP or ENISA class");
        } else {
            doc.table(
                "owasp",
                &["OWASP IoT", "incidents"],
                &count_rows(&self.owasp),
            );
            doc.table(
                "enisa",
                &["ENISA threat", "incidents"],
                &count_rows(&self.enisa),
            );
        }
        doc.end();

        doc.section("advisories", "Open advisories affecting the fleet");
        if self.advisories.is_empty() {
            doc.not_available("no imported vulnerability matches a device of the fleet");
        } else {
            let rows: Vec<Vec<String>> = self
                .advisories
                .iter()
                .map(|a| {
                    vec![
                        a.id.clone(),
                        a.advisories.join(", "),
                        if a.exploited { "yes" } else { "no" }.to_owned(),
                        a.fixed_in.clone().unwrap_or_default(),
                        a.devices.len().to_string(),
                        a.devices.join(", "),
                        a.remediation.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            doc.table(
                "advisories",
                &[
                    "vulnerability",
                    "advisories",
                    "exploited",
                    "fixed in",
                    "devices",
                    "affected devices",
                    "remediation",
                ],
                &rows,
            );
        }
        doc.end();

        doc.section("actions", "Actions that would lower RAMA most");
        if self.actions.is_empty() {
            doc.not_available("no device has an action that lowers its score");
        } else {
            let rows: Vec<Vec<String>> = self
                .actions
                .iter()
                .map(|a| {
                    vec![
                        a.name.clone(),
                        a.action.action.clone(),
                        format!("{:.1}", a.score),
                        format!("{:.1}", a.action.score_after),
                        format!("{:.1}", a.action.lowers_by),
                    ]
                })
                .collect();
            doc.table(
                "actions",
                &["device", "action", "RAMA now", "RAMA after", "lowers by"],
                &rows,
            );
        }
        doc.end();

        doc.section("consortium", "The consortium's shared view");
        match &self.consortium {
            None => {
                doc.not_available(
                    "this node is not a member of a consortium, or its knowledge base is empty",
                );
            }
            Some(c) => {
                doc.p(&format!(
                    "{} indicators in the knowledge base, {} corroborated by two hospitals or more.",
                    c.indicators, c.corroborated
                ));
                let rows: Vec<Vec<String>> = c
                    .by_category
                    .iter()
                    .map(|(k, n)| vec![k.clone(), n.to_string()])
                    .collect();
                doc.table("consortium-categories", &["category", "indicators"], &rows);
                let rows: Vec<Vec<String>> = c
                    .by_product
                    .iter()
                    .take(20)
                    .map(|p| {
                        vec![
                            p.vendor.clone(),
                            p.model.clone(),
                            p.indicators.to_string(),
                            p.vulnerabilities.to_string(),
                        ]
                    })
                    .collect();
                doc.table(
                    "consortium-products",
                    &["vendor", "model", "indicators", "vulnerabilities"],
                    &rows,
                );
            }
        }
        doc.end();

        doc.section("peers", "Peer standing");
        match self.consortium.as_ref().and_then(|c| c.rama) {
            Some(b) => {
                doc.p(&format!(
                    "{:.0}% of the consortium's devices score lower than this hospital's RAMA ({} hospitals, {} devices, from their noised releases).",
                    b.percentile, b.hospitals, b.devices
                ));
            }
            None => {
                doc.not_available("no peer has released a RAMA distribution to compare with");
            }
        }
        doc.end();
        Ok(doc.finish(&title))
    }
}
