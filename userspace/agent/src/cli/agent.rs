//! `heir agent` and `heir up`: build the agent, say it is ready, run it until a signal (or,
//! for `up`, until the terminal UI quits).

use std::path::PathBuf;

use anyhow::Result;
use tokio_util::sync::CancellationToken;

use super::{PinArgs, load_config, shutdown_signal};

#[derive(clap::Args)]
pub struct Args {
    /// Configuration file (TOML); every key has a default.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Where the agent keeps its state (default /var/lib/heir).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Attach the packet sensor to this interface (repeatable).
    #[arg(long)]
    iface: Vec<String>,
    #[command(flatten)]
    pins: PinArgs,
    /// Append the packet sensor's flow and protocol events (JSON lines) to this file.
    #[arg(long)]
    packet_events: Option<PathBuf>,
    /// Append alert JSON lines to this file.
    #[arg(long)]
    alerts: Option<PathBuf>,
}

pub async fn run(args: Args, ui: bool) -> Result<()> {
    let mut config = load_config(args.config.as_ref())?;
    if let Some(d) = args.data_dir {
        config.data_dir = d;
    }
    let options = heir_agent::Options {
        ifaces: args.iface,
        pin_dir: args.pins.pin_dir,
        packet_events: args.packet_events,
        alerts: args.alerts,
        notify: heir_agent::Notify::new(|notice| eprintln!("heir: {notice}")),
    };
    let agent = heir_agent::Agent::build(config, options).await?;
    for (program, reason) in agent.failed_probes() {
        eprintln!("heir: probe {program} not attached ({reason}); the others run on");
    }
    if let Some(peer) = agent.mesh_peer() {
        eprintln!("heir: mesh node {peer} started");
    }
    if let Some(addr) = agent.metrics_addr() {
        eprintln!("heir: metrics on http://{addr}/metrics");
    }
    println!("ready");

    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    let socket = agent.api_socket();
    tokio::spawn(async move {
        if ui {
            tokio::select! {
                _ = shutdown_signal() => {}
                done = heir_tui::run(heir_api::Client::new(&socket)) => {
                    if let Err(e) = done {
                        eprintln!("heir: terminal UI: {:#}", anyhow::Error::from(e));
                    }
                }
            }
        } else {
            shutdown_signal().await;
        }
        stop.cancel();
    });
    agent.run(shutdown).await?;
    Ok(())
}
