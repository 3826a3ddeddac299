//! CSAF 2.0 advisories (OASIS Common Security Advisory Framework), the format vendors and CERTs
//! publish advisories in — among them CISA's ICS medical advisories (ICSMA).
//!
//! An advisory names its products in `product_tree` (nested `branches` of vendor, product
//! name and version, `full_product_names`, `relationships`) and says, per vulnerability, which
//! product ids are affected, fixed or not affected and what to do about it. Each vulnerability
//! becomes one [`Vulnerability`] whose [`Affected`] entries are the advisory's products,
//! with the fixed and not-affected versions as exclusions and the remediations kept so RAMA
//! can propose them.

mod versions;

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;

use self::versions::Versions;
use super::Error;
use crate::clinical;
use crate::vuln::{
    Affected, Bound, Feed, Range, Remediation, RemediationCategory, Target, Vulnerability,
    normalise,
};

/// One imported advisory.
#[derive(Debug, Clone, PartialEq)]
pub struct Advisory {
    /// `document.tracking.id`, e.g. `ICSMA-20-049-01`.
    pub id: String,
    pub title: String,
    pub vulnerabilities: Vec<Vulnerability>,
}

#[derive(Deserialize)]
struct Doc {
    document: Document,
    #[serde(default)]
    product_tree: ProductTree,
    #[serde(default)]
    vulnerabilities: Vec<RawVuln>,
}

#[derive(Deserialize)]
struct Document {
    category: String,
    csaf_version: String,
    title: String,
    tracking: Tracking,
}

#[derive(Deserialize)]
struct Tracking {
    id: String,
}

#[derive(Deserialize, Default)]
struct ProductTree {
    #[serde(default)]
    branches: Vec<Branch>,
    #[serde(default)]
    full_product_names: Vec<FullProductName>,
    #[serde(default)]
    relationships: Vec<Relationship>,
    #[serde(default)]
    product_groups: Vec<ProductGroup>,
}

#[derive(Deserialize)]
struct Branch {
    category: BranchCategory,
    name: String,
    #[serde(default)]
    branches: Vec<Branch>,
    #[serde(default)]
    product: Option<FullProductName>,
}

/// Every branch category of CSAF 2.0; those that do not name a vendor, product or version
/// (architecture, language, …) are walked through.
#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum BranchCategory {
    Architecture,
    HostName,
    Language,
    Legacy,
    PatchLevel,
    ProductFamily,
    ProductName,
    ProductVersion,
    ProductVersionRange,
    ServicePack,
    Specification,
    Vendor,
}

#[derive(Deserialize)]
struct FullProductName {
    name: String,
    product_id: String,
    #[serde(default)]
    product_identification_helper: Option<Helper>,
}

#[derive(Deserialize, Default)]
struct Helper {
    #[serde(default)]
    cpe: Option<String>,
    #[serde(default)]
    purl: Option<String>,
}

