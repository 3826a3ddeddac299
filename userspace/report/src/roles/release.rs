//! Releases for the regulator and the public: the mesh's privacy framework applied to the
//! report's histograms.
//!
//! The rules are the ones `heir_mesh::privacy` applies to every statistic that leaves a
//! hospital, with its own definitions: a histogram with fewer than `k_anonymity`
//! contributors is withheld ([`heir_mesh::privacy::Withheld::BelowK`]), and every bucket gets
//! exact discrete Laplace noise of scale 1/ε ([`heir_mesh::privacy::discrete_laplace`]), from a
//! cryptographically secure generator. On top, a cell whose noised value is below k is
//! suppressed (shown as "fewer than k"), so no reader below the hospital sees a small count.
//!
//! Bucket labels are `&'static str` from fixed vocabularies (category slugs, device classes,
//! OWASP IoT and ENISA classes, bands, score deciles): a histogram cannot carry a device name,
//! an address or a hospital label, whatever the alerts said.

use heir_mesh::privacy::{self, Withheld, discrete_laplace};
use rand::{CryptoRng, Rng};

/// Score deciles, the grid of the mesh's RAMA distribution.
pub const DECILES: [&str; 10] = [
    "0-10", "10-20", "20-30", "30-40", "40-50", "50-60", "60-70", "70-80", "80-90", "90-100",
];

/// OWASP IoT Top 10 (2018) classes.
pub const OWASP: [&str; 10] = ["I1", "I2", "I3", "I4", "I5", "I6", "I7", "I8", "I9", "I10"];

/// ENISA threat taxonomy classes ("Nefarious activity/abuse") the detectors use.
pub const ENISA: [&str; 16] = [
    "network reconnaissance",
    "brute force",
    "abuse of authentication",
    "abuse of privileges",
    "unauthorised access",
    "remote access",
    "command and control",
    "malicious code",
    "ransomware",
    "exploitation of software vulnerabilities",
    "manipulation of information",
    "interception of information",
    "identity theft",
    "denial of service",
    "data breach",
    "unusual device behaviour",
];

/// The label for anything outside a vocabulary.
pub const OTHER: &str = "other";

/// The OWASP IoT class of an alert's `owasp_iot` field.
pub fn owasp_class(s: &str) -> &'static str {
    let s = s.trim();
    OWASP
        .iter()
        .find(|c| c.eq_ignore_ascii_case(s))
        .copied()
        .unwrap_or(OTHER)
}

/// The ENISA class of an alert's `enisa` field (e.g. "Nefarious activity/abuse: malicious
/// code (rootkit)" is "malicious code").
pub fn enisa_class(s: &str) -> &'static str {
    let s = s.trim();
    let s = s
        .split_once(':')
        .map_or(s, |(_, rest)| rest)
        .split('(')
        .next()
        .unwrap_or_default()
        .trim();
    let s = s.split(" / ").next().unwrap_or_default().trim();
    ENISA
        .iter()
        .find(|c| c.eq_ignore_ascii_case(s))
        .copied()
        .unwrap_or(OTHER)
}

/// Exact counts over a fixed vocabulary, before release. Only the hospital's view makes them.
#[derive(Debug, Clone)]
pub struct Histogram {
    buckets: Vec<(&'static str, u64)>,
    contributors: u32,
}

impl Histogram {
    pub(crate) fn new(buckets: Vec<(&'static str, u64)>, contributors: u32) -> Histogram {
        Histogram {
            buckets,
            contributors,
        }
    }
}

/// Every histogram the lower roles' views are made from.
#[derive(Debug, Clone)]
pub struct Histograms {
    pub by_category: Histogram,
    pub by_owasp: Histogram,
    pub by_enisa: Histogram,
    pub by_class: Histogram,
    pub rama_deciles: Histogram,
    pub rama_bands: Histogram,
}

/// One released cell: `None` when its noised value fell below k.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    pub label: &'static str,
    pub value: Option<u64>,
}

/// A histogram that went through k-anonymity and noise. Only [`Releaser`] makes one.
#[derive(Debug, Clone, PartialEq)]
pub struct Released {
    cells: Vec<Cell>,
    contributors: u32,
    epsilon: f64,
    k: u32,
}

impl Released {
    pub fn cells(&self) -> &[Cell] {
        &self.cells
    }

    /// Distinct contributors, at least k.
    pub fn contributors(&self) -> u32 {
        self.contributors
    }

    pub fn epsilon(&self) -> f64 {
        self.epsilon
    }

    pub fn k(&self) -> u32 {
        self.k
    }

    /// Cells shown, i.e. not suppressed.
    pub fn shown(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        self.cells
            .iter()
            .filter_map(|c| c.value.map(|v| (c.label, v)))
    }
}

/// Makes releases under the mesh's privacy settings.
pub struct Releaser<'r, R: Rng + CryptoRng> {
    config: privacy::Config,
    rng: &'r mut R,
}

impl<'r, R: Rng + CryptoRng> Releaser<'r, R> {
    pub fn new(config: privacy::Config, rng: &'r mut R) -> Self {
        Releaser { config, rng }
    }

    pub fn config(&self) -> &privacy::Config {
        &self.config
    }

    /// Releases `h`, or withholds it below k contributors.
    pub fn release(&mut self, h: &Histogram) -> Result<Released, Withheld> {
        let k = self.config.k_anonymity;
        if h.contributors < k {
            return Err(Withheld::BelowK {
                contributors: h.contributors,
                k,
            });
        }
        let cells = h
            .buckets
            .iter()
            .map(|&(label, count)| {
                let count = i64::try_from(count).unwrap_or(i64::MAX);
                let noised = count.saturating_add(discrete_laplace(self.config.epsilon, self.rng));
                Cell {
                    label,
                    value: (noised >= i64::from(k.max(1))).then_some(noised as u64),
                }
            })
            .collect();
        Ok(Released {
            cells,
            contributors: h.contributors,
            epsilon: self.config.epsilon,
            k,
        })
    }

    /// Like [`Releaser::release`], forgetting why it was withheld: the reason carries the
    /// contributor count, which is below k and must not be shown.
    pub fn release_or_withhold(&mut self, h: &Histogram) -> Option<Released> {
        self.release(h).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn vocabularies_map_the_detectors_strings() {
        assert_eq!(owasp_class("I5"), "I5");
        assert_eq!(owasp_class("<b>I5</b>"), OTHER);
        assert_eq!(
            enisa_class("Nefarious activity/abuse: malicious code (rootkit)"),
            "malicious code"
        );
        assert_eq!(
            enisa_class("Nefarious activity/abuse: remote access / command and control"),
            "remote access"
        );
        assert_eq!(enisa_class("ICU-bed-4 pump"), OTHER);
    }

    #[test]
    fn below_k_is_withheld_and_small_cells_suppressed() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut r = Releaser::new(privacy::Config::default(), &mut rng);
        let k = r.config().k_anonymity;
        let h = Histogram::new(vec![("a", 1000), ("b", 0)], k - 1);
        assert_eq!(
            r.release(&h),
            Err(Withheld::BelowK {
                contributors: k - 1,
                k
            })
        );
        let h = Histogram::new(vec![("a", 1000), ("b", 0)], k);
        let rel = r.release(&h).unwrap();
        let a = rel.cells()[0].value.unwrap();
        assert!(a.abs_diff(1000) < 40, "{a}");
        assert!(
            rel.cells()
                .iter()
                .all(|c| c.value.is_none_or(|v| v >= u64::from(k)))
        );
    }
}
