//! The `heir` command line: one module per command family, each with its arguments and what
//! it runs. The work itself lives in the library; these modules parse, call and print.

mod agent;
mod alerts;
mod audit;
mod bench;
mod intel;
mod mesh;
mod monitor;
mod rama;
mod report;
mod respond;
mod rules;

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::{Parser, Subcommand};
use heir_agent::Config;
use heir_agent::rama_state::RamaState;

#[derive(Parser)]
#[command(
    name = "heir",
    version,
    about = "Protects hospitals' medical devices: kernel sensors, threat hunting, risk scores."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the agent: kernel sensors, detectors and outputs, until interrupted.
    Agent(agent::Args),
    /// Run the agent and the terminal UI in one process (the quickest way to see heir work).
    Up(agent::Args),
    /// Attach the terminal UI to a running agent.
    Tui {
        #[command(flatten)]
        state: StateArgs,
        /// The agent's API socket (default: api.sock in the data directory).
        #[arg(long)]
        socket: Option<PathBuf>,
    },
    /// Stream the raw decoded kernel events, with a periodic summary on stderr.
    Monitor(monitor::Args),
    /// Feed recorded events (JSON lines) through the same pipeline; alerts go to stdout.
    Replay { file: PathBuf },
    /// The hospitals' threat-sharing mesh: membership and status.
    #[command(subcommand)]
    Mesh(mesh::Cmd),
    /// Indicators this node matches traffic against: the mesh's knowledge base, then the
    /// operator's imports with their source.
    Indicators {
        #[command(flatten)]
        state: StateArgs,
        #[arg(long)]
        json: bool,
    },
    /// Export the knowledge base as a STIX 2.1 bundle or a MISP event (JSON on stdout).
    Export {
        #[arg(value_enum)]
        format: mesh::ExportFormat,
        #[command(flatten)]
        state: StateArgs,
    },
    /// Import indicators (STIX 2.1, MISP event or feed, plain list) to be matched and hunted
    /// for: through the running agent, or into a stopped one's store. All or nothing.
    Import(intel::ImportArgs),
    /// The responder's audit log: every block, proposal, approval, denial and refusal (the
    /// agent must be stopped).
    Audit {
        #[command(flatten)]
        state: StateArgs,
        #[arg(long)]
        json: bool,
    },
    /// Detection rules: validate them, or run every rule's own test cases.
    #[command(subcommand)]
    Rules(rules::Cmd),
    /// Alerts, oldest first: from the running agent, or from the store of a stopped one.
    Alerts(alerts::Args),
    /// The device inventory: registry devices and what the sensors discovered.
    Devices {
        #[command(flatten)]
        state: StateArgs,
        #[arg(long)]
        json: bool,
    },
    /// RAMA risk scores, per device and for the hospital, explained factor by factor.
    Rama(rama::Args),
    /// The observatory's report for one reader (hospital, manufacturer, regulator, public)
    /// as one self-contained HTML file (the agent must be stopped).
    Report(report::Args),
    /// Vulnerability and device knowledge, imported offline.
    #[command(subcommand)]
    Vuln(rama::Vuln),
    /// Measure the sensor on this machine (needs root).
    #[command(subcommand)]
    Bench(bench::Cmd),
    /// Drop traffic from and to an address (IPv4/IPv6, optionally /prefix, or MAC) in the kernel.
    Block(respond::BlockArgs),
    /// Remove a block.
    Unblock(respond::AddrArgs),
    /// List blocks and protected devices.
    Blocks {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        pins: PinArgs,
    },
    /// Protect a device: no block will ever drop its traffic.
    Protect(respond::AddrArgs),
    /// Remove a device from the protected list.
    Unprotect(respond::AddrArgs),
}

impl Command {
    /// Commands that run until stopped, and keep serving clients that hang up on them.
    pub fn long_running(&self) -> bool {
        matches!(
            self,
            Command::Agent(_) | Command::Up(_) | Command::Tui { .. }
        )
    }

