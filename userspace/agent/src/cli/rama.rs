//! `heir devices`, `heir rama` and `heir vuln import`: the inventory and its risk scores,
//! read from the state file the agent keeps (whether or not it runs).

use std::path::PathBuf;

use anyhow::{Context, Result};

use super::StateArgs;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    state: StateArgs,
    #[arg(long)]
    json: bool,
    /// Only this device.
    #[arg(long)]
    device: Option<String>,
    /// Show every factor and the actions that would lower the score most.
    #[arg(long)]
    explain: bool,
}

#[derive(clap::Subcommand)]
pub enum Vuln {
    /// Import an OSV JSON, NVD CVE JSON 2.0, CSAF 2.0 advisory, CISA KEV CSV, CycloneDX SBOM or
    /// MDS2 CSV file, or every such file of a directory. All or nothing: a malformed file
    /// imports nothing (and refuses its whole directory) and names the field at fault.
    Import {
        file: PathBuf,
        #[command(flatten)]
        state: StateArgs,
    },
}

pub fn devices(state: StateArgs, json: bool) -> Result<()> {
    let (_, state) = state.open()?;
    let listing = state.rama.listing();
    if json {
        println!("{}", serde_json::to_string_pretty(&listing)?);
    } else {
        print!("{}", heir_rama::text::devices(&listing));
    }
    Ok(())
}

pub fn rama(args: Args) -> Result<()> {
    let (_, state) = args.state.open()?;
    let r = &state.rama;
    match args.device {
        Some(id) => {
            let report = r
                .explain(&id)
                .with_context(|| format!("no device `{id}` in the inventory"))?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", heir_rama::text::report(&report));
            }
        }
        None => {
            let scores = r.scores();
            if args.json {
                let v = serde_json::json!({ "hospital": r.hospital(), "devices": scores });
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                print!("{}", heir_rama::text::scores(&r.hospital(), &scores));
                if args.explain {
                    for (id, _) in &scores {
                        if let Some(report) = r.explain(id.as_str()) {
                            print!("\n{}", heir_rama::text::report(&report));
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

pub fn vuln(cmd: Vuln) -> Result<()> {
    let Vuln::Import { file, state } = cmd;
    let (config, mut state) = state.open()?;
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data dir {}", config.data_dir.display()))?;
    let imported = state.rama.import(&file)?;
    state.save()?;
    println!("{}: {imported}", file.display());
    Ok(())
}
