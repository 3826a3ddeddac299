//! The observatory's views over the knowledge base: indicators by category, by device
//! vendor and model, trends over time, and the RAMA benchmark — where this hospital's risk
//! stands among its peers, computed only from the noised distributions they released.

use std::collections::{BTreeMap, HashMap};

use heir_model::Timestamp;
use serde::Serialize;

use crate::indicator::{Aggregate, Metric, Observable};
use crate::knowledge::KnowledgeBase;

const DAY_NS: u64 = 86_400 * 1_000_000_000;
/// Days covered by [`Report::trend`].
pub const TREND_DAYS: u64 = 14;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ProductCount {
    pub vendor: String,
    pub model: String,
    pub indicators: usize,
    pub vulnerabilities: usize,
}

/// Where a score stands among the consortium's released distributions.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Benchmark {
    /// Share of the consortium's devices with a lower RAMA score, in percent.
    pub percentile: f64,
    /// Hospitals whose distributions were combined.
    pub hospitals: usize,
    /// Devices they covered (before noise).
    pub devices: u64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    pub indicators: usize,
    pub by_category: BTreeMap<String, usize>,
    pub by_vendor: BTreeMap<String, usize>,
    pub by_product: Vec<ProductCount>,
    /// New indicators per day, oldest first, ending today.
    pub trend: Vec<(Timestamp, usize)>,
    /// Indicators corroborated by at least two hospitals.
    pub corroborated: usize,
    pub rama: Option<Benchmark>,
}

pub fn report(kb: &KnowledgeBase, own_rama: Option<f64>, now: Timestamp) -> Report {
    let mut by_category = BTreeMap::new();
    let mut by_vendor = BTreeMap::new();
    let mut products: HashMap<(String, String), ProductCount> = HashMap::new();
    let today = now.as_nanos() / DAY_NS;
    let mut trend = vec![0usize; TREND_DAYS as usize];
    let mut corroborated = 0;
    for e in kb.entries() {
        let ind = &e.indicator;
        *by_category
            .entry(ind.category.slug().to_owned())
            .or_default() += 1;
        let product = match &ind.observable {
            Observable::Product(p) => Some(p),
            _ => ind.target.as_ref(),
        };
        if let Some(p) = product {
            *by_vendor.entry(p.vendor.clone()).or_default() += 1;
            products
                .entry((p.vendor.clone(), p.model.clone()))
                .or_insert_with(|| ProductCount {
                    vendor: p.vendor.clone(),
                    model: p.model.clone(),
                    indicators: 0,
                    vulnerabilities: 0,
                })
                .indicators += 1;
        }
        let day = e.first_seen.as_nanos() / DAY_NS;
        if day <= today && today - day < TREND_DAYS {
            trend[(TREND_DAYS - 1 - (today - day)) as usize] += 1;
        }
        if e.hospitals() >= 2 {
            corroborated += 1;
        }
    }
    for (v, _) in kb.vulnerabilities() {
        products
            .entry((v.product.vendor.clone(), v.product.model.clone()))
            .or_insert_with(|| ProductCount {
                vendor: v.product.vendor.clone(),
                model: v.product.model.clone(),
                indicators: 0,
                vulnerabilities: 0,
            })
            .vulnerabilities += 1;
    }
    let mut by_product: Vec<ProductCount> = products.into_values().collect();
    by_product.sort_by(|a, b| {
        (b.indicators + b.vulnerabilities)
            .cmp(&(a.indicators + a.vulnerabilities))
            .then(a.model.cmp(&b.model))
    });
    let trend = trend
        .into_iter()
        .enumerate()
        .map(|(i, n)| {
            (
                Timestamp::from_nanos((today + 1 + i as u64 - TREND_DAYS) * DAY_NS),
                n,
            )
        })
        .collect();
    Report {
        indicators: kb.len(),
        by_category,
        by_vendor,
        by_product,
        trend,
        corroborated,
        rama: own_rama.and_then(|s| rama_percentile(s, kb.aggregates())),
    }
}

/// Places `score` (0..=100) in the sum of the latest RAMA histograms each hospital released.
/// Noised counts below zero are clamped; within its bucket the score counts as the middle.
pub fn rama_percentile(score: f64, aggregates: &[(String, Aggregate)]) -> Option<Benchmark> {
    let mut latest: HashMap<&str, &Aggregate> = HashMap::new();
    for (h, a) in aggregates
        .iter()
        .filter(|(_, a)| a.metric == Metric::RamaScores && !a.buckets.is_empty())
    {
        let e = latest.entry(h.as_str()).or_insert(a);
        if a.period_end > e.period_end {
            *e = a;
        }
    }
    let width = latest.values().map(|a| a.buckets.len()).max()?;
    let mut total = vec![0.0f64; width];
    let mut devices = 0u64;
    for a in latest.values() {
        // Distributions with fewer buckets are spread onto the common grid.
        let ratio = width / a.buckets.len();
        for (i, c) in a.buckets.iter().enumerate() {
            for j in 0..ratio {
                total[i * ratio + j] += c.max(0.0) / ratio as f64;
            }
        }
        devices += u64::from(a.contributors);
    }
    let sum: f64 = total.iter().sum();
    if sum <= 0.0 {
        return None;
    }
    let idx = ((score.clamp(0.0, 100.0) / 100.0) * width as f64)
        .floor()
        .min(width as f64 - 1.0) as usize;
    let below: f64 = total[..idx].iter().sum();
    let percentile = (below + total[idx] / 2.0) / sum * 100.0;
    Some(Benchmark {
        percentile,
        hospitals: latest.len(),
        devices,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tlp::Tlp;

    fn agg(buckets: Vec<f64>, end: u64) -> Aggregate {
        Aggregate {
            metric: Metric::RamaScores,
            period_start: Timestamp::from_secs(0),
            period_end: Timestamp::from_secs(end),
            contributors: buckets.iter().sum::<f64>().max(0.0) as u32,
            buckets,
            epsilon: 1.0,
            tlp: Tlp::Green,
        }
    }

    #[test]
    fn percentile_from_combined_distributions() {
        // Two hospitals, ten buckets of width 10: 100 devices spread evenly.
        let a = vec![
            ("A".to_string(), agg(vec![5.0; 10], 1)),
            ("B".to_string(), agg(vec![5.0; 10], 1)),
        ];
        let p = rama_percentile(55.0, &a).unwrap();
        assert!((p.percentile - 55.0).abs() < 1e-9, "{p:?}");
        assert_eq!(p.hospitals, 2);
        assert!(rama_percentile(0.0, &a).unwrap().percentile < 10.0);
        assert!(rama_percentile(100.0, &a).unwrap().percentile > 90.0);
        // A newer release replaces the older one; negative noise is clamped.
        let mut b = a.clone();
        b.push((
            "A".into(),
            agg(vec![-3.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 50.0], 2),
        ));
        let p = rama_percentile(55.0, &b).unwrap();
        assert!((p.percentile - 27.5).abs() < 1e-9, "{p:?}");
        assert_eq!(rama_percentile(50.0, &[]), None);
    }
}
