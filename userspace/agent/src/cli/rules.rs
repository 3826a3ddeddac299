//! `heir rules check|test`: rules are data, checked and tested like code.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use heir_agent::Config;

#[derive(clap::Subcommand)]
pub enum Cmd {
    /// Parse and type-check every rule file; errors as file:line:column.
    Check { dir: Option<PathBuf> },
    /// Run every rule's inline cases (events that must fire, events that must not).
    Test { dir: Option<PathBuf> },
}

fn dir_or_default(dir: Option<PathBuf>) -> Result<PathBuf> {
    dir.or_else(|| Config::default().rules_dir())
        .context("no rules directory given and none found (see `heir rules --help`)")
}

pub fn run(cmd: Cmd) -> Result<()> {
    match cmd {
        Cmd::Check { dir } => {
            let dir = dir_or_default(dir)?;
            let set = heir_detect::rules::check(&dir)?;
            println!("{}: {} rules, all valid", dir.display(), set.len());
        }
        Cmd::Test { dir } => {
            let dir = dir_or_default(dir)?;
            let results = heir_detect::rules::test(&dir)?;
            let failed = results.iter().filter(|r| !r.passed()).count();
            for r in &results {
                println!("{r}");
            }
            println!("{} passed, {failed} failed", results.len() - failed);
            if failed > 0 {
                bail!("{failed} rule case(s) failed");
            }
        }
    }
    Ok(())
}