#[derive(Deserialize)]
struct Relationship {
    category: RelationshipCategory,
    full_product_name: FullProductName,
    product_reference: String,
    relates_to_product_reference: String,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum RelationshipCategory {
    DefaultComponentOf,
    ExternalComponentOf,
    InstalledOn,
    InstalledWith,
    OptionalComponentOf,
}

#[derive(Deserialize)]
struct ProductGroup {
    group_id: String,
    product_ids: Vec<String>,
}

#[derive(Deserialize)]
struct RawVuln {
    #[serde(default)]
    cve: Option<String>,
    #[serde(default)]
    cwe: Option<Cwe>,
    #[serde(default)]
    ids: Vec<VulnId>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    notes: Vec<Note>,
    #[serde(default)]
    product_status: ProductStatus,
    #[serde(default)]
    remediations: Vec<RawRemediation>,
    #[serde(default)]
    scores: Vec<RawScore>,
}

#[derive(Deserialize)]
struct Cwe {
    id: String,
    name: String,
}

#[derive(Deserialize)]
struct VulnId {
    text: String,
}

#[derive(Deserialize)]
struct Note {
    category: String,
    text: String,
}

#[derive(Deserialize, Default)]
struct ProductStatus {
    #[serde(default)]
    first_affected: Vec<String>,
    #[serde(default)]
    first_fixed: Vec<String>,
    #[serde(default)]
    fixed: Vec<String>,
    #[serde(default)]
    known_affected: Vec<String>,
    #[serde(default)]
    known_not_affected: Vec<String>,
    #[serde(default)]
    last_affected: Vec<String>,
    #[serde(default)]
    recommended: Vec<String>,
    #[serde(default)]
    under_investigation: Vec<String>,
}

#[derive(Deserialize)]
struct RawRemediation {
    category: RemediationCategory,
    details: String,
    #[serde(default)]
    product_ids: Vec<String>,
    #[serde(default)]
    group_ids: Vec<String>,
    #[serde(default)]
    url: Option<String>,
}

#[derive(Deserialize)]
struct RawScore {
    #[serde(default)]
    cvss_v2: Option<Cvss>,
    #[serde(default)]
    cvss_v3: Option<Cvss>,
    /// Not in CSAF 2.0's schema, but publishers already add CVSS v4.0 vectors beside v3.
    #[serde(default)]
    cvss_v4: Option<Cvss>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Cvss {
    vector_string: String,
}

const CATEGORIES: [&str; 5] = [
    "csaf_base",
    "csaf_security_advisory",
    "csaf_vex",
    "csaf_security_incident_response",
    "csaf_informational_advisory",
];

pub fn load(file: &Path) -> Result<Advisory, Error> {
    parse(file, &super::read(file)?)
}

pub fn parse(file: &Path, bytes: &[u8]) -> Result<Advisory, Error> {
    let doc: Doc = super::json(file, bytes)?;
    let d = &doc.document;
    if d.csaf_version != "2.0" {
        return Err(Error::invalid(
            file,
            "document.csaf_version",
            None,
            format!("CSAF {} is not supported (2.0 is)", d.csaf_version),
        ));
    }
    // Profiles other than the five of the standard are allowed (section 4.6); only an empty
    // category is not.
    if d.category.trim().is_empty() {
        return Err(Error::invalid(
            file,
            "document.category",
            None,
            format!("must not be empty (e.g. one of {})", CATEGORIES.join(", ")),
        ));
    }
    let id = d.tracking.id.trim().to_owned();
    if id.is_empty() {
        return Err(Error::invalid(
            file,
            "document.tracking.id",
            None,
            "must not be empty",
        ));
    }
    let products = Products::of(file, &doc.product_tree)?;
    let mut seen = HashMap::new();
    let mut out = Vec::with_capacity(doc.vulnerabilities.len());
    for (i, v) in doc.vulnerabilities.iter().enumerate() {
        let vuln = convert(file, &format!("vulnerabilities[{i}]"), &id, &products, v)?;
        if let Some(first) = seen.insert(vuln.id.clone(), i) {
            return Err(Error::invalid(
                file,
                format!("vulnerabilities[{i}]"),
                None,
                format!(
                    "`{}` is listed twice (also vulnerabilities[{first}])",
                    vuln.canonical_id()
                ),
            ));
        }
        out.push(vuln);
    }
    Ok(Advisory {
        id,
        title: d.title.clone(),
        vulnerabilities: out,
    })
}

/// What a product id names: the targets to match and the versions of them.
#[derive(Debug, Clone)]
struct Product {
    targets: Vec<Target>,
    versions: Versions,
}

/// The product tree resolved to product ids.
struct Products {
    by_id: HashMap<String, Vec<Product>>,
    groups: HashMap<String, Vec<String>>,
}

/// Vendor, product and version named by the branches above a product.
#[derive(Clone, Default)]
struct Context {
    vendor: Option<String>,
    product: Option<String>,
    family: Option<String>,
    versions: Option<Versions>,
}

impl Products {
    fn of(file: &Path, tree: &ProductTree) -> Result<Self, Error> {
        let mut p = Products {
            by_id: HashMap::new(),
            groups: HashMap::new(),
        };
        for (i, b) in tree.branches.iter().enumerate() {
            p.walk(
                file,
                &format!("product_tree.branches[{i}]"),
                b,
                Context::default(),
            )?;
        }
        for (i, f) in tree.full_product_names.iter().enumerate() {
            let at = format!("product_tree.full_product_names[{i}]");
            p.define(file, &at, f, &Context::default())?;
        }
        for (i, r) in tree.relationships.iter().enumerate() {
            let at = format!("product_tree.relationships[{i}]");
            // The component is what is vulnerable; the platform too when the component ships
            // in it by default (a device model with a vulnerable operating system).
            let mut refs = vec![("product_reference", &r.product_reference)];
            if r.category == RelationshipCategory::DefaultComponentOf {
                refs.push((
                    "relates_to_product_reference",
                    &r.relates_to_product_reference,
                ));
            }
            let mut resolved = Vec::new();
            for (field, id) in refs {
                let found = p.by_id.get(id.as_str()).ok_or_else(|| {
                    Error::invalid(
                        file,
                        format!("{at}.{field}"),
                        None,
                        format!("`{id}` is not a product defined in the product tree"),
                    )
                })?;
                resolved.extend(found.iter().cloned());
            }
            let fpn = &r.full_product_name;
            p.insert(file, &format!("{at}.full_product_name"), fpn, resolved)?;
        }
        for (i, g) in tree.product_groups.iter().enumerate() {
            let at = format!("product_tree.product_groups[{i}]");
            for (j, id) in g.product_ids.iter().enumerate() {
                p.known(file, &format!("{at}.product_ids[{j}]"), id)?;
            }
            p.groups.insert(g.group_id.clone(), g.product_ids.clone());
        }
        Ok(p)
    }

