//! NVD CVE API 2.0 JSON (`"format": "NVD_CVE", "version": "2.0"`), as saved from the API or the
//! NVD JSON 2.0 data feeds.

use std::path::Path;

use serde::Deserialize;

use super::Error;
use crate::clinical;
use crate::vuln::{Affected, Bound, Feed, Range, Target, Vulnerability};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Doc {
    format: String,
    version: String,
    vulnerabilities: Vec<Item>,
}

#[derive(Deserialize)]
struct Item {
    cve: Cve,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Cve {
    id: String,
    #[serde(default)]
    descriptions: Vec<Description>,
    #[serde(default)]
    metrics: Metrics,
    #[serde(default)]
    configurations: Vec<Configuration>,
    #[serde(default)]
    cisa_exploit_add: Option<String>,
}

#[derive(Deserialize)]
struct Description {
    lang: String,
    value: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Metrics {
    #[serde(default)]
    cvss_metric_v40: Vec<Metric>,
    #[serde(default)]
    cvss_metric_v31: Vec<Metric>,
    #[serde(default)]
    cvss_metric_v30: Vec<Metric>,
    #[serde(default)]
    cvss_metric_v2: Vec<Metric>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Metric {
    cvss_data: CvssData,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CvssData {
    vector_string: String,
}

#[derive(Deserialize)]
struct Configuration {
    nodes: Vec<Node>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Node {
    #[serde(default)]
    negate: bool,
    #[serde(default)]
    cpe_match: Vec<CpeMatch>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CpeMatch {
    vulnerable: bool,
    criteria: String,
    #[serde(default)]
    version_start_including: Option<String>,
    #[serde(default)]
    version_start_excluding: Option<String>,
    #[serde(default)]
    version_end_including: Option<String>,
    #[serde(default)]
    version_end_excluding: Option<String>,
}

pub fn load(file: &Path) -> Result<Vec<Vulnerability>, Error> {
    parse(file, &super::read(file)?)
}

pub fn parse(file: &Path, bytes: &[u8]) -> Result<Vec<Vulnerability>, Error> {
    let doc: Doc = super::json(file, bytes)?;
    if doc.format != "NVD_CVE" {
        return Err(Error::invalid(
            file,
            "format",
            None,
            format!("`{}` is not `NVD_CVE`", doc.format),
        ));
    }
    if !doc.version.starts_with("2.") {
        return Err(Error::invalid(
            file,
            "version",
            None,
            format!("NVD format {} is not supported (2.0 is)", doc.version),
        ));
    }
    let mut out = Vec::with_capacity(doc.vulnerabilities.len());
    for (i, item) in doc.vulnerabilities.into_iter().enumerate() {
        let at = format!("vulnerabilities[{i}].cve");
        let c = item.cve;
        if !c.id.starts_with("CVE-") {
            return Err(Error::invalid(
                file,
                format!("{at}.id"),
                None,
                format!("`{}` is not a CVE id", c.id),
            ));
        }
        let mut cvss = Vec::new();
        for (name, list) in [
            ("cvssMetricV40", &c.metrics.cvss_metric_v40),
            ("cvssMetricV31", &c.metrics.cvss_metric_v31),
            ("cvssMetricV30", &c.metrics.cvss_metric_v30),
            ("cvssMetricV2", &c.metrics.cvss_metric_v2),
        ] {
            for (j, m) in list.iter().enumerate() {
                let v: clinical::Vector =
                    m.cvss_data
                        .vector_string
                        .parse()
                        .map_err(|e: clinical::InvalidVector| {
                            Error::invalid(
                                file,
                                format!("{at}.metrics.{name}[{j}].cvssData.vectorString"),
                                None,
                                e.to_string(),
                            )
                        })?;
                cvss.push(v);
            }
        }
        let mut affected = Vec::new();
        for (k, conf) in c.configurations.iter().enumerate() {
            for (n, node) in conf.nodes.iter().enumerate() {
                if node.negate {
                    continue;
                }
                for (m, cm) in node.cpe_match.iter().enumerate() {
                    let here =
                        format!("{at}.configurations[{k}].nodes[{n}].cpeMatch[{m}].criteria");
                    let Some((vendor, product, version)) = crate::vuln::cpe_parts(&cm.criteria)
                    else {
                        return Err(Error::invalid(
                            file,
                            here,
                            None,
                            format!("`{}` is not a CPE 2.3 name", cm.criteria),
                        ));
                    };
                    if !cm.vulnerable {
                        continue;
                    }
                    let bound = |v: &Option<String>, inclusive| {
                        v.as_ref().map(|v| Bound {
                            version: v.clone(),
                            inclusive,
                        })
                    };
                    let start = bound(&cm.version_start_including, true)
                        .or(bound(&cm.version_start_excluding, false));
                    let end = bound(&cm.version_end_including, true)
                        .or(bound(&cm.version_end_excluding, false));
                    let (ranges, versions) = if start.is_some() || end.is_some() {
                        (vec![Range { start, end }], Vec::new())
                    } else if version == "*" {
                        (vec![Range::default()], Vec::new())
                    } else if version == "-" {
                        continue; // "not applicable": no version to compare
                    } else {
                        (Vec::new(), vec![version.replace('\\', "")])
                    };
                    affected.push(Affected::new(
                        Target::Cpe {
                            vendor: vendor.to_owned(),
                            product: product.to_owned(),
                        },
                        ranges,
                        versions,
                    ));
                }
            }
        }
        let summary = c
            .descriptions
            .iter()
            .find(|d| d.lang == "en")
            .map(|d| d.value.clone());
        out.push(Vulnerability {
            id: c.id,
            aliases: Vec::new(),
            summary,
            cvss,
            affected,
            feed: Feed::Nvd,
            exploited: c.cisa_exploit_add.is_some(),
            advisory: None,
            cwe: None,
        });
    }
    Ok(out)
}
