//! `heir rules check|test|list`: rules are data, checked and tested like code.

use std::path::PathBuf;

use anyhow::{Result, bail};
use heir_detect::rules::{Origin, Rule, RuleSet, Sources};

use super::load_config;

#[derive(clap::Subcommand)]
pub enum Cmd {
    /// Parse and type-check every rule file; errors as file:line:column.
    Check(Which),
    /// Run every rule's inline cases (events that must fire, events that must not).
    Test(Which),
    /// Every rule the agent would run, with where it comes from: built in, or a local file
    /// (and the built-in rule it replaces).
    List {
        #[command(flatten)]
        which: Which,
        #[arg(long)]
        json: bool,
    },
}

/// Which rules: one directory alone, or (by default) what the agent runs: the built-in rules,
/// then the host's own (`[detect] rules_dir`, else `/etc/heir/rules` and `rules/` in the
/// data directory), which add rules or replace built-in ones by id.
#[derive(clap::Args)]
pub struct Which {
    /// A rules directory to read alone, without the built-in rules.
    dir: Option<PathBuf>,
    /// The agent's configuration, for its `[detect] rules_dir` and data directory.
    #[arg(long, conflicts_with = "dir")]
    config: Option<PathBuf>,
}

impl Which {
    fn sources(&self) -> Result<Sources> {
        Ok(match &self.dir {
            Some(d) => Sources::dir(d),
            None => load_config(self.config.as_ref())?.rules_sources(),
        })
    }
}

fn describe(s: &Sources) -> String {
    let mut parts: Vec<String> = Vec::new();
    if s.built_in {
        parts.push("built-in rules".into());
    }
    parts.extend(s.dirs.iter().map(|d| d.display().to_string()));
    parts.join(" + ")
}

pub fn run(cmd: Cmd) -> Result<()> {
    match cmd {
        Cmd::Check(which) => {
            let sources = which.sources()?;
            let set = heir_detect::rules::check(&sources)?;
            println!("{}: {} rules, all valid", describe(&sources), set.len());
        }
        Cmd::Test(which) => {
            let results = heir_detect::rules::test(&which.sources()?)?;
            let failed = results.iter().filter(|r| !r.passed()).count();
            for r in &results {
                println!("{r}");
            }
            println!("{} passed, {failed} failed", results.len() - failed);
            if failed > 0 {
                bail!("{failed} rule case(s) failed");
            }
        }
        Cmd::List { which, json } => {
            let set = heir_detect::rules::load(&which.sources()?)?;
            if json {
                for r in &set.rules {
                    println!("{}", listing_json(r, &set));
                }
            } else {
                print!("{}", listing(&set));
            }
        }
    }
    Ok(())
}

fn origin(o: Origin) -> &'static str {
    match o {
        Origin::BuiltIn => "built-in",
        Origin::Local => "local",
    }
}

fn replaced<'a>(r: &Rule, set: &'a RuleSet) -> Option<&'a Rule> {
    set.overridden
        .iter()
        .rev()
        .find(|o| o.id == r.id)
        .map(|o| &**o)
}

fn listing(set: &RuleSet) -> String {
    let mut out = format!(
        "{:<36} {:<8} {:<22} {:<10} {:<8} FROM\n",
        "RULE", "SEVERITY", "CATEGORY", "ATT&CK", "ORIGIN"
    );
    for r in &set.rules {
        let mut from = format!("{}:{}", r.file.display(), r.line);
        if let Some(o) = replaced(r, set) {
            from.push_str(&format!(" (replaces {}:{})", o.file.display(), o.line));
        }
        out.push_str(&format!(
            "{:<36} {:<8} {:<22} {:<10} {:<8} {from}\n",
            r.id,
            r.severity.as_str(),
            r.category.slug(),
            r.attack,
            origin(r.origin),
        ));
    }
    let local = set
        .rules
        .iter()
        .filter(|r| r.origin == Origin::Local)
        .count();
    out.push_str(&format!(
        "{} rules: {} built in, {local} local ({} replacing built-in rules)\n",
        set.len(),
        set.len() - local,
        set.overridden.len()
    ));
    out
}

fn listing_json(r: &Rule, set: &RuleSet) -> serde_json::Value {
    serde_json::json!({
        "id": r.id,
        "title": r.title,
        "severity": r.severity.as_str(),
        "category": r.category.slug(),
        "attack": r.attack,
        "origin": origin(r.origin),
        "file": r.file.display().to_string(),
        "line": r.line,
        "replaces": replaced(r, set).map(|o| format!("{}:{}", o.file.display(), o.line)),
    })
}