    fn walk(&mut self, file: &Path, at: &str, b: &Branch, mut ctx: Context) -> Result<(), Error> {
        let name = b.name.trim();
        if name.is_empty() {
            return Err(Error::invalid(
                file,
                format!("{at}.name"),
                None,
                "must not be empty",
            ));
        }
        match b.category {
            BranchCategory::Vendor => ctx.vendor = Some(name.to_owned()),
            BranchCategory::ProductName => ctx.product = Some(name.to_owned()),
            BranchCategory::ProductFamily => ctx.family = Some(name.to_owned()),
            BranchCategory::ProductVersion | BranchCategory::ProductVersionRange => {
                let v = versions::parse(name)
                    .map_err(|m| Error::invalid(file, format!("{at}.name"), None, m))?;
                ctx.versions = Some(v);
            }
            _ => {}
        }
        if let Some(fpn) = &b.product {
            self.define(file, &format!("{at}.product"), fpn, &ctx)?;
        }
        for (i, sub) in b.branches.iter().enumerate() {
            self.walk(file, &format!("{at}.branches[{i}]"), sub, ctx.clone())?;
        }
        Ok(())
    }

    /// Defines a product from its branch context and identification helper.
    fn define(
        &mut self,
        file: &Path,
        at: &str,
        fpn: &FullProductName,
        ctx: &Context,
    ) -> Result<(), Error> {
        let helper = fpn.product_identification_helper.as_ref();
        let mut versions = ctx.versions.clone();
        let mut targets = Vec::new();
        if let Some(cpe) = helper.and_then(|h| h.cpe.as_deref()) {
            let Some((vendor, product, version)) = crate::vuln::cpe_parts(cpe) else {
                return Err(Error::invalid(
                    file,
                    format!("{at}.product_identification_helper.cpe"),
                    None,
                    format!("`{cpe}` is not a CPE 2.3 name"),
                ));
            };
            targets.push(Target::Cpe {
                vendor: vendor.to_owned(),
                product: product.to_owned(),
            });
            if versions.is_none() && !matches!(version, "*" | "-" | "") {
                versions = Some(Versions {
                    ranges: Vec::new(),
                    exact: vec![version.replace('\\', "")],
                });
            }
        }
        let name = ctx
            .product
            .clone()
            .or_else(|| ctx.family.clone())
            .unwrap_or_else(|| fpn.name.trim().to_owned());
        if let Some(purl) = helper.and_then(|h| h.purl.as_deref()) {
            if !purl.starts_with("pkg:") {
                return Err(Error::invalid(
                    file,
                    format!("{at}.product_identification_helper.purl"),
                    None,
                    format!("`{purl}` is not a package URL"),
                ));
            }
            targets.push(Target::Package {
                name: name.clone(),
                ecosystem: None,
                purl: Some(purl.to_owned()),
            });
        }
        let named = Target::Cpe {
            vendor: ctx.vendor.clone().unwrap_or_default(),
            product: name,
        };
        if !targets.iter().any(|t| same_target(t, &named)) {
            targets.push(named);
        }
        let product = Product {
            targets,
            versions: versions.unwrap_or_else(Versions::all),
        };
        self.insert(file, at, fpn, vec![product])
    }

    fn insert(
        &mut self,
        file: &Path,
        at: &str,
        fpn: &FullProductName,
        products: Vec<Product>,
    ) -> Result<(), Error> {
        if fpn.product_id.trim().is_empty() {
            return Err(Error::invalid(
                file,
                format!("{at}.product_id"),
                None,
                "must not be empty",
            ));
        }
        if self
            .by_id
            .insert(fpn.product_id.clone(), products)
            .is_some()
        {
            return Err(Error::invalid(
                file,
                format!("{at}.product_id"),
                None,
                format!("`{}` is defined twice", fpn.product_id),
            ));
        }
        Ok(())
    }

