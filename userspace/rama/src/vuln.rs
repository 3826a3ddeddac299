//! Known vulnerabilities, in one shape whichever feed they came from.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

use crate::clinical;
use crate::version;

/// Which feed described the vulnerability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Feed {
    Osv,
    Nvd,
    /// A CSAF 2.0 advisory (vendor or CERT, e.g. CISA's ICSMA medical advisories).
    Csaf,
}

/// One vulnerability and what it affects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Vulnerability {
    pub id: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// Vectors as published, most preferred first (v4.0, v3.1, v3.0, v2).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cvss: Vec<clinical::Vector>,
    pub affected: Vec<Affected>,
    pub feed: Feed,
    /// The feed itself says it is exploited in the wild (NVD copies CISA KEV's date).
    #[serde(default)]
    pub exploited: bool,
    /// The advisory that published it (CSAF `document.tracking.id`, e.g. `ICSMA-20-049-01`):
    /// operators look advisories up by this id, and re-importing an advisory replaces what it
    /// said before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advisory: Option<String>,
    /// The weakness, e.g. `CWE-798 Use of Hard-coded Credentials`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwe: Option<String>,
}

impl Vulnerability {
    /// The CVE id when the vulnerability has one: feeds agree on CVE ids, not on their own.
    pub fn canonical_id(&self) -> &str {
        std::iter::once(&self.id)
            .chain(&self.aliases)
            .find(|a| a.starts_with("CVE-"))
            .unwrap_or(&self.id)
    }

    pub fn ids(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.id.as_str()).chain(self.aliases.iter().map(String::as_str))
    }

    /// The vector used for scoring: the newest CVSS version published.
    pub fn preferred_vector(&self) -> Option<&clinical::Vector> {
        use clinical::Version::*;
        [V40, V31, V30, V2]
            .into_iter()
            .find_map(|ver| self.cvss.iter().find(|v| v.version() == ver))
    }
}

/// What a vulnerability affects: a product and its vulnerable versions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Affected {
    pub target: Target,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ranges: Vec<Range>,
    /// Explicitly listed vulnerable versions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<String>,
    /// Versions the feed says are fixed or not affected, even where a range above covers them
    /// (CSAF lists `fixed` and `known_not_affected` products beside broad affected ranges).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unaffected: Vec<Range>,
    /// What the publisher tells operators of this product to do.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remediations: Vec<Remediation>,
}

impl Affected {
    /// Affected only by the feed's own ranges and versions: no exclusions, no remediations.
    pub fn new(target: Target, ranges: Vec<Range>, versions: Vec<String>) -> Self {
        Self {
            target,
            ranges,
            versions,
            unaffected: Vec::new(),
            remediations: Vec::new(),
        }
    }

    pub fn covers(&self, v: &str) -> bool {
        if self.unaffected.iter().any(|r| r.contains(v)) {
            return false;
        }
        self.versions
            .iter()
            .any(|x| version::compare(x, v) == Ordering::Equal)
            || self.ranges.iter().any(|r| r.contains(v))
    }

    /// The lowest fixing version above `v`, for the "update to" advice: the exclusive end of a
    /// range holding `v`, or the start of an unaffected range above it.
    pub fn fixed_after(&self, v: &str) -> Option<&str> {
        let range_ends = self
            .ranges
            .iter()
            .filter(|r| r.contains(v))
            .filter_map(|r| {
                r.end
                    .as_ref()
                    .filter(|e| !e.inclusive)
                    .map(|e| e.version.as_str())
            });
        let unaffected_above = self
            .unaffected
            .iter()
            .filter_map(|r| r.start.as_ref())
            .map(|s| s.version.as_str())
            .filter(|s| version::compare(s, v) == Ordering::Greater);
        range_ends
            .chain(unaffected_above)
            .min_by(|a, b| version::compare(a, b))
    }

    /// The remediation to propose first (see [`preferred`]).
    pub fn preferred_remediation(&self) -> Option<&Remediation> {
        preferred(&self.remediations)
    }
}

/// The one remediation to propose as the action: the first vendor fix, else the first
/// mitigation, else the first workaround, whatever order the advisory lists them in (a "no
/// fix" statement only when there is nothing else). The others stay in the details.
pub fn preferred(list: &[Remediation]) -> Option<&Remediation> {
    list.iter().min_by_key(|r| r.category)
}

