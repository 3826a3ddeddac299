//! The running agent: sources, stages, sinks and timers, built from the configuration and
//! shut down in order.
//!
//! ```text
//! kernel ring buffer ─┐                                         ┌─ store ──── live alerts
//! packet ring buffer ─┼─▶ queue ─▶ enrich → detect ─▶ fan-out ─┼─ alert file, syslog
//! flow-table sweeps  ─┘ (bounded)  (one task)        (never    ├─ RAMA ───── rama.json
//!                                                     waits)    ├─ responder ─ kernel blocks
//!                                                               ├─ mesh ───── other hospitals
//!                                                               └─ live ───── API stream
//! ```
//!
//! [`Agent::build`] does everything that can fail at start (load and attach the probes, open
//! the store, bind the API socket and the metrics port), so a caller that gets an `Agent`
//! knows it is ready. [`Agent::run`] runs until its cancellation token fires, then stops
//! the parts in the order that loses nothing: first the doors (API, metrics), then the
//! sources, then the pipeline (which drains its queue), then the sinks (which drain theirs
//! and flush), and last the detectors' learned state.

mod status;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use heir_model::{Alert, Event};
use heir_store::Read as _;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::Config;
use crate::mesh::{Actionable, Mesh};
use crate::metrics::AlertCounts;
use crate::packets::Gateway;
use crate::pipeline::{self, Output, Stages, Stats};
use crate::proctable::ProcessTable;
use crate::rama_state::RamaState;
use crate::respond::blocklist::Target;
use crate::respond::policy::{Decision, Responder};
use crate::sensor::Sensor;
use crate::sink::{self, Fanout, Sink};

/// Where the detectors' learned state (baselines, anomaly models) is kept in the store.
pub const DETECT_STATE: &str = "detect";

/// Items each sink's queue holds: event batches of up to [`pipeline::BATCH`] events, or
/// alerts. 128 batches is over half a second of a saturated kernel sensor at the store, and
/// bounds what a stalled sink holds: a thousand batches of enriched events were over 300 MiB
/// under a flood. What a full queue refuses is counted per sink.
const SINK_QUEUE: usize = 128;

/// How long the sinks get to drain and flush at shutdown.
const SINK_DEADLINE: Duration = Duration::from_secs(20);

/// What the agent runs with, beside its configuration: the command line's part.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Interfaces for the packet sensor (`--iface`).
    pub ifaces: Vec<String>,
    /// bpffs directory of the pinned block tables.
    pub pin_dir: PathBuf,
    /// Append the packet sensor's events here (`--packet-events`).
    pub packet_events: Option<PathBuf>,
    /// Append alert JSON lines here (`--alerts`).
    pub alerts: Option<PathBuf>,
    /// Where notices for the operator go.
    pub notify: Notify,
}

/// Where the agent tells the operator watching it what happens to its sensors as it happens
/// (the packet sensor attached to an interface, an interface came back). The binary prints
/// these lines on stderr; by default they are logged.
#[derive(Clone)]
pub struct Notify(Arc<dyn Fn(&str) + Send + Sync>);

impl Notify {
    pub fn new(f: impl Fn(&str) + Send + Sync + 'static) -> Notify {
        Notify(Arc::new(f))
    }

    pub fn say(&self, notice: &str) {
        (self.0)(notice)
    }
}

impl Default for Notify {
    fn default() -> Notify {
        Notify::new(|notice| tracing::info!("{notice}"))
    }
}

