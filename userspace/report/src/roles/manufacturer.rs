//! A manufacturer's view: only its own products, per model and firmware, with counts of
//! incidents (alerts), vulnerabilities and RAMA bands.
//!
//! It is built only from [`ProductRecord`]s, which have no field for a device's name, id,
//! address, location or the hospital's label: what is not in the type cannot reach the page.
//! A model/firmware group of fewer than k devices (the mesh's `k_anonymity`) is not shown, so a
//! row never singles out one unit.

use std::collections::{BTreeMap, BTreeSet};

use heir_model::Category;
use heir_rama::Band;

use crate::charts::{self, BANDS, PALETTE, Series};
use crate::html::Doc;
use crate::{Cover, Error, Page};

/// One device, as a manufacturer may know it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProductRecord {
    pub manufacturer: String,
    pub model: String,
    pub firmware: String,
    pub band: Band,
    /// Incidents attributed to the device in the period, per category.
    pub incidents: BTreeMap<Category, u64>,
    /// Vulnerability ids matched on it (public identifiers).
    pub vulnerabilities: Vec<String>,
}

/// One model and firmware, over at least k devices.
#[derive(Debug, Clone, PartialEq)]
pub struct ProductRow {
    pub model: String,
    pub firmware: String,
    pub devices: u64,
    pub incidents: BTreeMap<Category, u64>,
    pub vulnerabilities: BTreeSet<String>,
    /// Devices per band: low, medium, high, critical.
    pub bands: [u64; 4],
}

impl ProductRow {
    pub fn incident_total(&self) -> u64 {
        self.incidents.values().sum()
    }
}

#[derive(Debug, Clone)]
pub struct ManufacturerView {
    pub manufacturer: String,
    pub k: u32,
    /// By model then firmware.
    pub rows: Vec<ProductRow>,
    /// Whether some of its products were left out for having fewer than k devices.
    pub withheld: bool,
}

fn same_maker(a: &str, b: &str) -> bool {
    a.trim().eq_ignore_ascii_case(b.trim())
}

impl ManufacturerView {
    /// Groups `records` of `manufacturer` by model and firmware, keeping groups of at least
    /// `k` devices.
    pub fn new(
        manufacturer: &str,
        records: impl IntoIterator<Item = ProductRecord>,
        k: u32,
    ) -> ManufacturerView {
        let mut groups: BTreeMap<(String, String), ProductRow> = BTreeMap::new();
        for r in records {
            if !same_maker(&r.manufacturer, manufacturer) {
                continue;
            }
            let row = groups
                .entry((r.model.clone(), r.firmware.clone()))
                .or_insert_with(|| ProductRow {
                    model: r.model.clone(),
                    firmware: r.firmware.clone(),
                    devices: 0,
                    incidents: BTreeMap::new(),
                    vulnerabilities: BTreeSet::new(),
                    bands: [0; 4],
                });
            row.devices += 1;
            row.bands[r.band as usize] += 1;
            for (c, n) in r.incidents {
                *row.incidents.entry(c).or_insert(0) += n;
            }
            row.vulnerabilities.extend(r.vulnerabilities);
        }
        let before = groups.len();
        let rows: Vec<ProductRow> = groups
            .into_values()
            .filter(|r| r.devices >= u64::from(k.max(1)))
            .collect();
        ManufacturerView {
            manufacturer: manufacturer.trim().to_owned(),
            k,
            withheld: rows.len() < before,
            rows,
        }
    }
}

fn product_label(r: &ProductRow) -> String {
    match (r.model.is_empty(), r.firmware.is_empty()) {
        (true, _) => "(model not stated)".to_owned(),
        (false, true) => r.model.clone(),
        (false, false) => format!("{} {}", r.model, r.firmware),
    }
}

impl Page for ManufacturerView {
    fn render(&self, cover: &Cover) -> Result<String, Error> {
        let title = format!(
            "heir observatory: manufacturer report, {}",
            self.manufacturer
        );
        let mut doc = Doc::new(&title, cover);
        doc.p(&format!(
            "Only {}'s products, per model and firmware, over groups of at least {} devices. No hospital, device or address is named.",
            self.manufacturer, self.k
        ));
        if self.withheld {
            doc.p(&format!(
                "Some model and firmware groups have fewer than {} devices and are not shown.",
                self.k
            ));
        }

        doc.section("products", "Products in the field");
        if self.rows.is_empty() {
            doc.not_available(&format!(
                "no model and firmware of this manufacturer has {} devices or more here",
                self.k
            ));
        } else {
            let labels: Vec<String> = (1..=self.rows.len()).map(|i| format!("#{i}")).collect();
            let bands: Vec<Series> = [Band::Low, Band::Medium, Band::High, Band::Critical]
                .iter()
                .map(|b| Series {
                    name: b.as_str().to_owned(),
                    colour: BANDS[*b as usize],
                    values: self
                        .rows
                        .iter()
                        .map(|r| r.bands[*b as usize] as f64)
                        .collect(),
                })
                .collect();
            let svg = charts::stacked_bars("product-bands", "devices", &labels, &bands)?;
            doc.figure(
                &svg,
                "Devices per RAMA band, per model and firmware (numbered as in the table).",
                &charts::legend(&bands),
            );
            let rows: Vec<Vec<String>> = self
                .rows
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    vec![
                        format!("#{}", i + 1),
                        r.model.clone(),
                        r.firmware.clone(),
                        r.devices.to_string(),
                        r.incident_total().to_string(),
                        r.vulnerabilities.len().to_string(),
                        r.bands[0].to_string(),
                        r.bands[1].to_string(),
                        r.bands[2].to_string(),
                        r.bands[3].to_string(),
                    ]
                })
                .collect();
            doc.table(
                "products",
                &[
                    "#",
                    "model",
                    "firmware",
                    "devices",
                    "indicators (incidents)",
                    "vulnerabilities",
                    "low",
                    "medium",
                    "high",
                    "critical",
                ],
                &rows,
            );
        }
        doc.end();

        doc.section("indicators", "Indicators per category");
        let cats: BTreeSet<Category> = self
            .rows
            .iter()
            .flat_map(|r| r.incidents.keys().copied())
            .collect();
        if cats.is_empty() {
            doc.not_available("no alert on these products in this period");
        } else {
            let labels: Vec<String> = (1..=self.rows.len()).map(|i| format!("#{i}")).collect();
            let series: Vec<Series> = cats
                .iter()
                .enumerate()
                .map(|(i, c)| Series {
                    name: c.slug().to_owned(),
                    colour: PALETTE[i % PALETTE.len()],
                    values: self
                        .rows
                        .iter()
                        .map(|r| r.incidents.get(c).copied().unwrap_or(0) as f64)
                        .collect(),
                })
                .collect();
            let svg = charts::stacked_bars("product-indicators", "incidents", &labels, &series)?;
            doc.figure(
                &svg,
                "Incidents per category, per model and firmware.",
                &charts::legend(&series),
            );
        }
        doc.end();

        doc.section("vulnerabilities", "Vulnerabilities matched");
        let mut vulns: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for r in &self.rows {
            for v in &r.vulnerabilities {
                vulns.entry(v).or_default().push(product_label(r));
            }
        }
        if vulns.is_empty() {
            doc.not_available("no imported vulnerability matches these products");
        } else {
            let rows: Vec<Vec<String>> = vulns
                .into_iter()
                .map(|(v, p)| vec![v.to_owned(), p.join(", ")])
                .collect();
            doc.table(
                "vulnerabilities",
                &["vulnerability", "model and firmware"],
                &rows,
            );
        }
        doc.end();
        Ok(doc.finish(&title))
    }
}