/// What a publisher tells operators to do about a vulnerability (CSAF `remediations`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Remediation {
    pub category: RemediationCategory,
    pub details: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The advisory it comes from, filled in when matched to a device (a CVE listed by two
    /// advisories gathers the remediations of both).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advisory: Option<String>,
}

/// CSAF 2.0 remediation categories, in the order RAMA proposes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RemediationCategory {
    VendorFix,
    Mitigation,
    Workaround,
    NoFixPlanned,
    NoneAvailable,
}

impl RemediationCategory {
    pub const fn as_str(self) -> &'static str {
        match self {
            RemediationCategory::VendorFix => "vendor fix",
            RemediationCategory::Mitigation => "mitigation",
            RemediationCategory::Workaround => "workaround",
            RemediationCategory::NoFixPlanned => "no fix planned",
            RemediationCategory::NoneAvailable => "no remediation available",
        }
    }
}

impl std::fmt::Display for RemediationCategory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The product a vulnerability is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Target {
    /// A package (OSV): matched by purl when both sides have one, else by name.
    Package {
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ecosystem: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        purl: Option<String>,
    },
    /// A vendor's product: a CPE 2.3 product (NVD), or a CSAF product tree's vendor and
    /// product name (advisories). Matched by vendor and product where the device's component
    /// names both (a CPE), else by product name against the component or model name.
    Cpe { vendor: String, product: String },
}

/// One end of a version range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bound {
    pub version: String,
    pub inclusive: bool,
}

/// A version interval; an absent end is unbounded.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Range {
    pub start: Option<Bound>,
    pub end: Option<Bound>,
}

impl Range {
    pub fn contains(&self, v: &str) -> bool {
        let above = self
            .start
            .as_ref()
            .is_none_or(|s| match version::compare(v, &s.version) {
                Ordering::Greater => true,
                Ordering::Equal => s.inclusive,
                Ordering::Less => false,
            });
        let below = self
            .end
            .as_ref()
            .is_none_or(|e| match version::compare(v, &e.version) {
                Ordering::Less => true,
                Ordering::Equal => e.inclusive,
                Ordering::Greater => false,
            });
        above && below
    }
}

/// Normalises product names so "Sigma Spectrum", "sigma_spectrum" and "sigma-spectrum" agree.
pub fn normalise(name: &str) -> String {
    name.trim()
        .chars()
        .map(|c| {
            if c == '_' || c == ' ' {
                '-'
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect()
}

/// `pkg:type/namespace/name` of a purl, without version, qualifiers or subpath.
pub fn purl_base(purl: &str) -> String {
    let end = purl.find(['@', '?', '#']).unwrap_or(purl.len());
    purl[..end].to_ascii_lowercase()
}

/// Vendor and product of a CPE 2.3 formatted string (`cpe:2.3:part:vendor:product:version:…`).
pub fn cpe_parts(cpe: &str) -> Option<(&str, &str, &str)> {
    let mut it = cpe.strip_prefix("cpe:2.3:")?.split(':');
    let _part = it.next()?;
    Some((it.next()?, it.next()?, it.next().unwrap_or("*")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(v: &str, inclusive: bool) -> Option<Bound> {
        Some(Bound {
            version: v.into(),
            inclusive,
        })
    }

    #[test]
    fn ranges_respect_inclusivity() {
        let r = Range {
            start: b("1.0", true),
            end: b("2.0", false),
        };
        assert!(
            r.contains("1.0") && r.contains("1.9.9") && !r.contains("2.0") && !r.contains("0.9")
        );
        let r = Range {
            start: b("1.0", false),
            end: b("2.0", true),
        };
        assert!(!r.contains("1.0") && r.contains("2.0"));
        assert!(Range::default().contains("anything"));
    }

    #[test]
    fn names_purls_and_cpes_normalise() {
        assert_eq!(normalise("Sigma Spectrum"), normalise("sigma_spectrum"));
        assert_eq!(
            purl_base("pkg:generic/openssl@1.0.2k?arch=arm"),
            "pkg:generic/openssl"
        );
        assert_eq!(
            cpe_parts("cpe:2.3:o:baxter:sigma_spectrum_firmware:8.00.01:*:*:*:*:*:*:*"),
            Some(("baxter", "sigma_spectrum_firmware", "8.00.01"))
        );
        assert_eq!(cpe_parts("cpe:/o:baxter"), None);
    }
}