    fn known(&self, file: &Path, at: &str, id: &str) -> Result<&[Product], Error> {
        self.by_id.get(id).map(Vec::as_slice).ok_or_else(|| {
            Error::invalid(
                file,
                at,
                None,
                format!("`{id}` is not a product defined in the product tree"),
            )
        })
    }

    /// The products a remediation names through `product_ids` and `group_ids`.
    fn referenced(
        &self,
        file: &Path,
        at: &str,
        r: &RawRemediation,
    ) -> Result<Vec<&Product>, Error> {
        let mut out = Vec::new();
        for (j, id) in r.product_ids.iter().enumerate() {
            out.extend(self.known(file, &format!("{at}.product_ids[{j}]"), id)?);
        }
        for (j, g) in r.group_ids.iter().enumerate() {
            let ids = self.groups.get(g).ok_or_else(|| {
                Error::invalid(
                    file,
                    format!("{at}.group_ids[{j}]"),
                    None,
                    format!("`{g}` is not a product group of the product tree"),
                )
            })?;
            for id in ids {
                out.extend(self.by_id.get(id).into_iter().flatten());
            }
        }
        Ok(out)
    }
}

/// Whether two targets name the same product once normalised.
fn same_target(a: &Target, b: &Target) -> bool {
    target_key(a) == target_key(b)
}

fn target_key(t: &Target) -> String {
    match t {
        Target::Package { name, purl, .. } => match purl {
            Some(p) => format!("purl:{}", crate::vuln::purl_base(p)),
            None => format!("name:{}", normalise(name)),
        },
        Target::Cpe { vendor, product } => {
            format!("cpe:{}:{}", normalise(vendor), normalise(product))
        }
    }
}

/// How a `product_status` list reads a product's versions.
#[derive(Clone, Copy)]
enum Status {
    /// These versions are affected.
    Affected,
    /// This version and later are affected.
    FirstAffected,
    /// This version and earlier are affected.
    LastAffected,
    /// These versions are fixed or were never affected.
    Unaffected,
    /// This version and later are fixed.
    FirstFixed,
}

fn convert(
    file: &Path,
    at: &str,
    advisory: &str,
    products: &Products,
    v: &RawVuln,
) -> Result<Vulnerability, Error> {
    let cve = match &v.cve {
        Some(c) if !is_cve(c) => {
            return Err(Error::invalid(
                file,
                format!("{at}.cve"),
                None,
                format!("`{c}` is not a CVE id"),
            ));
        }
        Some(c) => Some(c.trim().to_owned()),
        None => None,
    };
    let mut aliases: Vec<String> = cve.iter().cloned().collect();
    aliases.extend(v.ids.iter().map(|i| i.text.trim().to_owned()));
    aliases.dedup();
    let Some(name) = aliases.first().cloned() else {
        return Err(Error::invalid(
            file,
            at,
            None,
            "names neither a `cve` nor any `ids`: RAMA cannot tell it apart",
        ));
    };

    let mut cvss: Vec<clinical::Vector> = Vec::new();
    for (j, s) in v.scores.iter().enumerate() {
        for (field, c) in [
            ("cvss_v4", &s.cvss_v4),
            ("cvss_v3", &s.cvss_v3),
            ("cvss_v2", &s.cvss_v2),
        ] {
            let Some(c) = c else { continue };
            let vector: clinical::Vector =
                c.vector_string
                    .parse()
                    .map_err(|e: clinical::InvalidVector| {
                        Error::invalid(
                            file,
                            format!("{at}.scores[{j}].{field}.vectorString"),
                            None,
                            e.to_string(),
                        )
                    })?;
            if !cvss.contains(&vector) {
                cvss.push(vector);
            }
        }
    }

    // One entry per target, gathered across the vulnerability's product ids.
    let mut gathered: Vec<Affected> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let ps = &v.product_status;
    for (list, field, status) in [
        (&ps.known_affected, "known_affected", Status::Affected),
        (&ps.first_affected, "first_affected", Status::FirstAffected),
        (&ps.last_affected, "last_affected", Status::LastAffected),
        (&ps.fixed, "fixed", Status::Unaffected),
        (&ps.first_fixed, "first_fixed", Status::FirstFixed),
        (
            &ps.known_not_affected,
            "known_not_affected",
            Status::Unaffected,
        ),
        (&ps.recommended, "recommended", Status::Unaffected),
    ] {
        for (j, id) in list.iter().enumerate() {
            let here = format!("{at}.product_status.{field}[{j}]");
            for p in products.known(file, &here, id)? {
                for t in &p.targets {
                    let g = gather(&mut gathered, &mut index, t);
                    apply(g, &p.versions, status);
                }
            }
        }
    }
    for (j, id) in ps.under_investigation.iter().enumerate() {
        // No claim either way, but the id must still exist.
        products.known(
            file,
            &format!("{at}.product_status.under_investigation[{j}]"),
            id,
        )?;
    }

    for (j, r) in v.remediations.iter().enumerate() {
        let here = format!("{at}.remediations[{j}]");
        let details = r.details.split_whitespace().collect::<Vec<_>>().join(" ");
        if details.is_empty() {
            return Err(Error::invalid(
                file,
                format!("{here}.details"),
                None,
                "must not be empty",
            ));
        }
        let rem = Remediation {
            category: r.category,
            details,
            url: r.url.clone(),
            advisory: None,
        };
        let named = products.referenced(file, &here, r)?;
        let keys: Vec<String> = if named.is_empty() {
            // A remediation naming no product is about every product of the vulnerability.
            index.keys().cloned().collect()
        } else {
            named
                .iter()
                .flat_map(|p| p.targets.iter().map(target_key))
                .collect()
        };
        for k in keys {
            if let Some(&g) = index.get(&k) {
                let list = &mut gathered[g].remediations;
                if !list.contains(&rem) {
                    list.push(rem.clone());
                }
            }
        }
    }

    let affected = gathered
        .into_iter()
        .filter(|a| !a.ranges.is_empty() || !a.versions.is_empty())
        .collect();
    let summary = v
        .notes
        .iter()
        .find(|n| matches!(n.category.as_str(), "summary" | "description"))
        .map(|n| n.text.trim().to_owned())
        .or_else(|| v.title.clone());
    Ok(Vulnerability {
        // Several advisories can list one CVE (one per vendor of a shared component), and an
        // NVD record may hold it too: keyed per advisory, each keeps its own products, and
        // matching still counts the CVE once.
        id: format!("{advisory}/{name}"),
        aliases,
        summary,
        cvss,
        affected,
        feed: Feed::Csaf,
        exploited: false,
        advisory: Some(advisory.to_owned()),
        cwe: v
            .cwe
            .as_ref()
            .map(|c| format!("{} {}", c.id.trim(), c.name.trim())),
    })
}

fn is_cve(c: &str) -> bool {
    let Some(rest) = c.trim().strip_prefix("CVE-") else {
        return false;
    };
    let Some((year, num)) = rest.split_once('-') else {
        return false;
    };
    year.len() == 4 && num.len() >= 4 && year.bytes().chain(num.bytes()).all(|b| b.is_ascii_digit())
}

fn gather<'a>(
    gathered: &'a mut Vec<Affected>,
    index: &mut HashMap<String, usize>,
    t: &Target,
) -> &'a mut Affected {
    let k = target_key(t);
    let i = *index.entry(k).or_insert_with(|| {
        gathered.push(Affected::new(t.clone(), Vec::new(), Vec::new()));
        gathered.len() - 1
    });
    &mut gathered[i]
}

