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
    /// Run the agent with a live view on this terminal (the quickest way to see heir work).
    Up(AgentArgs),
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
    fn open(&self) -> Result<(Config, Risk)> {
        let mut config = load_config(self.config.as_ref())?;
        if let Some(d) = &self.data_dir {
            config.data_dir = d.clone();
        }
        let given = self.registry.as_deref().or(config.registry.as_deref());
        let registry = heir_agent::risk::registry_path(&config.data_dir, given);
        let risk = Risk::open(&config.data_dir, registry.as_deref())?;
        Ok((config, risk))
    }
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
        /// Also fill a flow table of this many flows and report its memory.
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
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("HEIR_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = rt.block_on(async move {
        match cli.command {
            Command::Agent(a) => agent(a, false).await,
            Command::Up(a) => agent(a, true).await,
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

async fn agent(args: AgentArgs, live: bool) -> Result<()> {
    let mut config = load_config(args.config.as_ref())?;
    if let Some(d) = args.data_dir {
        config.data_dir = d;
    }
    let mut packets = heir_agent::packets::start(&args.iface, &args.pins.pin_dir)?;
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data dir {}", config.data_dir.display()))?;
    let mut alerts_out = match &args.alerts {
        Some(p) => Some(JsonLines::append(p).with_context(|| format!("opening {}", p.display()))?),
        None => None,
    };
    let registry = heir_agent::risk::registry_path(&config.data_dir, config.registry.as_deref());
    let risk = Arc::new(std::sync::Mutex::new(Risk::open(
        &config.data_dir,
        registry.as_deref(),
    )?));
    let mut sensor = start_sensor(&config)?;
    let reader = sensor.reader()?;
    let stats = Arc::new(Stats::default());
    let packet_source = match packets.as_mut() {
        Some(p) => Some(tokio::spawn(heir_agent::packets::feed(
            p.reader()?,
            risk.clone(),
            args.packet_events.as_deref(),
            stats.clone(),
        )?)),
        None => None,
    };
    let (tx, rx) = mpsc::channel(pipeline::QUEUE_BATCHES);
    let source = tokio::spawn(pipeline::kernel_source(reader, tx, stats.clone()));
    let stages = Stages {
        table: ProcessTable::from_proc(),
        detect: Vec::new(),
        stats: stats.clone(),
    };
    let scoring = risk.clone();
    let pipeline = tokio::spawn(stages.run(
        rx,
        |_| {},
        move |a| {
            if let Some(out) = alerts_out.as_mut()
                && let Err(e) = out.write(a)
            {
                tracing::error!("writing alert: {e}");
            }
            scoring.lock().expect("risk lock").rama.alert(a);
        },
    ));
    println!("ready");
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(if live { 1 } else { 60 }));
    let mut last = (Counters::default(), Instant::now());
    let mut save = tokio::time::interval(Duration::from_secs(60));
    let mut relink = tokio::time::interval(Duration::from_secs(2));
    loop {
        tokio::select! {
            _ = shutdown_signal() => break,
            _ = relink.tick(), if packets.is_some() => {
                packets.as_mut().expect("checked").tick();
            }
            _ = save.tick() => {
                let mut r = risk.lock().expect("risk lock");
                r.rama.tick();
                if let Err(e) = r.save() {
                    tracing::error!("{e}");
                }
            }
            _ = tick.tick() => {
                let c = sensor.counters()?;
                if live {
                    print_live(&c, &last.0, last.1.elapsed(), &stats, &sensor, started.elapsed());
                } else {
                    let t = c.total();
                    tracing::info!(emitted = t.emitted, lost = t.lost, filtered = t.filtered, "sensor");
                }
                last = (c, Instant::now());
            }
        }
    }
    source.abort();
    pipeline.abort();
    if let Some(p) = packet_source {
        p.abort();
    }
    risk.lock().expect("risk lock").save()?;
    Ok(())
}

fn print_live(
    now: &Counters,
    before: &Counters,
    dt: Duration,
    stats: &Stats,
    sensor: &Sensor,
    up: Duration,
) {
    let secs = dt.as_secs_f64().max(0.001);
    let total = now.total();
    let prev = before.total();
    println!(
        "\x1b[2J\x1b[Hheir — up {}s — {} probes attached, {} failed\n\nevents/s {:>10.0}   lost {:>8}   filtered in kernel {:>10}   alerts {}\n",
        up.as_secs(),
        sensor.attached.len(),
        sensor.failed.len(),
        (total.emitted - prev.emitted.min(total.emitted)) as f64 / secs,
        total.lost,
        total.filtered,
        Stats::get(&stats.alerts),
    );
    println!(
        "{:<14}{:>12}{:>10}{:>12}",
        "kind", "emitted", "lost", "filtered"
    );
    for (k, c) in &now.by_kind {
        if c.emitted + c.lost + c.filtered > 0 {
            println!(
                "{:<14}{:>12}{:>10}{:>12}",
                k.name(),
                c.emitted,
                c.lost,
                c.filtered
            );
        }
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
        detect: Vec::new(),
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

async fn replay(file: PathBuf) -> Result<()> {
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
        detect: Vec::new(),
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
