//! heir reads CycloneDX with its own small serde types (field-precise errors, spec 1.2 to 1.6).
//! This cross-checks them against the reference model of the `cyclonedx-bom` crate (spec 1.3 to
//! 1.5): the fixture SBOMs are valid CycloneDX, and both readers see the same components.

mod common;

use cyclonedx_bom::models::component::Components;
use cyclonedx_bom::prelude::*;
use heir_rama::import::sbom;

fn flatten(list: &Components, out: &mut Vec<(String, Option<String>, Option<String>)>) {
    for c in &list.0 {
        out.push((
            c.name.to_string(),
            c.version.as_ref().map(|v| v.to_string()),
            c.purl.as_ref().map(|p| p.to_string()),
        ));
        if let Some(sub) = &c.components {
            flatten(sub, out);
        }
    }
}

#[test]
fn fixture_sboms_agree_with_the_reference_cyclonedx_model() {
    for name in ["infusia-300.cdx.json", "archivepro.cdx.json"] {
        let path = common::fixture(name);
        let bytes = std::fs::read(&path).unwrap();
        let reference =
            Bom::parse_from_json(bytes.as_slice()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let validation = reference.validate();
        assert!(validation.passed(), "{name}: {validation:?}");

        let ours = sbom::parse(&path, &bytes).unwrap();
        let meta = reference
            .metadata
            .as_ref()
            .and_then(|m| m.component.as_ref())
            .unwrap();
        assert_eq!(ours.model, meta.name.to_string());

        let mut theirs = Vec::new();
        flatten(reference.components.as_ref().unwrap(), &mut theirs);
        let ours: Vec<_> = ours
            .components
            .into_iter()
            .map(|c| (c.name, c.version, c.purl))
            .collect();
        assert_eq!(ours, theirs, "{name}");
    }
}
