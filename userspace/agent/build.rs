//! Builds the eBPF probes (nightly, bpfel-unknown-none) and embeds the object in the agent.
//!
//! With `AYA_BUILD_SKIP=1` (a stable-only build without bpf-linker) an empty object is
//! embedded instead, and the agent refuses to start its sensor with a clear message.
//!
//! With `HEIR_BPF_OBJECTS=DIR` the objects an earlier build made are embedded from `DIR`
//! instead of being built: the sanitizer build of the fuzz targets cannot build the probes
//! (its compiler flags do not apply to the BPF target), but its XDP door needs the program.

use std::path::{Path, PathBuf};

use anyhow::Context;

const OBJECTS: [&str; 2] = ["heir-probes", "heir-xdp"];

fn main() -> anyhow::Result<()> {
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    println!("cargo:rerun-if-env-changed=HEIR_BPF_OBJECTS");
    if let Some(dir) = std::env::var_os("HEIR_BPF_OBJECTS") {
        for name in OBJECTS {
            let from = Path::new(&dir).join(name);
            println!("cargo:rerun-if-changed={}", from.display());
            std::fs::copy(&from, out_dir.join(name))
                .with_context(|| format!("HEIR_BPF_OBJECTS: copying {}", from.display()))?;
        }
        return Ok(());
    }
    let skip = std::env::var("AYA_BUILD_SKIP")
        .map(|v| v == "1" || v.eq_ignore_ascii_case("true"))
        .unwrap_or(false);
    if skip {
        println!("cargo:rerun-if-env-changed=AYA_BUILD_SKIP");
        for name in OBJECTS {
            std::fs::write(out_dir.join(name), [])?;
        }
        return Ok(());
    }
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let probes = manifest_dir.join("../../ebpf/probes").canonicalize()?;
    let probes = probes
        .to_str()
        .ok_or_else(|| anyhow::anyhow!("probe path is not UTF-8"))?;
    aya_build::build_ebpf(
        [aya_build::Package {
            name: "heir-probes",
            root_dir: probes,
            ..Default::default()
        }],
        aya_build::Toolchain::Nightly,
    )
}
