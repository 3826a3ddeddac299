//! Embeds the shipped rule files (`rules/` at the top of the source tree) in the library, so
//! an installed `heir` runs them wherever it is copied; `/etc/heir/rules` adds to them.

use std::path::{Path, PathBuf};

fn main() {
    let root = Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"))
        .join("../../rules")
        .canonicalize()
        .expect("the rules/ directory of the source tree");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    walk(&root, &mut files);
    files.sort();
    let mut out = String::from("&[\n");
    for f in &files {
        let rel = f.strip_prefix(&root).expect("under rules/");
        out.push_str(&format!(
            "    ({:?}, include_str!({:?})),\n",
            rel.to_str().expect("rule file names are UTF-8"),
            f.to_str().expect("rule file paths are UTF-8"),
        ));
    }
    out.push_str("]\n");
    let dest = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it")).join("built_in.rs");
    std::fs::write(&dest, out).expect("writing the built-in rules list");
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("reading rules/") {
        let p = entry.expect("reading rules/").path();
        if p.is_dir() {
            walk(&p, out);
        } else if matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")) {
            out.push(p);
        }
    }
}
