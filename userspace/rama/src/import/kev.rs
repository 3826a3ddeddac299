//! CISA's Known Exploited Vulnerabilities catalogue, CSV edition.
//!
//! KEV says which CVEs attackers use; it carries no version data, so it weights vulnerabilities
//! matched from the other feeds rather than matching anything itself.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::Error;

/// One catalogue entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub cve: String,
    pub vendor: String,
    pub product: String,
    pub date_added: String,
    /// `knownRansomwareCampaignUse` is `Known`.
    pub ransomware: bool,
}

pub fn load(file: &Path) -> Result<BTreeMap<String, Entry>, Error> {
    parse(file, &super::read(file)?)
}

pub fn parse(file: &Path, bytes: &[u8]) -> Result<BTreeMap<String, Entry>, Error> {
    let mut rdr = csv::ReaderBuilder::new().from_reader(bytes);
    let headers = rdr
        .headers()
        .map_err(|e| Error::invalid(file, "(header)", Some(1), e.to_string()))?
        .clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h.trim().trim_start_matches('\u{feff}') == name)
            .ok_or_else(|| Error::invalid(file, name, Some(1), "column missing from the header"))
    };
    let (id, vendor, product, added, ransom) = (
        col("cveID")?,
        col("vendorProject")?,
        col("product")?,
        col("dateAdded")?,
        col("knownRansomwareCampaignUse")?,
    );
    let mut out = BTreeMap::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| {
            Error::invalid(
                file,
                "(csv)",
                e.position().map(|p| p.line() as usize),
                e.to_string(),
            )
        })?;
        let line = rec.position().map(|p| p.line() as usize);
        let get = |i: usize| rec.get(i).unwrap_or("").trim().to_owned();
        let cve = get(id);
        if !valid_cve(&cve) {
            return Err(Error::invalid(
                file,
                "cveID",
                line,
                format!("`{cve}` is not a CVE id"),
            ));
        }
        let date_added = get(added);
        if !valid_date(&date_added) {
            return Err(Error::invalid(
                file,
                "dateAdded",
                line,
                format!("`{date_added}` is not a YYYY-MM-DD date"),
            ));
        }
        let ransomware = match get(ransom).as_str() {
            "Known" => true,
            "Unknown" | "" => false,
            other => {
                return Err(Error::invalid(
                    file,
                    "knownRansomwareCampaignUse",
                    line,
                    format!("`{other}` is not Known or Unknown"),
                ));
            }
        };
        out.insert(
            cve.clone(),
            Entry {
                cve,
                vendor: get(vendor),
                product: get(product),
                date_added,
                ransomware,
            },
        );
    }
    Ok(out)
}

fn valid_cve(s: &str) -> bool {
    let mut it = s.splitn(3, '-');
    it.next() == Some("CVE")
        && it
            .next()
            .is_some_and(|y| y.len() == 4 && y.bytes().all(|b| b.is_ascii_digit()))
        && it
            .next()
            .is_some_and(|n| n.len() >= 4 && n.bytes().all(|b| b.is_ascii_digit()))
}

fn valid_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}
