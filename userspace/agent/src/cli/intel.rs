//! `heir import` and `heir indicators`: the operator's own intelligence beside the mesh's,
//! through the running agent's API, or straight into the store of a stopped one.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use heir_agent::intel::import::{self, Options};
use heir_mesh::Tlp;
use heir_model::{Category, Severity, Timestamp};

use super::{StateArgs, open_stopped};

#[derive(clap::Args)]
pub struct ImportArgs {
    /// A STIX 2.1 bundle, a MISP event, a MISP feed (its directory or manifest.json), or a
    /// plain list: one IP address, CIDR block, domain or http(s) URL per line, `#` comments.
    file: PathBuf,
    /// The TLP of every indicator (TLP:CLEAR, GREEN, AMBER, AMBER+STRICT, RED); default: the
    /// file's own marking, TLP:AMBER for a plain list.
    #[arg(long)]
    tlp: Option<Tlp>,
    /// Also share them over the mesh, under their TLP (needs the running agent and a
    /// membership; TLP:RED and address blocks never leave).
    #[arg(long)]
    share: bool,
    /// What a match means (a category slug).
    #[arg(long, default_value = "known_indicator")]
    category: Category,
    #[arg(long, default_value = "high")]
    severity: Severity,
    /// How sure the file's author is, 0–100.
    #[arg(long, default_value_t = 80, value_parser = clap::value_parser!(u8).range(0..=100))]
    confidence: u8,
    #[command(flatten)]
    state: StateArgs,
}

pub async fn import(args: ImportArgs) -> Result<()> {
    let opts = Options {
        tlp: args.tlp,
        category: args.category,
        severity: args.severity,
        confidence: args.confidence,
    };
    let parsed = import::read(&args.file, &opts, Timestamp::now())?;
    let config = args.state.config()?;
    let client = heir_api::Client::new(config.api_socket());
    let request = heir_api::ImportRequest {
        indicators: parsed.indicators,
        share: args.share,
    };
    let file = args.file.display();
    let skipped = parsed.skipped;
    match client.import(&request).await {
        Ok(outcome) => {
            println!(
                "{file}: {} new, {} replaced, {skipped} item(s) heir cannot match skipped; matched \
                 from now on and hunted for in the stored events",
                outcome.added, outcome.replaced
            );
            if args.share {
                println!("shared {} over the mesh", outcome.shared);
                for why in &outcome.not_shared {
                    println!("not shared: {why}");
                }
            }
            Ok(())
        }
        Err(e) if e.is_connect() => {
            if args.share {
                bail!(
                    "--share needs the running agent (no API at {})",
                    config.api_socket().display()
                );
            }
            let store = open_store(&config)?;
            let (added, replaced) = import::store(&store, &request.indicators, true)?;
            println!(
                "{file}: {added} new, {replaced} replaced, {skipped} item(s) heir cannot match \
                 skipped; the agent matches them and hunts for them when it starts"
            );
            Ok(())
        }
        Err(e) => Err(e).with_context(|| format!("importing {file}")),
    }
}

/// The store of a stopped agent, created (private) if the agent never ran.
fn open_store(config: &heir_agent::Config) -> Result<heir_store::Store> {
    heir_agent::files::secure_dir(&config.data_dir)
        .with_context(|| format!("data directory {}", config.data_dir.display()))?;
    open_stopped(config, true)
}

/// The mesh's knowledge base (one JSON line per entry, with `"origin":"mesh"`), then the
/// imports (the API's indicator shape, `"origin":"import"`).
pub async fn indicators(state: StateArgs, json: bool) -> Result<()> {
    let config = state.config()?;
    let kb = super::mesh::member_knowledge(&state)?;
    for e in kb.iter().flat_map(|kb| kb.entries()) {
        if json {
            let mut v = serde_json::to_value(e)?;
            v["origin"] = "mesh".into();
            println!("{v}");
        } else {
            println!(
                "{:<22} {:<8} {:>3.0}%  {} hospital(s)  mesh: {}",
                e.indicator.category,
                e.indicator.severity,
                e.confidence * 100.0,
                e.hospitals(),
                e.indicator.rule
            );
        }
    }
    for i in imported(&config).await? {
        if json {
            println!("{}", serde_json::to_string(&i)?);
        } else {
            println!(
                "{:<22} {:<8} {:>3.0}%  {} {}  {}  import: {}",
                i.category,
                i.kind,
                i.confidence * 100.0,
                i.tlp.as_deref().unwrap_or("-"),
                i.value,
                i.first_seen,
                i.sources.join(", ")
            );
        }
    }
    Ok(())
}

/// Imports, from the running agent or the stopped one's store (none if it never ran).
async fn imported(config: &heir_agent::Config) -> Result<Vec<heir_api::Indicator>> {
    let client = heir_api::Client::new(config.api_socket());
    match client.indicators().await {
        Ok(heir_api::Availability::Available(list)) => Ok(list
            .into_iter()
            .filter(|i| i.origin == heir_api::IndicatorOrigin::Import)
            .collect()),
        Ok(_) => Ok(Vec::new()),
        Err(e) if e.is_connect() => {
            if !config.data_dir.join("heir.redb").exists() {
                return Ok(Vec::new());
            }
            let store = open_stopped(config, false)?;
            Ok(import::stored(&store)?.iter().map(import::listed).collect())
        }
        Err(e) => Err(e.into()),
    }
}
