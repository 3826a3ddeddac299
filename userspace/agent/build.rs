//! Builds the eBPF probes (nightly, bpfel-unknown-none) and embeds the object in the agent.
//!
//! With `AYA_BUILD_SKIP=1` (a stable-only build without bpf-linker) an empty object is
//! embedded instead, and the agent refuses to start its sensor with a clear message.

use std::path::PathBuf;

fn main() -> anyhow::Result<()> {
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let object = out_dir.join("heir-probes");
    let skip = std::env::var("AYA_BUILD_SKIP")
        .map(|v| v == "1" || v.eq_ignore_ascii_case("true"))
        .unwrap_or(false);
    if skip {
        println!("cargo:rerun-if-env-changed=AYA_BUILD_SKIP");
        std::fs::write(&object, [])?;
        std::fs::write(out_dir.join("heir-xdp"), [])?;
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