fn from(v: &str) -> Option<Bound> {
    Some(Bound {
        version: v.to_owned(),
        inclusive: true,
    })
}

fn push_unique<T: PartialEq>(list: &mut Vec<T>, x: T) {
    if !list.contains(&x) {
        list.push(x);
    }
}

fn apply(a: &mut Affected, v: &Versions, status: Status) {
    match status {
        Status::Affected => {
            for r in &v.ranges {
                push_unique(&mut a.ranges, r.clone());
            }
            for x in &v.exact {
                push_unique(&mut a.versions, x.clone());
            }
        }
        Status::FirstAffected | Status::LastAffected => {
            for r in &v.ranges {
                push_unique(&mut a.ranges, r.clone());
            }
            for x in &v.exact {
                let r = if matches!(status, Status::FirstAffected) {
                    Range {
                        start: from(x),
                        end: None,
                    }
                } else {
                    Range {
                        start: None,
                        end: from(x),
                    }
                };
                push_unique(&mut a.ranges, r);
            }
        }
        Status::Unaffected | Status::FirstFixed => {
            // "Every version is fixed" beside affected versions of the same product would
            // cancel them; an advisory means the listed fixed releases, so only bounded sets
            // exclude.
            if v.is_all() {
                return;
            }
            for r in &v.ranges {
                push_unique(&mut a.unaffected, r.clone());
            }
            for x in &v.exact {
                let end = if matches!(status, Status::FirstFixed) {
                    None
                } else {
                    from(x)
                };
                push_unique(
                    &mut a.unaffected,
                    Range {
                        start: from(x),
                        end,
                    },
                );
            }
        }
    }
}