impl std::fmt::Debug for Notify {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Notify")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("starting the packet sensor (XDP)")]
    Packets(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("nothing to watch: `[sensor] syscalls = false` and no `--iface` given")]
    NothingToWatch,
    #[error("creating data dir {path}")]
    DataDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("opening {path}")]
    Output {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("syslog target {addr}")]
    Syslog {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("metrics on {addr}")]
    Metrics {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("starting the sinks' threads")]
    Sinks(#[source] std::io::Error),
    #[error("protecting the registry's protected devices")]
    Protect(#[source] crate::respond::policy::Error),
    #[error(transparent)]
    Store(#[from] heir_store::Error),
    #[error(transparent)]
    Rama(#[from] crate::rama_state::Error),
    #[error(transparent)]
    Sensor(#[from] crate::sensor::Error),
    #[error(transparent)]
    Api(#[from] heir_api::SocketError),
    #[error(transparent)]
    Mesh(#[from] crate::mesh::Error),
    #[error("an agent task failed")]
    Task(#[from] tokio::task::JoinError),
}

/// A built agent: every part started and bound, nothing running yet.
pub struct Agent {
    config: Config,
    sensor: Option<Sensor>,
    gateway: Option<Gateway>,
    store: Arc<heir_store::Store>,
    rama: Arc<Mutex<RamaState>>,
    engine: heir_detect::Engine,
    socket: heir_api::Socket,
    mesh: Option<Arc<Mesh>>,
    mesh_inbound: Option<mpsc::Receiver<Actionable>>,
    learn: mpsc::Sender<crate::intel::Learn>,
    learned: mpsc::Receiver<crate::intel::Learn>,
    responder: Arc<Responder>,
    live: tokio::sync::broadcast::Sender<heir_api::Live>,
    fanout: Fanout,
    alert_counts: Arc<AlertCounts>,
    stats: Arc<Stats>,
    status: crate::api::SharedStatus,
    mesh_peers: Arc<AtomicU64>,
    traffic: Arc<crate::traffic::Snapshot>,
    metrics: Option<(SocketAddr, JoinHandle<()>)>,
    serving: CancellationToken,
}

impl Agent {
    /// Starts every part the configuration asks for; returns once probes are attached and
    /// the API socket (and metrics port, if any) are listening.
    pub async fn build(config: Config, options: Options) -> Result<Agent, Error> {
        let gateway = crate::packets::start(
            &options.ifaces,
            &options.pin_dir,
            &config.sensor,
            options.notify.clone(),
        )
        .map_err(|e| Error::Packets(e.into()))?;
        if !config.sensor.syscalls && gateway.is_none() {
            return Err(Error::NothingToWatch);
        }
        let narrowed =
            crate::files::secure_dir(&config.data_dir).map_err(|source| Error::DataDir {
                path: config.data_dir.clone(),
                source,
            })?;
        for (path, was) in narrowed.paths {
            options.notify.say(&format!(
                "{}: was mode {was:04o}, open beyond root and group heir; narrowed",
                path.display()
            ));
        }
        let store = Arc::new(heir_store::Store::open(
            &config.data_dir.join("heir.redb"),
            config.retention,
        )?);
        let registry =
            crate::rama_state::registry_path(&config.data_dir, config.registry.as_deref());
        let rama = RamaState::open(&config.data_dir, registry.as_deref())?;
        // Devices the registry marks protected can never be blocked, whoever asks, by their
        // address or by their MAC.
        let protected: Vec<Target> = rama
            .rama
            .listing()
            .devices
            .iter()
            .filter(|d| d.registered.as_ref().is_some_and(|r| r.protected))
            .flat_map(|d| {
                let mac = d.mac.or(d.registered.as_ref().and_then(|r| r.mac));
                d.ip.map(Target::from)
                    .into_iter()
                    .chain(mac.map(|m| Target::Mac(m.0)))
            })
            .collect();
        let rama = Arc::new(Mutex::new(rama));
        let engine = engine(&config, store.blob(DETECT_STATE)?.as_deref());
        let sensor = if config.sensor.syscalls {
            Some(Sensor::start(&config.sensor, std::process::id())?)
        } else {
            None
        };
        let socket = heir_api::Socket::bind(config.api_socket())?;
        let own = own(&rama.lock().expect("rama lock").rama.listing());
        let (learn, learned) = mpsc::channel(crate::intel::QUEUE);
        let (mesh, mesh_inbound) =
            match Mesh::start(&config.mesh, &config.data_dir, &own, learn.clone())? {
                Some((m, rx)) => (Some(Arc::new(m)), Some(rx)),
                None => (None, None),
            };
        let responder = Arc::new(Responder::new(
            config.respond.clone(),
            &options.pin_dir,
            store.clone(),
        ));
        let protected = protected
            .into_iter()
            .chain(never_block(&config, mesh.as_deref()));
        responder.protect(protected).map_err(Error::Protect)?;
        let (live, _) = tokio::sync::broadcast::channel(4096);
        let fanout = Fanout::spawn(sinks(
            &config, &options, &store, &rama, &responder, &mesh, &live,
        )?)
        .map_err(Error::Sinks)?;
        let stats = Arc::new(Stats::default());
        let status = Arc::new(Mutex::new(status::of(
            sensor.as_ref(),
            &Default::default(),
            0.0,
            &stats,
            &fanout.drops(),
        )));
        let alert_counts = Arc::new(AlertCounts::default());
        let mesh_peers = Arc::new(AtomicU64::new(0));
        let traffic = Arc::new(crate::traffic::Snapshot::default());
        let serving = CancellationToken::new();
        let metrics = match config.metrics_listen {
            Some(addr) => {
                let sources = Arc::new(crate::metrics::Sources {
                    status: status.clone(),
                    risk: rama.clone(),
                    alerts: alert_counts.clone(),
                    mesh_peers: mesh_peers.clone(),
                    traffic: traffic.clone(),
                });
                let served =
                    crate::metrics::serve(addr, sources, serving.clone().cancelled_owned())
                        .await
                        .map_err(|source| Error::Metrics { addr, source })?;
                Some(served)
            }
            None => None,
        };
        Ok(Agent {
            config,
            sensor,
            gateway,
            store,
            rama,
            engine,
            socket,
            mesh,
            mesh_inbound,
            learn,
            learned,
            responder,
            live,
            fanout,
            alert_counts,
            stats,
            status,
            mesh_peers,
            traffic,
            metrics,
            serving,
        })
    }

    /// The local API's socket.
    pub fn api_socket(&self) -> PathBuf {
        self.config.api_socket()
    }

    /// Where Prometheus metrics are served, when they are.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(|(a, _)| *a)
    }

    /// This node's mesh identity, when the mesh runs.
    pub fn mesh_peer(&self) -> Option<String> {
        self.mesh.as_ref().map(|m| m.client.peer_id().to_string())
    }

    /// Probes that did not attach, with the reason (the others run on).
    pub fn failed_probes(&self) -> Vec<(String, String)> {
        self.sensor
            .iter()
            .flat_map(|s| &s.failed)
            .map(|f| (f.program.clone(), f.reason.to_string()))
            .collect()
    }

    /// Runs until `shutdown` is cancelled, then stops every part in order.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), Error> {
        let Agent {
            config,
            mut sensor,
            mut gateway,
            store,
            rama,
            engine,
            socket,
            mesh,
            mesh_inbound,
            learn,
            learned,
            responder,
            live,
            fanout,
            alert_counts,
            stats,
            status,
            mesh_peers,
            traffic,
            metrics,
            serving,
        } = self;
        let backend = Arc::new(crate::api::Agent {
            store: store.clone(),
            risk: rama.clone(),
            status: status.clone(),
            live,
            mesh: mesh.clone(),
            responder: responder.clone(),
            started: Instant::now(),
            learn: learn.clone(),
            importing: tokio::sync::Mutex::new(()),
        });
        let access = heir_api::Access::new(&config.api_operators);
        let api = tokio::spawn(socket.serve(backend, access, serving.clone().cancelled_owned()));

        // Sources: each sends batches into the pipeline's one queue and ends with `sources`.
        let sources = CancellationToken::new();
        let (tx, rx) = mpsc::channel(pipeline::QUEUE_BATCHES);
        let mut source_tasks = Vec::new();
        if let Some(s) = sensor.as_mut() {
            let (reader, tx, stats) = (s.reader()?, tx.clone(), stats.clone());
            let until = sources.clone();
            source_tasks.push(tokio::spawn(async move {
                if let Some(Err(e)) = until
                    .run_until_cancelled(pipeline::kernel_source(reader, tx, stats))
                    .await
                {
                    tracing::error!("kernel sensor: {}", heir_api::Chain(&e));
                }
            }));
        }
        if let Some(g) = gateway.as_mut() {
            let (reader, tx, stats) = (g.reader()?, tx.clone(), stats.clone());
            let until = sources.clone();
            source_tasks.push(tokio::spawn(async move {
                if let Some(Err(e)) = until
                    .run_until_cancelled(crate::packets::source(reader, tx, stats))
                    .await
                {
                    tracing::error!("packet sensor: {}", heir_api::Chain(&e));
                }
            }));
        }
        // Flow-table sweeps join the same queue from the timers below.
        let flow_tx = gateway.is_some().then(|| tx.clone());
        drop(tx);

        // Known indicators: the imports the store holds, then the mesh's and new imports.
        let (control_tx, control) = mpsc::channel(pipeline::CONTROL_QUEUE);
        let intel = tokio::spawn(crate::intel::run(
            learned,
            control_tx,
            store.clone(),
            config.intel.clone(),
        ));
        tokio::spawn(crate::intel::learn_imports(store.clone(), learn));

        let drops = fanout.drops();
        let pipeline = tokio::spawn(
            Stages {
                table: ProcessTable::from_proc(),
                engine: Some(engine),
                ticks: pipeline::Ticks::Wall,
                stats: stats.clone(),
                control: Some(control),
            }
            .run(
                rx,
                Outputs {
                    fanout,
                    counts: alert_counts,
                },
            ),
        );
        let inbound = mesh_inbound.map(|rx| {
            let until = sources.clone();
            tokio::spawn(async move { until.run_until_cancelled(act_on_mesh(rx, responder)).await })
        });

        let mut timers = Timers::new(gateway.as_ref());
        let mut last = (Default::default(), Instant::now());
        let mut drops_seen = Vec::new();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = timers.relink.tick(), if gateway.is_some() => {
                    gateway.as_mut().expect("guarded").tick();
                }
                _ = timers.sweep.tick(), if gateway.is_some() => {
                    match gateway.as_mut().expect("guarded").sweep() {
                        // Into the detectors beside the other packet events; never waiting.
                        Ok(flows) if !flows.is_empty() => {
                            let n = flows.len() as u64;
                            if flow_tx.as_ref().is_some_and(|t| t.try_send(flows).is_err()) {
                                stats.dropped.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                            }
                        }
                        Ok(_) => {}
                        Err(e) => tracing::warn!("reading the flow table: {}", heir_api::Chain(&e)),
                    }
                }
                _ = timers.traffic.tick(), if gateway.is_some() => {
                    if let Err(e) = traffic.refresh(&gateway.as_ref().expect("guarded").sensor) {
                        tracing::warn!("reading per-device traffic: {}", heir_api::Chain(&e));
                    }
                }
                _ = timers.status.tick() => {
                    let c = match &sensor {
                        Some(s) => s.counters()?,
                        None => Default::default(),
                    };
                    let (before, at): &(crate::sensor::Counters, Instant) = &last;
                    let dt = at.elapsed().as_secs_f64().max(0.001);
                    let rate = c.total().emitted.saturating_sub(before.total().emitted) as f64 / dt;
                    status::log_new_drops(&drops, &mut drops_seen);
                    *status.lock().expect("status lock") = status::of(sensor.as_ref(), &c, rate, &stats, &drops);
                    last = (c, Instant::now());
                    if let Some(m) = &mesh
                        && let Ok(Ok(peers)) = tokio::time::timeout(Duration::from_secs(1), m.client.peers()).await
                    {
                        mesh_peers.store(peers.len() as u64, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            }
        }

        // The doors first: no new requests while the rest winds down.
        serving.cancel();
        if let Ok(Err(e)) = api.await {
            tracing::warn!("API: {}", heir_api::Chain(&e));
        }
        if let Some((_, task)) = metrics {
            let _ = task.await;
        }
        // Then the sources; once the last sender is gone the pipeline drains its queue.
        sources.cancel();
        for t in source_tasks {
            t.await?;
        }
        if let Some(t) = inbound {
            t.await?;
        }
        drop(flow_tx);
        let (stages, outputs) = pipeline.await?;
        intel.abort();
        // Then the sinks, which drain their queues and flush; the store keeps what it took.
        let late = tokio::task::spawn_blocking(move || outputs.fanout.close(SINK_DEADLINE)).await?;
        for name in late {
            tracing::error!("sink {name} did not finish within {SINK_DEADLINE:?}");
        }
        if let Some(engine) = &stages.engine {
            store.put_blob(DETECT_STATE, &engine.save_state())?;
        }
        Ok(())
    }
}

/// The pipeline's end in the agent: alert counts for the metrics, then the fan-out.
struct Outputs {
    fanout: Fanout,
    counts: Arc<AlertCounts>,
}

impl Output for Outputs {
    fn events(&mut self, batch: Vec<Event>) {
        self.fanout.events(batch);
    }

    fn alert(&mut self, alert: Alert) {
        self.counts.count(alert.category);
        self.fanout.alert(alert);
    }
}

/// The agent's periodic work besides the pipeline's own (detector windows) and the sinks'
/// (flushes, RAMA saves).
struct Timers {
    /// Sensor counters into the status the API and metrics serve; drop lines in the log.
    status: tokio::time::Interval,
    /// Re-attach the packet sensor to interfaces that came back; purge expired blocks.
    relink: tokio::time::Interval,
    /// Connection records from the kernel's flow table.
    sweep: tokio::time::Interval,
    /// Per-device traffic counters.
    traffic: tokio::time::Interval,
}

impl Timers {
    fn new(gateway: Option<&Gateway>) -> Timers {
        Timers {
            status: tokio::time::interval(Duration::from_secs(1)),
            relink: tokio::time::interval(Duration::from_secs(2)),
            sweep: tokio::time::interval(
                gateway.map_or(Duration::from_secs(3600), Gateway::sweep_every),
            ),
            traffic: tokio::time::interval(crate::traffic::INTERVAL),
        }
    }
}

/// The sinks the configuration asks for, in the order they are closed at shutdown: the
/// store first, so what the others act on is kept even if one of them is slow to stop.
fn sinks(
    config: &Config,
    options: &Options,
    store: &Arc<heir_store::Store>,
    rama: &Arc<Mutex<RamaState>>,
    responder: &Arc<Responder>,
    mesh: &Option<Arc<Mesh>>,
    live: &tokio::sync::broadcast::Sender<heir_api::Live>,
) -> Result<sink::Components, Error> {
    let mut out: Vec<Box<dyn Sink>> = vec![Box::new(sink::Store::new(store.clone(), live.clone()))];
    if let Some(path) = &options.alerts {
        out.push(Box::new(sink::AlertFile::append(path).map_err(
            |source| Error::Output {
                path: path.clone(),
                source,
            },
        )?));
    }
    if let Some(addr) = config.syslog {
        out.push(Box::new(
            sink::Syslog::connect(addr).map_err(|source| Error::Syslog { addr, source })?,
        ));
    }
    if let Some(path) = &options.packet_events {
        out.push(Box::new(sink::EventFile::append(path).map_err(
            |source| Error::Output {
                path: path.clone(),
                source,
            },
        )?));
    }
    out.push(Box::new(sink::Rama::new(rama.clone())));
    out.push(Box::new(sink::Respond(responder.clone())));
    if let Some(m) = mesh {
        out.push(Box::new(sink::MeshShare {
            mesh: m.clone(),
            policy: config.mesh.clone(),
        }));
    }
    out.push(Box::new(sink::Live(live.clone())));
    Ok(out.into_iter().map(|s| (s, SINK_QUEUE)).collect())
}

/// Addresses the other hospitals corroborated, to the responder (whose policy decides).
async fn act_on_mesh(mut rx: mpsc::Receiver<Actionable>, responder: Arc<Responder>) {
    while let Some(a) = rx.recv().await {
        match responder.consider_indicator(a.addr, a.category, &a.reason()) {
            Decision::Refused(why) => {
                tracing::warn!("responder did not block {} from the mesh: {why}", a.addr);
            }
            Decision::Blocked(addr) => tracing::info!("responder blocked {addr} ({})", a.reason()),
            _ => {}
        }
    }
}

/// The hospital's own addresses and words, which no indicator may carry: the host's
/// interface addresses, and the registry's addresses, ids, names and locations.
fn own(listing: &heir_rama::Listing) -> crate::mesh::Own {
    let mut own = crate::mesh::Own {
        addresses: crate::host::interface_addresses(),
        terms: Vec::new(),
    };
    // Registered devices only: the inventory also holds what the sensors discovered, which
    // may be an outside host.
    for d in listing.devices.iter().filter(|d| d.registered.is_some()) {
        own.addresses.extend(d.ip);
        if let Some(r) = &d.registered {
            own.terms.push(r.name.clone());
            own.terms.extend(r.location.clone());
        }
        own.terms.push(d.id.to_string());
    }
    own
}

/// What the responder may never block besides the registry's protected devices: the
/// configured prefixes and, unless turned off, the host's own infrastructure.
fn never_block(config: &Config, mesh: Option<&Mesh>) -> Vec<Target> {
    use crate::respond::never_block::{self, Why};
    let mut out: Vec<Target> = config.respond.never_block.clone();
    if config.respond.protect_infrastructure {
        let mut found = never_block::host_infrastructure();
        found.extend(
            mesh.iter()
                .flat_map(|m| m.bootstrap.iter())
                .filter_map(|a| never_block::multiaddr_ip(a))
                .map(|ip| (ip, Why::MeshPeer)),
        );
        for (ip, why) in found {
            tracing::info!("never blocking {ip}: the host's {}", why.as_str());
            out.push(Target::from(ip));
        }
    }
    out
}

fn dirs(sources: &heir_detect::rules::Sources) -> String {
    let d: Vec<String> = sources
        .dirs
        .iter()
        .map(|d| d.display().to_string())
        .collect();
    d.join(", ")
}

/// The detection engine from the configuration, with the rules directory loaded and watched
/// and, when given, the state a previous run saved.
pub fn engine(config: &Config, state: Option<&[u8]>) -> heir_detect::Engine {
    let mut engine = heir_detect::Engine::new(&config.detect, Arc::new(heir_detect::SystemClock));
    if let Ok(host) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        engine.set_local_device(host.trim());
    }
    let sources = config.rules_sources();
    if let Err(e) = engine.load_rules(&sources) {
        // The host's rules are broken: run the built-in ones until they are fixed (the watcher
        // reloads them then), rather than no rules at all.
        tracing::warn!(
            "rules in {} not loaded, running the built-in rules alone: {}",
            dirs(&sources),
            heir_api::Chain(&e)
        );
        match heir_detect::rules::built_in() {
            Ok(set) => engine.set_rules(set),
            Err(e) => tracing::error!("built-in rules not loaded: {}", heir_api::Chain(&e)),
        }
    }
    if let Some(bytes) = state
        && let Err(e) = engine.restore_state(bytes)
    {
        tracing::warn!(
            "detector state not restored, learning afresh: {}",
            heir_api::Chain(&e)
        );
    }
    engine
}
