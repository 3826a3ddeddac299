//! `heir`: the command sysadmins and scripts run.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use heir_agent::Config;
use heir_agent::pipeline::{self, JsonLines, Stages, Stats};
use heir_agent::proctable::{Lookup, ProcessTable};
use heir_agent::respond::cli as respond;
use heir_agent::risk::Risk;
use heir_agent::sensor::{Counters, Sensor};
use heir_model::Event;
use heir_store::Read as _;
use tokio::sync::mpsc;

#[derive(Parser)]
#[command(
    name = "heir",
    version,
    about = "Protects hospitals' medical devices: kernel sensors, threat hunting, risk scores."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the agent: kernel sensors, detectors and outputs, until interrupted.
    Agent(AgentArgs),
    /// Run the agent and the terminal UI in one process (the quickest way to see heir work).
    Up(AgentArgs),
    /// Attach the terminal UI to a running agent.
    Tui {
        #[command(flatten)]
        state: StateArgs,
        /// The agent's API socket (default: api.sock in the data directory).
        #[arg(long)]
        socket: Option<PathBuf>,
    },
    /// Stream the raw decoded kernel events, with a periodic summary on stderr.
    Monitor {
        /// One JSON object per line (stable field names) instead of text.
        #[arg(long)]
        json: bool,
        #[arg(long)]
        config: Option<PathBuf>,
        /// Summary interval in seconds.
        #[arg(long, default_value_t = 5)]
        every: u64,
    },
    /// Feed recorded events (JSON lines) through the same pipeline; alerts go to stdout.
    Replay { file: PathBuf },
    /// The hospitals' threat-sharing mesh: membership and status.
    #[command(subcommand)]
    Mesh(MeshCmd),
    /// Indicators in this node's knowledge base (the agent must be stopped).
    Indicators {
        #[command(flatten)]
        state: StateArgs,
        #[arg(long)]
        json: bool,
    },
    /// Export the knowledge base as a STIX 2.1 bundle or a MISP event (JSON on stdout).
    Export {
        #[arg(value_enum)]
        format: ExportFormat,
        #[command(flatten)]
        state: StateArgs,
    },
    /// Read a STIX 2.1 bundle or MISP event and list the indicators it holds.
    Import { file: PathBuf },
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
    Rules(Rules),
    /// Alerts, oldest first: from the running agent, or from the store of a stopped one.
    Alerts {
        #[command(flatten)]
        state: StateArgs,
        /// One JSON object per line, in the alert contract's shape.
        #[arg(long)]
        json: bool,
        /// Only the newest N.
        #[arg(long, default_value_t = 100)]
        last: usize,
        /// Keep printing new alerts as the running agent raises them.
        #[arg(long)]
        follow: bool,
    },
    /// The device inventory: registry devices and what the sensors discovered.
    Devices {
        #[command(flatten)]
        state: StateArgs,
        #[arg(long)]
        json: bool,
    },
    /// RAMA risk scores, per device and for the hospital, explained factor by factor.
    Rama {
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
    },
    /// Vulnerability and device knowledge, imported offline.
    #[command(subcommand)]
    Vuln(Vuln),
    /// Measure the sensor on this machine (needs root).
    #[command(subcommand)]
    Bench(Bench),
    /// Drop traffic from and to an address (IPv4/IPv6, optionally /prefix, or MAC) in the kernel.
    Block {
        addr: String,
        /// Time to live (90s, 15m, 2h, 7d); without it the block lasts until `heir unblock`.
        #[arg(long)]
        ttl: Option<String>,
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        pins: PinArgs,
    },
    /// Remove a block.
    Unblock {
        addr: String,
        #[command(flatten)]
        pins: PinArgs,
    },
    /// List blocks and protected devices.
    Blocks {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        pins: PinArgs,
    },
    /// Protect a device: no block will ever drop its traffic.
    Protect {
        addr: String,
        #[command(flatten)]
        pins: PinArgs,
    },
    /// Remove a device from the protected list.
    Unprotect {
        addr: String,
        #[command(flatten)]
        pins: PinArgs,
    },
}

#[derive(clap::Args)]
struct PinArgs {
    /// bpffs directory of the pinned block tables.
    #[arg(long, default_value = heir_agent::sensor::xdp::DEFAULT_PIN_DIR)]
    pin_dir: PathBuf,
}

#[derive(clap::Args)]
struct StateArgs {
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
    fn config(&self) -> Result<Config> {
        let mut config = load_config(self.config.as_ref())?;
        if let Some(d) = &self.data_dir {
            config.data_dir = d.clone();
        }
        Ok(config)
    }

