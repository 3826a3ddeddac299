//! MAC OUI → manufacturer.
//!
//! The full IEEE registry (Debian's `ieee-data` package, `/usr/share/ieee-data/oui.csv`) is used
//! when present. Without it heir still names the makers that matter most in a hospital from a
//! small curated table of medical-device vendors, and says which source answered so an operator
//! knows why a device shows no manufacturer.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use heir_model::mac::MacAddr;

/// Where Debian's `ieee-data` package installs the MA-L registry.
pub const IEEE_OUI_CSV: &str = "/usr/share/ieee-data/oui.csv";

/// Which table answers manufacturer look-ups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The IEEE MA-L registry loaded from this file.
    Ieee(PathBuf),
    /// heir's built-in table of medical-device vendors (the registry was not installed).
    Curated,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Ieee(p) => write!(f, "IEEE registry {}", p.display()),
            Source::Curated => f.write_str(
                "built-in medical-vendor table (install ieee-data for the full registry)",
            ),
        }
    }
}

/// The registry file exists but could not be read as the IEEE CSV export.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading {file}")]
    Io {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}, line {line}: {message}")]
    Format {
        file: PathBuf,
        line: u64,
        message: String,
    },
}

/// A manufacturer table keyed by the 24-bit OUI.
#[derive(Debug, Clone)]
pub struct Table {
    source: Source,
    vendors: HashMap<[u8; 3], String>,
}

/// Real MA-L assignments (from the IEEE registry) of makers of medical devices and of the
/// clinical IT around them.
const CURATED: &[([u8; 3], &str)] = &[
    ([0x58, 0x46, 0xe1], "Baxter International Inc"),
    ([0x58, 0x42, 0xe4], "Baxter International Inc"),
    ([0x00, 0x13, 0x38], "Fresenius Vial"),
    (
        [0xb0, 0x4c, 0x05],
        "Fresenius Medical Care Deutschland GmbH",
    ),
    ([0x00, 0x03, 0xb1], "ICU Medical"),
    ([0x00, 0xb0, 0x94], "Alaris"),
    ([0x00, 0xd0, 0x75], "Alaris Medical Systems"),
    ([0xf8, 0xc6, 0x78], "CareFusion"),
    ([0x9c, 0xc8, 0xae], "Becton, Dickinson and Company"),
    ([0x00, 0x1a, 0x01], "Smiths Medical"),
    ([0x00, 0x09, 0x5c], "Philips Medical Systems"),
    ([0x00, 0x10, 0x5d], "Draeger Medical"),
    ([0x00, 0x30, 0xe6], "Draeger Medical Systems"),
    ([0xf0, 0xe5, 0xc3], "Drägerwerk AG & Co. KGaA"),
    ([0x44, 0x4b, 0x5d], "GE Healthcare"),
    ([0xa0, 0xf2, 0x17], "GE Medical System (China)"),
    ([0x00, 0x40, 0x97], "Datex (GE Healthcare)"),
    ([0x00, 0x0f, 0x14], "Mindray"),
    ([0x00, 0xa0, 0x37], "Mindray DS USA"),
    ([0x00, 0xa0, 0xaa], "Spacelabs Medical"),
    ([0x00, 0xa0, 0x9a], "Nihon Kohden America"),
    ([0xe0, 0xc2, 0xb7], "Masimo Corporation"),
    ([0xc8, 0x8b, 0xe8], "Masimo Corporation"),
    ([0x00, 0x1c, 0x05], "Nonin Medical Inc."),
    ([0x00, 0x1a, 0xfa], "Welch Allyn"),
    ([0x00, 0x14, 0xb8], "Hill-Rom"),
    ([0x00, 0x0f, 0x82], "Mortara Instrument"),
    ([0x00, 0x0d, 0xb8], "Schiller AG"),
    ([0x00, 0x22, 0x52], "ZOLL Lifecor Corporation"),
    ([0xdc, 0x16, 0xa2], "Medtronic Diabetes"),
    ([0x00, 0x25, 0x41], "Maquet Critical Care AB"),
    ([0x34, 0x9b, 0x5b], "Maquet GmbH"),
    ([0x00, 0x1f, 0xff], "Respironics"),
    ([0x00, 0x23, 0x6d], "ResMed Ltd"),
    ([0x00, 0x0d, 0xd1], "Stryker Corporation"),
    ([0x00, 0x1d, 0x4a], "Carestream Health"),
    ([0x08, 0x00, 0x66], "Agfa Corporation"),
    ([0x00, 0x60, 0x93], "Varian"),
    ([0x00, 0x0e, 0x2f], "Roche Diagnostics GmbH"),
    ([0x00, 0x60, 0x19], "Roche Diagnostics"),
    ([0x00, 0x13, 0xdd], "Abbott Diagnostics"),
    ([0xc0, 0xa2, 0x6d], "Abbott Point of Care"),
    ([0x00, 0xe0, 0x90], "Beckman Coulter (Lab Automation)"),
    ([0xd0, 0xd2, 0x86], "Beckman Coulter K.K."),
    ([0x00, 0x06, 0x6b], "Sysmex Corporation"),
    ([0x00, 0x1e, 0xe7], "Epic Systems Inc"),
];

impl Table {
    /// The IEEE registry at its Debian path when installed, the curated table otherwise.
    pub fn load_default() -> Result<Self, Error> {
        let p = Path::new(IEEE_OUI_CSV);
        if p.exists() {
            Self::load_ieee(p)
        } else {
            Ok(Self::curated())
        }
    }