    /// The data directory of `heir up`, whose agent logs to a file there while the terminal
    /// UI owns the screen.
    pub fn ui_data_dir(&self) -> Option<PathBuf> {
        match self {
            Command::Up(a) => Some(
                a.data_dir
                    .clone()
                    .unwrap_or_else(|| Config::default().data_dir),
            ),
            _ => None,
        }
    }

    pub async fn run(self) -> Result<()> {
        match self {
            Command::Agent(a) => agent::run(a, false).await,
            Command::Up(a) => agent::run(a, true).await,
            Command::Tui { state, socket } => {
                let config = state.config()?;
                let path = socket.unwrap_or_else(|| config.api_socket());
                heir_tui::run(heir_api::Client::new(path)).await?;
                Ok(())
            }
            Command::Monitor(m) => monitor::monitor(m).await,
            Command::Replay { file } => monitor::replay(file).await,
            Command::Bench(b) => bench::run(b),
            Command::Devices { state, json } => rama::devices(state, json),
            Command::Rama(r) => rama::rama(r),
            Command::Vuln(v) => rama::vuln(v),
            Command::Report(r) => report::run(r).await,
            Command::Rules(r) => rules::run(r),
            Command::Audit { state, json } => audit::run(state, json).await,
            Command::Mesh(m) => mesh::run(m).await,
            Command::Indicators { state, json } => intel::indicators(state, json).await,
            Command::Export { format, state } => mesh::export(format, state),
            Command::Import(i) => intel::import(i).await,
            Command::Alerts(a) => alerts::run(a).await,
            Command::Block(b) => b.run(),
            Command::Unblock(a) => a.unblock(),
            Command::Blocks { json, pins } => respond::blocks(&pins.pin_dir, json),
            Command::Protect(a) => a.protect(),
            Command::Unprotect(a) => a.unprotect(),
        }
    }
}

#[derive(clap::Args)]
pub struct PinArgs {
    /// bpffs directory of the pinned block tables.
    #[arg(long, default_value = heir_agent::sensor::xdp::DEFAULT_PIN_DIR)]
    pub pin_dir: PathBuf,
}

#[derive(clap::Args)]
pub struct StateArgs {
    #[arg(long)]
    config: Option<PathBuf>,
    /// Where the agent keeps its state (default /var/lib/heir).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Device registry (default: devices.toml in the data directory).
    #[arg(long)]
    registry: Option<PathBuf>,
}

impl StateArgs {
    /// The configuration, with `--data-dir` applied.
    pub fn config(&self) -> Result<Config> {
        let mut config = load_config(self.config.as_ref())?;
        if let Some(d) = &self.data_dir {
            config.data_dir = d.clone();
        }
        Ok(config)
    }

    /// The configuration and the RAMA state it points at.
    pub fn open(&self) -> Result<(Config, RamaState)> {
        let config = self.config()?;
        let given = self.registry.as_deref().or(config.registry.as_deref());
        let registry = heir_agent::rama_state::registry_path(&config.data_dir, given);
        let rama = RamaState::open(&config.data_dir, registry.as_deref())?;
        Ok((config, rama))
    }
}

pub fn load_config(path: Option<&PathBuf>) -> Result<Config> {
    Ok(match path {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    })
}

/// The first Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("signal handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// The store of an agent that is not running (a running one holds it, and answers through
/// its API instead).
pub fn stopped_store(config: &Config) -> Result<heir_store::Store> {
    open_stopped(config, false)
}

/// [`stopped_store`], created first when `create` and the agent never ran.
pub fn open_stopped(config: &Config, create: bool) -> Result<heir_store::Store> {
    let path = config.data_dir.join("heir.redb");
    if !create && !path.exists() {
        bail!(
            "no store at {}: the agent has not run with this data directory",
            path.display()
        );
    }
    heir_store::Store::open(&path, config.retention).map_err(|e| match e {
        heir_store::Error::Open { ref source, .. }
            if matches!(**source, redb::DatabaseError::DatabaseAlreadyOpen) =>
        {
            anyhow::anyhow!(
                "the agent is running and holds the store {}; stop it, or use the agent's local API",
                path.display()
            )
        }
        other => other.into(),
    })
}