    fn open(&self) -> Result<(Config, Risk)> {
        let config = self.config()?;
        let given = self.registry.as_deref().or(config.registry.as_deref());
        let registry = heir_agent::risk::registry_path(&config.data_dir, given);
        let risk = Risk::open(&config.data_dir, registry.as_deref())?;
        Ok((config, risk))
    }
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ExportFormat {
    Stix,
    Misp,
}

#[derive(Subcommand)]
enum MeshCmd {
    /// Found a consortium: this node becomes its first member and holds the consortium key.
    Init {
        /// This hospital's opaque label in the consortium (not its name).
        #[arg(long)]
        hospital: String,
        /// Sharing groups this hospital belongs to (for TLP:AMBER).
        #[arg(long = "group")]
        groups: Vec<String>,
        /// Days the membership is valid.
        #[arg(long, default_value_t = 365)]
        days: u64,
        #[command(flatten)]
        state: StateArgs,
    },
    /// Print this node's join request, to hand to a member holding the consortium key.
    JoinRequest {
        #[command(flatten)]
        state: StateArgs,
    },
    /// Admit a node (run where the consortium key is): prints its invitation.
    Invite {
        request: String,
        #[arg(long)]
        hospital: String,
        #[arg(long = "group")]
        groups: Vec<String>,
        #[arg(long, default_value_t = 365)]
        days: u64,
        /// Addresses the new node dials first (this node's, with /p2p/ id).
        #[arg(long)]
        bootstrap: Vec<String>,
        #[command(flatten)]
        state: StateArgs,
    },
    /// Join with an invitation.
    Join {
        invite: String,
        #[command(flatten)]
        state: StateArgs,
    },
    /// The peers the running agent's mesh node is connected to.
    Peers {
        #[command(flatten)]
        state: StateArgs,
        #[arg(long)]
        json: bool,
    },
    /// This node's identity and membership.
    Status {
        #[command(flatten)]
        state: StateArgs,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum Rules {
    /// Parse and type-check every rule file; errors as file:line:column.
    Check { dir: Option<PathBuf> },
    /// Run every rule's inline cases (events that must fire, events that must not).
    Test { dir: Option<PathBuf> },
}

#[derive(Subcommand)]
enum Vuln {
    /// Import an OSV JSON, NVD CVE JSON 2.0, CISA KEV CSV, CycloneDX SBOM or MDS2 CSV file.
    /// All or nothing: a malformed file imports nothing and names the field at fault.
    Import {
        file: PathBuf,
        #[command(flatten)]
        state: StateArgs,
    },
}

#[derive(Subcommand)]
enum Bench {
    /// Syscall cost with and without the sensor, interleaved, as ratios.
    Overhead {
        #[arg(long, default_value_t = 5)]
        rounds: usize,
    },
    /// Sustained kernel→userspace event rate and losses.
    Throughput {
        #[arg(long, default_value_t = 3)]
        seconds: u64,
    },
    /// The packet sensor's cost per packet on each path (BPF_PROG_TEST_RUN).
    Xdp {
        /// Runs per repeated path.
        #[arg(long, default_value_t = 1_000_000)]
        repeat: u32,
        /// Also fill a flow table of this many flows (e.g. 1000000) and report its kernel
        /// memory and the CPU time of a full read by userspace.
        #[arg(long, default_value_t = 0)]
        flows: u32,
    },
    /// One timed syscall loop (run by the two above in child processes).
    #[command(hide = true)]
    Loop {
        workload: String,
        path: PathBuf,
        #[arg(long)]
        until_ms: Option<u64>,
        #[arg(long)]
        count: Option<u64>,
    },
}

#[derive(clap::Args)]
struct AgentArgs {
    /// Configuration file (TOML); every key has a default.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Where the agent keeps its state (default /var/lib/heir).
    #[arg(long)]
    data_dir: Option<PathBuf>,
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

fn load_config(path: Option<&PathBuf>) -> Result<Config> {
    Ok(match path {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    })
}

fn main() {
    let cli = Cli::parse();
    // A listing piped into `head` ends quietly, as Unix tools do, instead of panicking on a
    // closed stdout. The long-running commands keep ignoring SIGPIPE: a client that hangs up
    // on the agent's sockets must never kill it.
    if !matches!(
        cli.command,
        Command::Agent(_) | Command::Up(_) | Command::Tui { .. }
    ) {
        // SAFETY: restoring the default disposition before any thread exists.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    let filter = || {
        tracing_subscriber::EnvFilter::try_from_env("HEIR_LOG").unwrap_or_else(|_| "warn".into())
    };
    // The terminal UI owns the screen: its agent logs to a file in the data directory.
    let log_file = match &cli.command {
        Command::Up(a) => {
            let dir = a
                .data_dir
                .clone()
                .unwrap_or_else(|| Config::default().data_dir);
            let _ = std::fs::create_dir_all(&dir);
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join("heir.log"))
                .ok()
        }
        _ => None,
    };
    match log_file {
        Some(f) => tracing_subscriber::fmt()
            .with_env_filter(filter())
            .with_ansi(false)
            .with_writer(std::sync::Mutex::new(f))
            .init(),
        None => tracing_subscriber::fmt()
            .with_env_filter(filter())
            .with_writer(std::io::stderr)
            .init(),
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = rt.block_on(async move {
        match cli.command {
            Command::Agent(a) => agent(a, false).await,
            Command::Up(a) => agent(a, true).await,
            Command::Tui { state, socket } => {
                let config = state.config()?;
                let path = socket.unwrap_or_else(|| config.api_socket());
                heir_tui::run(heir_api::Client::new(path)).await?;
                Ok(())
            }
            Command::Monitor {
                json,
                config,
                every,
            } => monitor(json, config, every).await,
            Command::Replay { file } => replay(file).await,
            Command::Bench(b) => bench(b),
            Command::Devices { state, json } => devices(state, json),
            Command::Rama {
                state,
                json,
                device,
                explain,
            } => rama(state, json, device, explain),
            Command::Vuln(Vuln::Import { file, state }) => vuln_import(file, state),
            Command::Rules(r) => rules(r),
            Command::Audit { state, json } => audit(state, json).await,
            Command::Mesh(MeshCmd::Peers { state, json }) => mesh_peers(state, json).await,
            Command::Mesh(m) => mesh(m),
            Command::Indicators { state, json } => indicators(state, json),
            Command::Export { format, state } => export(format, state),
            Command::Import { file } => import(file),
            Command::Alerts {
                state,
                json,
                last,
                follow,
            } => alerts(state, json, last, follow).await,
            Command::Block {
                addr,
                ttl,
                reason,
                pins,
            } => respond::block(&pins.pin_dir, &addr, ttl.as_deref(), reason.as_deref()),
            Command::Unblock { addr, pins } => respond::unblock(&pins.pin_dir, &addr),
            Command::Blocks { json, pins } => respond::blocks(&pins.pin_dir, json),
            Command::Protect { addr, pins } => respond::protect(&pins.pin_dir, &addr),
            Command::Unprotect { addr, pins } => respond::unprotect(&pins.pin_dir, &addr),
        }
    });
    if let Err(e) = result {
        eprintln!("heir: {e:#}");
        std::process::exit(1);
    }
}

fn start_sensor(config: &Config) -> Result<Sensor> {
    let sensor = Sensor::start(&config.sensor, std::process::id())?;
    for f in &sensor.failed {
        eprintln!(
            "heir: probe {} not attached ({}); the others run on",
            f.program, f.reason
        );
    }
    Ok(sensor)
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("signal handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

async fn agent(args: AgentArgs, ui: bool) -> Result<()> {
    let mut config = load_config(args.config.as_ref())?;
    if let Some(d) = args.data_dir {
        config.data_dir = d;
    }
    let mut packets = heir_agent::packets::start(&args.iface, &args.pins.pin_dir, &config.sensor)?;
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data dir {}", config.data_dir.display()))?;
    let mut alerts_out = match &args.alerts {
        Some(p) => Some(JsonLines::append(p).with_context(|| format!("opening {}", p.display()))?),
        None => None,
    };
    let store_path = config.data_dir.join("heir.redb");
    let store = Arc::new(heir_store::Store::open(&store_path, config.retention)?);
    let registry = heir_agent::risk::registry_path(&config.data_dir, config.registry.as_deref());
    let risk = Arc::new(std::sync::Mutex::new(Risk::open(
        &config.data_dir,
        registry.as_deref(),
    )?));
    let engine = build_engine(&config, store.blob(DETECT_STATE)?.as_deref());
    if !config.sensor.syscalls && packets.is_none() {
        bail!("nothing to watch: `[sensor] syscalls = false` and no `--iface` given");
    }
    let mut sensor = if config.sensor.syscalls {
        Some(start_sensor(&config)?)
    } else {
        None
    };
    let reader = sensor.as_mut().map(Sensor::reader).transpose()?;
    let socket_path = config.api_socket();
    let socket = heir_api::Socket::bind(&socket_path)?;
    let stats = Arc::new(Stats::default());
    let (tx, rx) = mpsc::channel(pipeline::QUEUE_BATCHES);
    let packet_source = match packets.as_mut() {
        Some(p) => Some(tokio::spawn(heir_agent::packets::feed(
            p.reader()?,
            risk.clone(),
            args.packet_events.as_deref(),
            stats.clone(),
            tx.clone(),
        )?)),
        None => None,
    };
    let flow_tx = packets.is_some().then(|| tx.clone());
    // The pipeline ends when every source has dropped its sender.
    let source = match reader {
        Some(r) => Some(tokio::spawn(pipeline::kernel_source(r, tx, stats.clone()))),
        None => {
            drop(tx);
            None
        }
    };
    let stages = Stages {
        table: ProcessTable::from_proc(),
        engine: Some(engine),
        ticks: pipeline::Ticks::Wall,
        stats: stats.clone(),
    };
    let (mesh, mut corroborated) =
        match heir_agent::mesh::Mesh::start(&config.mesh, &config.data_dir)? {
            Some((m, rx)) => {
                eprintln!("heir: mesh node {} started", m.client.peer_id());
                (Some(Arc::new(m)), Some(rx))
            }
            None => (None, None),
        };
    let (live, _) = tokio::sync::broadcast::channel::<heir_api::Live>(4096);
    let responder = Arc::new(heir_agent::respond::policy::Responder::new(
        config.respond.clone(),
        &args.pins.pin_dir,
        store.clone(),
    ));
    // Devices the registry marks protected can never be blocked, whoever asks.
    let protected: Vec<std::net::IpAddr> = risk
        .lock()
        .expect("risk lock")
        .rama
        .listing()
        .devices
        .iter()
        .filter(|d| d.registered.as_ref().is_some_and(|r| r.protected))
        .filter_map(|d| d.ip)
        .collect();
    if !protected.is_empty() {
        responder.protect(protected)?;
    }
    if let Some(mut rx) = corroborated.take() {
        let responder = responder.clone();
        tokio::spawn(async move {
            while let Some(a) = rx.recv().await {
                match responder.consider_indicator(a.addr, a.category, &a.reason()) {
                    heir_agent::respond::policy::Decision::Refused(why) => {
                        tracing::warn!("responder did not block {} from the mesh: {why}", a.addr);
                    }
                    heir_agent::respond::policy::Decision::Blocked(addr) => {
                        tracing::info!("responder blocked {addr} ({})", a.reason());
                    }
                    _ => {}
                }
            }
        });
    }
    let responding = responder.clone();
    let (sharing, share_policy) = (mesh.clone(), config.mesh.clone());
    let scoring = risk.clone();
    // Scores an alert changed reach rama.json within a second, so `heir rama` and `heir
    // devices` on the same host see what the agent sees.
    let risk_dirty = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let rescored = risk_dirty.clone();
    let alert_counts = Arc::new(heir_agent::metrics::AlertCounts::default());
    let counting = alert_counts.clone();
    let syslog = match config.syslog {
        Some(addr) => Some(
            heir_agent::syslog::Syslog::connect(addr)
                .with_context(|| format!("syslog target {addr}"))?,
        ),
        None => None,
    };
    let (sink, writer) = heir_agent::persist::spawn(store.clone(), live.clone());
    let (event_sink, alert_sink) = (sink.clone(), sink.clone());
    let dropped = sink.dropped_events.clone();
    drop(sink);
    let events_live = live.clone();
    let mut batch = Vec::with_capacity(pipeline::BATCH);
    let pipeline = tokio::spawn(stages.run(
        rx,
        move |e| {
            if events_live.receiver_count() > 0 {
                let _ = events_live.send(heir_api::Live::Event(e.clone()));
            }
            batch.push(e.clone());
            if batch.len() == pipeline::BATCH {
                event_sink.events(std::mem::take(&mut batch));
            }
        },
        move |a| {
            if let Some(out) = alerts_out.as_mut()
                && let Err(e) = out.write(a)
            {
                tracing::error!("writing alert: {e}");
            }
            alert_sink.alert(a.clone());
            counting.count(a.category);
            if let Some(s) = &syslog
                && let Err(e) = s.send(a)
            {
                tracing::warn!("syslog: {e}");
            }
            scoring.lock().expect("risk lock").rama.alert(a);
            rescored.store(true, std::sync::atomic::Ordering::Relaxed);
            match responding.consider(a) {
                heir_agent::respond::policy::Decision::Refused(why) => {
                    tracing::warn!("responder did not block: {why}");
                }
                heir_agent::respond::policy::Decision::Blocked(addr) => {
                    tracing::info!("responder blocked {addr} ({})", a.rule);
                }
                _ => {}
            }
            if let Some(m) = &sharing
                && share_policy.shares(a)
            {
                m.offer(a);
            }
        },
    ));

    let status = Arc::new(std::sync::Mutex::new(status_of(
        sensor.as_ref(),
        &Counters::default(),
        0.0,
        &stats,
        0,
    )));
    let backend = Arc::new(heir_agent::api::Agent {
        store: store.clone(),
        risk: risk.clone(),
        status: status.clone(),
        live,
        mesh: mesh.clone(),
        responder: responder.clone(),
        started: Instant::now(),
    });
    let mesh_peers = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let traffic = Arc::new(heir_agent::traffic::Snapshot::default());
    let (stop_metrics, metrics_stopped) = tokio::sync::oneshot::channel::<()>();
    let metrics = match config.metrics_listen {
        Some(addr) => {
            let sources = Arc::new(heir_agent::metrics::Sources {
                status: status.clone(),
                risk: risk.clone(),
                alerts: alert_counts.clone(),
                mesh_peers: mesh_peers.clone(),
                traffic: traffic.clone(),
            });
            let (bound, task) = heir_agent::metrics::serve(addr, sources, async move {
                let _ = metrics_stopped.await;
            })
            .await
            .with_context(|| format!("metrics on {addr}"))?;
            eprintln!("heir: metrics on http://{bound}/metrics");
            Some(task)
        }
        None => None,
    };
    let (stop_api, api_stopped) = tokio::sync::oneshot::channel::<()>();
    let api = tokio::spawn(socket.serve(backend, async move {
        let _ = api_stopped.await;
    }));
    println!("ready");

    let mut tui = ui.then(|| tokio::spawn(heir_tui::run(heir_api::Client::new(&socket_path))));
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut save = tokio::time::interval(Duration::from_secs(60));
    let mut last = (Counters::default(), Instant::now());
    let mut relink = tokio::time::interval(Duration::from_secs(2));
    let mut sweep = tokio::time::interval(
        packets
            .as_ref()
            .map_or(Duration::from_secs(3600), |p| p.sweep_every()),
    );
    let mut reread = tokio::time::interval(heir_agent::traffic::INTERVAL);
    loop {
        tokio::select! {
            _ = shutdown_signal() => break,
            _ = relink.tick(), if packets.is_some() => {
                packets.as_mut().expect("checked").tick();
            }
            _ = sweep.tick(), if packets.is_some() => {
                match packets.as_mut().expect("checked").sweep() {
                    // Into the detectors beside the other packet events; never waiting on them.
                    Ok(flows) if !flows.is_empty() => {
                        let n = flows.len() as u64;
                        if flow_tx.as_ref().is_some_and(|t| t.try_send(flows).is_err()) {
                            stats.dropped.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!("reading the flow table: {e}"),
                }
            }
            _ = reread.tick(), if packets.is_some() => {
                if let Err(e) = traffic.refresh(&packets.as_ref().expect("checked").sensor) {
                    tracing::warn!("reading per-device traffic: {e}");
                }
            }
            done = async { tui.as_mut().expect("guarded").await }, if tui.is_some() => {
                if let Ok(Err(e)) = done {
                    eprintln!("heir: terminal UI: {e}");
                }
                break;
            }
            _ = save.tick() => {
                let mut r = risk.lock().expect("risk lock");
                r.rama.tick();
                if let Err(e) = r.save() {
                    tracing::error!("{e}");
                }
            }
            _ = tick.tick() => {
                let c = match &sensor {
                    Some(s) => s.counters()?,
                    None => Counters::default(),
                };
                let (before, at) = &last;
                let dt = at.elapsed().as_secs_f64().max(0.001);
                let rate = c.total().emitted.saturating_sub(before.total().emitted) as f64 / dt;
                let dropped = dropped.load(std::sync::atomic::Ordering::Relaxed);
                *status.lock().expect("status lock") = status_of(sensor.as_ref(), &c, rate, &stats, dropped);
                last = (c, Instant::now());
                if risk_dirty.swap(false, std::sync::atomic::Ordering::Relaxed)
                    && let Err(e) = risk.lock().expect("risk lock").save()
                {
                    tracing::error!("{e}");
                }
                if let Some(m) = &mesh
                    && let Ok(peers) = m.client.peers().await
                {
                    mesh_peers.store(peers.len() as u64, std::sync::atomic::Ordering::Relaxed);
                }
            }
        }
    }
    let _ = stop_api.send(());
    let _ = api.await;
    let _ = stop_metrics.send(());
    if let Some(task) = metrics {
        let _ = task.await;
    }
    // Stopping the source closes the pipeline's queue; the pipeline drains it and returns,
    // dropping its sinks, so the writer flushes what it holds and ends.
    if let Some(s) = source {
        s.abort();
    }
    drop(flow_tx);
    if let Some(p) = packet_source {
        p.abort();
    }
    let stages = pipeline.await?;
    tokio::task::spawn_blocking(move || writer.join())
        .await?
        .map_err(|_| anyhow::anyhow!("the store writer panicked"))?;
    if let Some(engine) = &stages.engine {
        store.put_blob(DETECT_STATE, &engine.save_state())?;
    }
    risk.lock().expect("risk lock").save()?;
    Ok(())
}

fn status_of(
    sensor: Option<&Sensor>,
    c: &Counters,
    rate: f64,
    stats: &Stats,
    dropped: u64,
) -> heir_api::Status {
    heir_api::Status {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        uptime_secs: 0,
        probes: heir_api::Probes {
            attached: sensor.map(|s| s.attached.clone()).unwrap_or_default(),
            failed: sensor
                .iter()
                .flat_map(|s| &s.failed)
                .map(|f| heir_api::Probe {
                    program: f.program.clone(),
                    reason: f.reason.clone(),
                })
                .collect(),
        },
        sensors: c
            .by_kind
            .iter()
            .map(|(k, n)| heir_api::SensorCounts {
                kind: k.name().to_owned(),
                emitted: n.emitted,
                lost: n.lost,
                filtered: n.filtered,
            })
            .collect(),
        events_per_sec: rate,
        pipeline: heir_api::Pipeline {
            records: Stats::get(&stats.records),
            events: Stats::get(&stats.events),
            decode_errors: Stats::get(&stats.decode_errors),
            dropped: dropped + Stats::get(&stats.dropped),
            alerts: Stats::get(&stats.alerts),
        },
    }
}

async fn monitor(json: bool, config: Option<PathBuf>, every: u64) -> Result<()> {
    let config = load_config(config.as_ref())?;
    let mut sensor = start_sensor(&config)?;
    let reader = sensor.reader()?;
    let stats = Arc::new(Stats::default());
    let (tx, rx) = mpsc::channel(pipeline::QUEUE_BATCHES);
    let source = tokio::spawn(pipeline::kernel_source(reader, tx, stats.clone()));
    let stages = Stages {
        table: ProcessTable::from_proc(),
        engine: None,
        ticks: pipeline::Ticks::Wall,
        stats: stats.clone(),
    };
    let mut out = JsonLines::stdout();
    let pipeline = tokio::spawn(stages.run(
        rx,
        move |e| {
            let r = if json { out.write(e) } else { print_text(e) };
            if r.is_err() {
                // stdout closed (e.g. piped into head): stop quietly.
                std::process::exit(0);
            }
        },
        |_| {},
    ));
    eprintln!(
        "heir monitor: {} probes attached{}",
        sensor.attached.len(),
        if sensor.failed.is_empty() {
            String::new()
        } else {
            format!(", {} failed", sensor.failed.len())
        }
    );
    let mut tick = tokio::time::interval(Duration::from_secs(every.max(1)));
    tick.tick().await;
    let mut last = (sensor.counters()?, Instant::now());
    loop {
        tokio::select! {
            _ = shutdown_signal() => break,
            _ = tick.tick() => {
                let c = sensor.counters()?;
                eprintln!("{}", summary(&c, &last.0, last.1.elapsed(), &stats));
                last = (c, Instant::now());
            }
        }
    }
    source.abort();
    pipeline.abort();
    eprintln!(
        "{}",
        summary(
            &sensor.counters()?,
            &Counters::default(),
            Duration::ZERO,
            &stats
        )
    );
    Ok(())
}

fn summary(now: &Counters, before: &Counters, dt: Duration, stats: &Stats) -> String {
    let secs = dt.as_secs_f64();
    let mut parts = Vec::new();
    for (k, c) in &now.by_kind {
        let b = before.get(*k);
        let d = c.emitted.saturating_sub(b.emitted);
        if d > 0 || c.lost > 0 {
            if secs > 0.0 {
                parts.push(format!("{} {:.0}/s", k.name(), d as f64 / secs));
            } else {
                parts.push(format!("{} {}", k.name(), c.emitted));
            }
        }
    }
    let t = now.total();
    format!(
        "summary: {} | lost {} | filtered in kernel {} | decode errors {}",
        if parts.is_empty() {
            "no events".into()
        } else {
            parts.join(", ")
        },
        t.lost,
        t.filtered,
        Stats::get(&stats.decode_errors),
    )
}

fn print_text(e: &Event) -> std::io::Result<()> {
    use std::io::Write;
    let json = serde_json::to_value(&e.kind).unwrap_or_default();
    let mut fields = String::new();
    if let Some(obj) = json.as_object() {
        for (k, v) in obj {
            if k != "kind" {
                fields.push_str(&format!(" {k}={v}"));
            }
        }
    }
    let ts = e.ts.to_rfc3339();
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{} {:<12} pid={} ppid={} uid={} comm={}{}",
        ts.get(11..23).unwrap_or(&ts),
        e.kind.name(),
        e.process.pid,
        e.process.ppid,
        e.process.uid,
        e.process.comm,
        fields
    )
}

/// Where the detectors' learned state (baselines, anomaly models) is kept in the store.
const DETECT_STATE: &str = "detect";

/// The detection engine from the configuration, with the rules directory loaded and watched
/// and, when given, the state a previous run saved.
fn build_engine(config: &Config, state: Option<&[u8]>) -> heir_detect::Engine {
    let mut engine = heir_detect::Engine::new(&config.detect, Arc::new(heir_detect::SystemClock));
    if let Ok(host) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        engine.set_local_device(host.trim());
    }
    match config.rules_dir() {
        Some(dir) => {
            if let Err(e) = engine.reload_rules(&dir) {
                eprintln!("heir: rules in {} not loaded: {e}", dir.display());
            }
        }
        None => eprintln!("heir: no rules directory found; the built-in detectors run alone"),
    }
    if let Some(bytes) = state
        && let Err(e) = engine.restore_state(bytes)
    {
        eprintln!("heir: detector state not restored, learning afresh: {e}");
    }
    engine
}

async fn replay(file: PathBuf) -> Result<()> {
    let config = Config::default();
    let stats = Arc::new(Stats::default());
    let (tx, rx) = mpsc::channel(pipeline::QUEUE_BATCHES);
    let path = file.clone();
    let reading = tokio::task::spawn_blocking(move || {
        let mut bad = Vec::new();
        let n = pipeline::replay_source(&path, tx, &mut bad);
        (n, bad)
    });
    let stages = Stages {
        table: ProcessTable::new(Lookup::None),
        engine: Some(build_engine(&config, None)),
        ticks: pipeline::Ticks::EventTime,
        stats: stats.clone(),
    };
    let mut out = JsonLines::stdout();
    stages
        .run(
            rx,
            |_| {},
            move |a| {
                let _ = out.write(a);
            },
        )
        .await;
    let (n, bad) = reading.await?;
    let n = n.with_context(|| format!("reading {}", file.display()))?;
    for b in &bad {
        eprintln!("heir replay: skipped {b}");
    }
    eprintln!(
        "heir replay: {n} events, {} alerts, {} bad lines",
        Stats::get(&stats.alerts),
        bad.len()
    );
    if !bad.is_empty() {
        bail!(
            "{} of the lines in {} were not events",
            bad.len(),
            file.display()
        );
    }
    Ok(())
}

fn bench(b: Bench) -> Result<()> {
    let exe = std::env::current_exe().context("locating the heir binary")?;
    match b {
        Bench::Overhead { rounds } => heir_agent::bench::overhead(&exe, rounds.max(1)),
        Bench::Throughput { seconds } => heir_agent::bench::throughput(&exe, seconds.max(1)),
        Bench::Xdp { repeat, flows } => {
            heir_agent::bench_xdp::print(&heir_agent::bench_xdp::run(repeat.max(1), flows)?);
            Ok(())
        }
        Bench::Loop {
            workload,
            path,
            until_ms,
            count,
        } => {
            let w = heir_agent::bench::Workload::parse(&workload)
                .with_context(|| format!("unknown workload `{workload}`"))?;
            heir_agent::bench::loop_child(w, path, until_ms, count)
        }
    }
}

fn devices(state: StateArgs, json: bool) -> Result<()> {
    let (_, risk) = state.open()?;
    let listing = risk.rama.listing();
    if json {
        println!("{}", serde_json::to_string_pretty(&listing)?);
    } else {
        print!("{}", heir_rama::text::devices(&listing));
    }
    Ok(())
}

fn rama(state: StateArgs, json: bool, device: Option<String>, explain: bool) -> Result<()> {
    let (_, risk) = state.open()?;
    let r = &risk.rama;
    match device {
        Some(id) => {
            let report = r
                .explain(&id)
                .with_context(|| format!("no device `{id}` in the inventory"))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", heir_rama::text::report(&report));
            }
        }
        None => {
            let scores = r.scores();
            if json {
                let v = serde_json::json!({ "hospital": r.hospital(), "devices": scores });
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                print!("{}", heir_rama::text::scores(&r.hospital(), &scores));
                if explain {
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

fn vuln_import(file: PathBuf, state: StateArgs) -> Result<()> {
    let (config, mut risk) = state.open()?;
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data dir {}", config.data_dir.display()))?;
    let imported = risk.rama.import(&file)?;
    risk.save()?;
    println!("{}: {imported}", file.display());
    Ok(())
}

fn rules(cmd: Rules) -> Result<()> {
    let dir_or_default = |dir: Option<PathBuf>| -> Result<PathBuf> {
        dir.or_else(|| Config::default().rules_dir())
            .context("no rules directory given and none found (see `heir rules --help`)")
    };
    match cmd {
        Rules::Check { dir } => {
            let dir = dir_or_default(dir)?;
            let set = heir_detect::rules::check(&dir)?;
            println!("{}: {} rules, all valid", dir.display(), set.len());
        }
        Rules::Test { dir } => {
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

fn print_alert(a: &heir_api::Stored, json: bool) {
    if json {
        println!("{}", a.alert.to_json_line());
    } else {
        println!(
            "#{:<6} {} {:<8} {:<20} {}{}{}",
            a.seq,
            a.alert.ts,
            a.alert.severity,
            a.alert.category,
            a.alert.title,
            a.alert
                .device
                .as_ref()
                .map(|d| format!(" [{d}]"))
                .unwrap_or_default(),
            if a.acknowledged.is_some() {
                " (acknowledged)"
            } else {
                ""
            }
        );
    }
}

async fn alerts(state: StateArgs, json: bool, last: usize, follow: bool) -> Result<()> {
    let config = state.config()?;
    // A running agent answers through its API; a stopped one's store is read directly.
    let client = heir_api::Client::new(config.api_socket());
    let query = heir_api::AlertQuery {
        limit: last.clamp(1, heir_api::alert::MAX_LIMIT),
        after: None,
        unacknowledged: false,
    };
    match client.alerts(&query).await {
        Ok(mut page) => {
            page.reverse();
            for a in &page {
                print_alert(a, json);
            }
            if follow {
                let mut stream = client
                    .stream(heir_api::StreamQuery {
                        alerts: true,
                        events: false,
                    })
                    .await?;
                while let Some(item) = stream.next().await {
                    if let heir_api::Live::Alert(a) = item? {
                        print_alert(&a, json);
                    }
                }
            }
            return Ok(());
        }
        Err(e) if e.is_connect() => {
            if follow {
                bail!(
                    "--follow needs a running agent (no API at {})",
                    config.api_socket().display()
                );
            }
        }
        Err(e) => return Err(e.into()),
    }
    let store = stopped_store(&config)?;
    let all = store.alerts(0, usize::MAX)?;
    for a in all.into_iter().rev().take(last).rev() {
        print_alert(&heir_agent::api::stored(a), json);
    }
    Ok(())
}

fn keystore(state: &StateArgs) -> Result<heir_mesh::keystore::Keystore> {
    let config = state.config()?;
    Ok(heir_mesh::keystore::Keystore::open(
        heir_agent::mesh::keystore_dir(&config.data_dir),
    )?)
}

fn days(n: u64) -> Duration {
    Duration::from_secs(n.saturating_mul(86_400))
}

async fn mesh_peers(state: StateArgs, json: bool) -> Result<()> {
    let config = state.config()?;
    let client = heir_api::Client::new(config.api_socket());
    let peers = match client.peers().await {
        Ok(p) => p,
        Err(e) if e.is_connect() => bail!(
            "no agent is running with data dir {} (its API answers peer queries)",
            config.data_dir.display()
        ),
        Err(e) => return Err(e.into()),
    };
    match peers.available() {
        None => {
            println!("the mesh is not running: this node is not a member (heir mesh init / join)")
        }
        Some(list) if json => println!("{}", serde_json::to_string_pretty(list)?),
        Some(list) => {
            for p in list {
                println!(
                    "{}  {}  trust {:.2}",
                    p.id,
                    p.name.as_deref().unwrap_or("-"),
                    p.trust
                );
            }
            println!("{} peer(s)", list.len());
        }
    }
    Ok(())
}

fn mesh(cmd: MeshCmd) -> Result<()> {
    use heir_mesh::{Invite, JoinRequest};
    let now = heir_model::Timestamp::now();
    match cmd {
        MeshCmd::Init {
            hospital,
            groups,
            days: d,
            state,
        } => {
            let ks = keystore(&state)?;
            let m = ks.init(&hospital, &groups, days(d), now)?;
            println!(
                "consortium founded; this node is member `{}` until {}",
                m.credential.hospital, m.credential.expires
            );
            println!("keys in {}", ks.dir().display());
        }
        MeshCmd::JoinRequest { state } => {
            println!("{}", keystore(&state)?.identity()?.join_request().encode());
        }
        MeshCmd::Invite {
            request,
            hospital,
            groups,
            days: d,
            bootstrap,
            state,
        } => {
            let req = JoinRequest::decode(request.trim())?;
            let invite =
                keystore(&state)?.invite(&req, &hospital, &groups, days(d), bootstrap, now)?;
            println!("{}", invite.encode());
        }
        MeshCmd::Join { invite, state } => {
            let m = keystore(&state)?.join(&Invite::decode(invite.trim())?, now)?;
            println!(
                "joined as `{}` (groups: {}) until {}; the agent starts the mesh node on its next start",
                m.credential.hospital,
                m.credential.groups.join(", "),
                m.credential.expires
            );
        }
        MeshCmd::Peers { .. } => unreachable!("answered through the API"),
        MeshCmd::Status { state, json } => {
            let ks = keystore(&state)?;
            let peer = ks.identity()?.peer_id();
            let membership = ks.membership().ok();
            if json {
                let v = serde_json::json!({
                    "peer_id": peer.to_string(),
                    "member": membership.as_ref().map(|m| &m.credential.hospital),
                    "groups": membership.as_ref().map(|m| &m.credential.groups),
                    "expires": membership.as_ref().map(|m| m.credential.expires),
                });
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!("peer id   {peer}");
                match membership {
                    Some(m) => {
                        println!("member    {}", m.credential.hospital);
                        println!("groups    {}", m.credential.groups.join(", "));
                        println!("expires   {}", m.credential.expires);
                    }
                    None => println!("member    no (run `heir mesh init` or `heir mesh join`)"),
                }
            }
        }
    }
    Ok(())
}

fn knowledge(state: &StateArgs) -> Result<heir_mesh::knowledge::KnowledgeBase> {
    let (kb, warnings) = heir_mesh::knowledge::load(&keystore(state)?, 1_000_000)?;
    for w in warnings {
        eprintln!("heir: {w}");
    }
    Ok(kb)
}

fn indicators(state: StateArgs, json: bool) -> Result<()> {
    let kb = knowledge(&state)?;
    for e in kb.entries() {
        if json {
            println!("{}", serde_json::to_string(e)?);
        } else {
            println!(
                "{:<22} {:<8} {:>3.0}%  {} hospital(s)  {}",
                e.indicator.category,
                e.indicator.severity,
                e.confidence * 100.0,
                e.hospitals(),
                e.indicator.rule
            );
        }
    }
    Ok(())
}

fn export(format: ExportFormat, state: StateArgs) -> Result<()> {
    let kb = knowledge(&state)?;
    let entries: Vec<_> = kb.entries().cloned().collect();
    let vulns: Vec<_> = kb.vulnerabilities().map(|(v, _)| v.clone()).collect();
    let now = heir_model::Timestamp::now();
    let out = match format {
        ExportFormat::Stix => {
            let aggregates: Vec<_> = kb.aggregates().iter().map(|(_, a)| a.clone()).collect();
            heir_mesh::exchange::to_stix(&entries, &vulns, &aggregates, now)
        }
        ExportFormat::Misp => heir_mesh::exchange::to_misp(&entries, &vulns, now),
    };
    println!("{out}");
    Ok(())
}

fn import(file: PathBuf) -> Result<()> {
    let items = heir_mesh::exchange::import_file(&file)?;
    for item in &items {
        println!("{}", serde_json::to_string(item)?);
    }
    eprintln!("{}: {} item(s)", file.display(), items.len());
    Ok(())
}

async fn audit(state: StateArgs, json: bool) -> Result<()> {
    let config = state.config()?;
    // A running agent answers through its API; a stopped one's store is read directly.
    let entries: Vec<heir_api::AuditEntry> =
        match heir_api::Client::new(config.api_socket()).audit().await {
            Ok(a) => match a.available() {
                Some(list) => list.clone(),
                None => bail!("the running agent has no responder"),
            },
            Err(e) if e.is_connect() => stopped_store(&config)?
                .audit()?
                .into_iter()
                .map(heir_agent::api::audit_entry)
                .collect(),
            Err(e) => return Err(e.into()),
        };
    for e in entries {
        if json {
            println!("{}", serde_json::to_string(&e)?);
        } else {
            println!(
                "{} {:<8} {:<40} by {:<8} {} ({})",
                e.at, e.action, e.target, e.actor, e.outcome, e.reason
            );
        }
    }
    Ok(())
}

/// The store of an agent that is not running (a running one holds it, and answers through
/// its API instead).
fn stopped_store(config: &Config) -> Result<heir_store::Store> {
    let path = config.data_dir.join("heir.redb");
    if !path.exists() {
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