    pub fn curated() -> Self {
        Self {
            source: Source::Curated,
            vendors: CURATED.iter().map(|(k, v)| (*k, (*v).to_owned())).collect(),
        }
    }

    /// Reads the IEEE CSV export (`Registry,Assignment,Organization Name,Organization Address`).
    pub fn load_ieee(path: &Path) -> Result<Self, Error> {
        let data = std::fs::read(path).map_err(|source| Error::Io {
            file: path.to_path_buf(),
            source,
        })?;
        Self::parse_ieee(path, &data)
    }

    /// Parses the IEEE CSV export held in `data`; `path` names it in errors.
    pub fn parse_ieee(path: &Path, data: &[u8]) -> Result<Self, Error> {
        let file = path.to_path_buf();
        let mut rdr = csv::ReaderBuilder::new().flexible(true).from_reader(data);
        let headers = rdr.headers().map_err(|e| Error::Format {
            file: file.clone(),
            line: 1,
            message: e.to_string(),
        })?;
        let col = |name: &str| headers.iter().position(|h| h.trim() == name);
        let (Some(assign), Some(org)) = (col("Assignment"), col("Organization Name")) else {
            return Err(Error::Format {
                file,
                line: 1,
                message: "header lacks `Assignment` and `Organization Name` columns".into(),
            });
        };
        let mut vendors = HashMap::new();
        for rec in rdr.records() {
            let rec = rec.map_err(|e| Error::Format {
                file: file.clone(),
                line: e.position().map_or(0, |p| p.line()),
                message: e.to_string(),
            })?;
            let line = rec.position().map_or(0, |p| p.line());
            let a = rec.get(assign).unwrap_or("").trim();
            let bytes = hex_prefix(a).ok_or_else(|| Error::Format {
                file: file.clone(),
                line,
                message: format!("field `Assignment`: `{a}` is not a 6-hex-digit OUI"),
            })?;
            let name = rec.get(org).unwrap_or("").trim();
            if !name.is_empty() {
                vendors.insert(bytes, name.to_owned());
            }
        }
        Ok(Self {
            source: Source::Ieee(file),
            vendors,
        })
    }

    pub fn source(&self) -> &Source {
        &self.source
    }

    pub fn len(&self) -> usize {
        self.vendors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.vendors.is_empty()
    }

    pub fn manufacturer(&self, mac: MacAddr) -> Option<&str> {
        if mac.is_locally_administered() {
            return None;
        }
        self.vendors.get(&mac.oui()).map(String::as_str)
    }
}

fn hex_prefix(a: &str) -> Option<[u8; 3]> {
    if a.len() != 6 {
        return None;
    }
    let v = u32::from_str_radix(a, 16).ok()?;
    Some([(v >> 16) as u8, (v >> 8) as u8, v as u8])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curated_table_names_medical_vendors() {
        let t = Table::curated();
        assert_eq!(t.source(), &Source::Curated);
        let mac: MacAddr = "58:46:e1:00:00:01".parse().unwrap();
        assert_eq!(t.manufacturer(mac), Some("Baxter International Inc"));
        let unknown: MacAddr = "00:00:00:00:00:01".parse().unwrap();
        assert_eq!(t.manufacturer(unknown), None);
    }

    #[test]
    fn ieee_csv_with_quoted_names_loads_and_bad_rows_name_their_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("oui.csv");
        std::fs::write(
            &p,
            "Registry,Assignment,Organization Name,Organization Address\n\
             MA-L,9CC8AE,\"Becton, Dickinson and Company\",\"1 Becton Drive Franklin Lakes NJ US 07417 \"\n\
             MA-L,00095C,Philips Medical Systems - Cardiac and Monitoring Systems (CM,3000 Minuteman Road Andover MA US 01810 \n",
        )
        .unwrap();
        let t = Table::load_ieee(&p).unwrap();
        assert_eq!(t.len(), 2);
        assert!(matches!(t.source(), Source::Ieee(f) if f == &p));
        let mac: MacAddr = "9c:c8:ae:01:02:03".parse().unwrap();
        assert_eq!(t.manufacturer(mac), Some("Becton, Dickinson and Company"));

        std::fs::write(
            &p,
            "Registry,Assignment,Organization Name,Organization Address\nMA-L,XYZ,Foo,Bar\n",
        )
        .unwrap();
        let e = Table::load_ieee(&p).unwrap_err().to_string();
        assert!(
            e.contains("line 2") && e.contains("Assignment") && e.contains("oui.csv"),
            "{e}"
        );
    }

    /// When Debian's registry is installed, the real file must load and agree with the curated
    /// table (whose entries were taken from it).
    #[test]
    fn real_ieee_registry_when_installed_agrees_with_curated_table() {
        let p = Path::new(IEEE_OUI_CSV);
        let t = Table::load_default().unwrap();
        if !p.exists() {
            assert_eq!(t.source(), &Source::Curated);
            return;
        }
        assert!(t.len() > 10_000, "{}", t.len());
        let curated = Table::curated();
        for (oui, _) in CURATED {
            let mac = MacAddr([oui[0], oui[1], oui[2], 0, 0, 1]);
            assert!(
                t.manufacturer(mac).is_some(),
                "{mac} missing from the IEEE registry"
            );
            assert!(curated.manufacturer(mac).is_some());
        }
    }
}
