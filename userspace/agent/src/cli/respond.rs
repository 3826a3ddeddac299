//! `heir block`, `heir unblock`, `heir blocks`, `heir protect`, `heir unprotect`: the
//! operator's hands on the pinned tables, with or without a running agent.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use heir_agent::respond::blocklist::{Origin, SystemClock, Tables, Target, parse_ttl};

use super::PinArgs;

#[derive(clap::Args)]
pub struct BlockArgs {
    addr: String,
    /// Time to live (90s, 15m, 2h, 7d); without it the block lasts until `heir unblock`.
    #[arg(long)]
    ttl: Option<String>,
    #[arg(long)]
    reason: Option<String>,
    #[command(flatten)]
    pins: PinArgs,
}

#[derive(clap::Args)]
pub struct AddrArgs {
    addr: String,
    #[command(flatten)]
    pins: PinArgs,
}

impl BlockArgs {
    pub fn run(self) -> Result<()> {
        block(
            &self.pins.pin_dir,
            &self.addr,
            self.ttl.as_deref(),
            self.reason.as_deref(),
        )
    }
}

impl AddrArgs {
    pub fn unblock(self) -> Result<()> {
        unblock(&self.pins.pin_dir, &self.addr)
    }

    pub fn protect(self) -> Result<()> {
        protect(&self.pins.pin_dir, &self.addr)
    }

    pub fn unprotect(self) -> Result<()> {
        unprotect(&self.pins.pin_dir, &self.addr)
    }
}

fn open(pin_dir: &Path) -> Result<Tables> {
    Tables::open(pin_dir)
        .with_context(|| format!("opening heir's block tables in {}", pin_dir.display()))
}

fn target(addr: &str) -> Result<Target> {
    Ok(addr.parse::<Target>()?)
}

fn block(pin_dir: &Path, addr: &str, ttl: Option<&str>, reason: Option<&str>) -> Result<()> {
    let t = target(addr)?;
    let ttl = ttl.map(parse_ttl).transpose().map_err(anyhow::Error::msg)?;
    let mut tables = open(pin_dir)?;
    let inside: Vec<Target> = tables
        .protected()?
        .into_iter()
        .filter(|p| t.covers(p))
        .collect();
    tables.block(
        t,
        ttl,
        reason.unwrap_or("operator"),
        Origin::Operator,
        &SystemClock,
    )?;
    match ttl {
        Some(d) => println!("blocked {t} for {}", human(d)),
        None => println!("blocked {t} until `heir unblock {t}`"),
    }
    for p in inside {
        println!("  {p} is protected and stays reachable");
    }
    Ok(())
}

fn unblock(pin_dir: &Path, addr: &str) -> Result<()> {
    let t = target(addr)?;
    if open(pin_dir)?.unblock(&t)? {
        println!("unblocked {t}");
        Ok(())
    } else {
        anyhow::bail!("{t} was not blocked (see `heir blocks`)")
    }
}

pub fn blocks(pin_dir: &Path, json: bool) -> Result<()> {
    let tables = open(pin_dir)?;
    let list = tables.blocks(&SystemClock)?;
    let protected = tables.protected()?;
    if json {
        let v = serde_json::json!({
            "blocks": list,
            "protected": protected.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    if list.is_empty() {
        println!("no blocks");
    } else {
        println!("{:<28}{:<10}{:<14}reason", "address", "origin", "expires");
        for b in &list {
            let expires = match (b.expired, b.remaining) {
                (true, _) => "expired".to_string(),
                (false, Some(d)) => format!("in {}", human(d)),
                (false, None) => "never".to_string(),
            };
            let origin = b
                .origin
                .map(|o| o.to_string())
                .unwrap_or_else(|| "?".into());
            println!(
                "{:<28}{:<10}{:<14}{}",
                b.target.to_string(),
                origin,
                expires,
                b.reason
            );
        }
    }
    if !protected.is_empty() {
        println!("\nprotected (never blocked):");
        for p in protected {
            println!("  {p}");
        }
    }
    Ok(())
}

fn protect(pin_dir: &Path, addr: &str) -> Result<()> {
    let t = target(addr)?;
    open(pin_dir)?.protect(t)?;
    println!("protected {t}: no block will drop its traffic");
    Ok(())
}

fn unprotect(pin_dir: &Path, addr: &str) -> Result<()> {
    let t = target(addr)?;
    if open(pin_dir)?.unprotect(&t)? {
        println!("{t} is no longer protected");
        Ok(())
    } else {
        anyhow::bail!("{t} was not protected")
    }
}

fn human(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        s if s >= 86400 => format!("{}d{}h", s / 86400, s % 86400 / 3600),
        s if s >= 3600 => format!("{}h{}m", s / 3600, s % 3600 / 60),
        s if s >= 60 => format!("{}m{}s", s / 60, s % 60),
        s => format!("{s}s"),
    }
}
