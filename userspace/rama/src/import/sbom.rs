//! CycloneDX JSON SBOMs, one per device model.
//!
//! Only the fields RAMA needs are read (the component tree with names, versions, purls and
//! CPEs); the rest of the document may be anything CycloneDX 1.2 to 1.6 allows. Own serde types
//! rather than the full CycloneDX model keep error messages pointed at the field that matters.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::Error;

/// A software component a device model ships.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Component {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purl: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpe: Option<String>,
}

/// The SBOM of one device model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sbom {
    /// `metadata.component.name`: the device model the SBOM describes.
    pub model: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_version: Option<String>,
    /// All components, nested ones flattened.
    pub components: Vec<Component>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Bom {
    bom_format: String,
    spec_version: String,
    #[serde(default)]
    metadata: Option<Metadata>,
    #[serde(default)]
    components: Vec<RawComponent>,
}

#[derive(Deserialize)]
struct Metadata {
    #[serde(default)]
    component: Option<RawComponent>,
}

#[derive(Deserialize)]
struct RawComponent {
    #[serde(rename = "type")]
    kind: String,
    name: String,
    #[serde(default)]
    group: Option<String>,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    purl: Option<String>,
    #[serde(default)]
    cpe: Option<String>,
    #[serde(default)]
    components: Vec<RawComponent>,
}

const KINDS: &[&str] = &[
    "application",
    "framework",
    "library",
    "container",
    "platform",
    "operating-system",
    "device",
    "device-driver",
    "firmware",
    "file",
    "machine-learning-model",
    "data",
    "cryptographic-asset",
];

pub fn load(file: &Path) -> Result<Sbom, Error> {
    parse(file, &super::read(file)?)
}

pub fn parse(file: &Path, bytes: &[u8]) -> Result<Sbom, Error> {
    let bom: Bom = super::json(file, bytes)?;
    if bom.bom_format != "CycloneDX" {
        return Err(Error::invalid(
            file,
            "bomFormat",
            None,
            format!("`{}` is not `CycloneDX`", bom.bom_format),
        ));
    }
    if !matches!(
        bom.spec_version.as_str(),
        "1.2" | "1.3" | "1.4" | "1.5" | "1.6"
    ) {
        return Err(Error::invalid(
            file,
            "specVersion",
            None,
            format!(
                "CycloneDX {} is not supported (1.2 to 1.6 are)",
                bom.spec_version
            ),
        ));
    }
    let meta = bom.metadata.and_then(|m| m.component).ok_or_else(|| {
        Error::invalid(
            file,
            "metadata.component",
            None,
            "missing: it names the device model the SBOM describes",
        )
    })?;
    check(file, "metadata.component", &meta)?;
    let model = meta.name.trim().to_owned();
    let mut components = Vec::new();
    flatten(file, "components", &bom.components, &mut components)?;
    flatten(
        file,
        "metadata.component.components",
        &meta.components,
        &mut components,
    )?;
    Ok(Sbom {
        model,
        model_version: meta.version,
        components,
    })
}

fn check(file: &Path, at: &str, c: &RawComponent) -> Result<(), Error> {
    if !KINDS.contains(&c.kind.as_str()) {
        return Err(Error::invalid(
            file,
            format!("{at}.type"),
            None,
            format!("`{}` is not a CycloneDX component type", c.kind),
        ));
    }
    if c.name.trim().is_empty() {
        return Err(Error::invalid(
            file,
            format!("{at}.name"),
            None,
            "must not be empty",
        ));
    }
    if let Some(p) = &c.purl
        && !p.starts_with("pkg:")
    {
        return Err(Error::invalid(
            file,
            format!("{at}.purl"),
            None,
            format!("`{p}` is not a package URL (pkg:…)"),
        ));
    }
    if let Some(cpe) = &c.cpe
        && crate::vuln::cpe_parts(cpe).is_none()
    {
        return Err(Error::invalid(
            file,
            format!("{at}.cpe"),
            None,
            format!("`{cpe}` is not a CPE 2.3 name (cpe:2.3:…)"),
        ));
    }
    Ok(())
}

fn flatten(
    file: &Path,
    at: &str,
    list: &[RawComponent],
    out: &mut Vec<Component>,
) -> Result<(), Error> {
    for (i, c) in list.iter().enumerate() {
        let here = format!("{at}[{i}]");
        check(file, &here, c)?;
        let name = match &c.group {
            Some(g) if !g.is_empty() && c.purl.is_none() => format!("{g}/{}", c.name),
            _ => c.name.clone(),
        };
        out.push(Component {
            name,
            version: c.version.clone(),
            purl: c.purl.clone(),
            cpe: c.cpe.clone(),
        });
        flatten(file, &format!("{here}.components"), &c.components, out)?;
    }
    Ok(())
}
