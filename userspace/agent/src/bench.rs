//! `heir bench`: what the sensor costs the machine and how much it can carry, measured here.
//!
//! Syscall loops run in child processes (the probes ignore the agent's own syscalls, so
//! measuring in-process would measure nothing) and time themselves. Runs with and without the
//! sensor are interleaved round by round, so drift in the machine's speed hits both alike.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::decode;
use crate::sensor::{self, Sensor, watch};
use heir_model::BootClock;

/// One syscall workload a child process runs and times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// open + close of a path outside every watched prefix.
    OpenClose,
    /// fork + exec of /bin/true, waited for.
    Exec,
    /// TCP connect to a loopback listener, accepted and closed.
    Connect,
    /// rename of a file back and forth.
    Rename,
    /// getpid: a syscall no monitor traces, so its cost under a monitor is the monitor's
    /// toll on every syscall of the machine.
    Getpid,
}

impl Workload {
    pub const ALL: [Workload; 5] = [
        Workload::OpenClose,
        Workload::Exec,
        Workload::Connect,
        Workload::Rename,
        Workload::Getpid,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Workload::OpenClose => "open-close",
            Workload::Exec => "exec",
            Workload::Connect => "connect",
            Workload::Rename => "rename",
            Workload::Getpid => "getpid",
        }
    }

    pub fn parse(s: &str) -> Option<Workload> {
        Workload::ALL.into_iter().find(|w| w.name() == s)
    }

    fn iterations(self) -> u64 {
        match self {
            Workload::OpenClose => 200_000,
            Workload::Exec => 400,
            Workload::Connect => 5_000,
            Workload::Rename => 100_000,
            Workload::Getpid => 1_000_000,
        }
    }
}

/// CPU time this process and its waited-for children have used, in nanoseconds. CPU time,
/// not wall time, so other load on the machine does not blur the comparison; the probes run
/// inside the syscalls, so their cost is in it.
fn cpu_ns() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid pointers to locals.
    let (own, children) = unsafe {
        libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts);
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru);
        (ts, ru)
    };
    let tv = |t: libc::timeval| t.tv_sec as f64 * 1e9 + t.tv_usec as f64 * 1e3;
    own.tv_sec as f64 * 1e9 + own.tv_nsec as f64 + tv(children.ru_utime) + tv(children.ru_stime)
}

/// Runs `n` iterations of `w` in this process; returns CPU nanoseconds per iteration.
pub fn run_loop(w: Workload, n: u64, path: &Path) -> std::io::Result<f64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())?;
    let other = std::ffi::CString::new([path.as_os_str().as_bytes(), b".2"].concat())?;
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    if w == Workload::Rename || w == Workload::OpenClose {
        std::fs::write(path, b"x")?;
    }
    let t = cpu_ns();
    for i in 0..n {
        match w {
            // SAFETY: valid C strings; descriptors are closed right away.
            Workload::OpenClose => unsafe {
                let fd = libc::open(c.as_ptr(), libc::O_RDONLY);
                if fd >= 0 {
                    libc::close(fd);
                }
            },
            Workload::Exec => {
                Command::new("/bin/true").status()?;
            }
            Workload::Connect => {
                let s = std::net::TcpStream::connect(("127.0.0.1", port))?;
                let (a, _) = listener.accept()?;
                drop((s, a));
            }
            Workload::Rename => {
                let (from, to) = if i % 2 == 0 {
                    (&c, &other)
                } else {
                    (&other, &c)
                };
                // SAFETY: valid C strings.
                unsafe { libc::rename(from.as_ptr(), to.as_ptr()) };
            }
            // SAFETY: getpid has no preconditions; the raw syscall keeps libc from caching it.
            Workload::Getpid => unsafe {
                libc::syscall(libc::SYS_getpid);
            },
        }
    }
    let ns = (cpu_ns() - t) / n as f64;
    let _ = std::fs::remove_file(path);
    let _ = std::fs::remove_file(Path::new(other.to_str().unwrap_or_default()));
    Ok(ns)
}

/// Runs a workload in a child (`heir bench loop`), returning its ns per iteration.
fn child(exe: &Path, w: Workload, scratch: &Path) -> anyhow::Result<f64> {
    let out = Command::new(exe)
        .args(["bench", "loop", w.name()])
        .arg(scratch.join(format!("{}-{}", w.name(), std::process::id())))
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "bench loop {} failed: {}",
        w.name(),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let ns = text.split_whitespace().next().unwrap_or_default();
    ns.parse()
        .map_err(|e| anyhow::anyhow!("bench loop {} printed `{}`: {e}", w.name(), text.trim()))
}

/// A sensor with a reader draining it on its own thread, as the agent would.
struct Running {
    /// The programs the sensor attached: the syscall set a like-for-like monitor must watch.
    attached: Vec<String>,
    stop: Arc<AtomicBool>,
    /// While set, the reader leaves the ring alone (to measure how fast it drains a full one).
    hold: Arc<AtomicBool>,
    received: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<anyhow::Result<sensor::Counters>>>,
}

impl Running {
    fn start(config: sensor::Config) -> anyhow::Result<Running> {
        let stop = Arc::new(AtomicBool::new(false));
        let hold = Arc::new(AtomicBool::new(false));
        let received = Arc::new(AtomicU64::new(0));
        let (s, r, h) = (stop.clone(), received.clone(), hold.clone());
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || -> anyhow::Result<sensor::Counters> {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async move {
                let mut sensor = match Sensor::start(&config, std::process::id()) {
                    Ok(x) => x,
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                        anyhow::bail!("sensor did not start");
                    }
                };
                let mut reader = sensor.reader()?;
                let _ = tx.send(Ok(sensor.attached().to_vec()));
                let clock = BootClock::now();
                while !s.load(Ordering::Relaxed) {
                    if h.load(Ordering::Relaxed) {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                        continue;
                    }
                    let mut n = 0;
                    reader
                        .read_batch(|b| {
                            if decode::decode(b, &clock).is_ok() {
                                n += 1;
                            }
                        })
                        .await?;
                    r.fetch_add(n, Ordering::Relaxed);
                }
                Ok(sensor.counters()?)
            })
        });
        match rx.recv()? {
            Ok(attached) => Ok(Running {
                attached,
                stop,
                hold,
                received,
                thread: Some(thread),
            }),
            Err(e) => anyhow::bail!("{e}"),
        }
    }

    fn stop(mut self) -> anyhow::Result<(sensor::Counters, u64)> {
        self.stop.store(true, Ordering::Relaxed);
        let c = self
            .thread
            .take()
            .expect("started")
            .join()
            .map_err(|_| anyhow::anyhow!("reader panicked"))??;
        Ok((c, self.received.load(Ordering::Relaxed)))
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Syscall overhead with and without the sensor, as ratios.
pub fn overhead(exe: &Path, rounds: usize) -> anyhow::Result<()> {
    let scratch = std::env::temp_dir().join(format!("heir-bench-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)?;
    let report_all = sensor::Config {
        watch: vec![watch::Rule::new(
            &format!("{}/", scratch.display()),
            watch::Access::Any,
        )],
        ..sensor::Config::default()
    };
    let mut base: Vec<Vec<f64>> = vec![Vec::new(); Workload::ALL.len()];
    let mut with: Vec<Vec<f64>> = vec![Vec::new(); Workload::ALL.len()];
    let mut counted: Vec<Vec<f64>> = vec![Vec::new(); Workload::ALL.len()];
    let mut all_base = Vec::new();
    let mut all_with = Vec::new();
    let mut lost = 0;
    let bpftrace = which("bpftrace");
    let mut script = None;
    for round in 0..rounds {
        eprintln!("[bench] overhead round {}/{rounds}", round + 1);
        for (i, w) in Workload::ALL.into_iter().enumerate() {
            base[i].push(child(exe, w, &scratch)?);
        }
        let s = Running::start(sensor::Config::default())?;
        for (i, w) in Workload::ALL.into_iter().enumerate() {
            with[i].push(child(exe, w, &scratch)?);
        }
        let attached = s.attached.clone();
        lost += s.stop()?.0.total().lost;
        if let Some(bin) = &bpftrace {
            if script.is_none() {
                script = Some(count_script(&attached)?);
            }
            let script = script.as_deref().expect("set above");
            let monitor = Bpftrace::start(bin, script)?;
            for (i, w) in Workload::ALL.into_iter().enumerate() {
                counted[i].push(child(exe, w, &scratch)?);
            }
            monitor.stop();
        }
        all_base.push(child(exe, Workload::OpenClose, &scratch)?);
        let s = Running::start(report_all.clone())?;
        all_with.push(child(exe, Workload::OpenClose, &scratch)?);
        let (c, received) = s.stop()?;
        lost += c.total().lost;
        anyhow::ensure!(
            received >= Workload::OpenClose.iterations(),
            "report-all run delivered only {received} events"
        );
    }
    let _ = std::fs::remove_dir_all(&scratch);
    println!(
        "syscall overhead: ns/op under each monitor / ns/op with none (median of {rounds} interleaved rounds)"
    );
    println!(
        "{:<34}{:>12}{:>16}{:>12}",
        "workload", "none ns/op", "bpftrace count", "heir"
    );
    let ratio = |v: &mut Vec<f64>, b: f64| {
        if v.is_empty() {
            "n/a".to_owned()
        } else {
            format!("{:.3}", median(v) / b)
        }
    };
    for (i, w) in Workload::ALL.into_iter().enumerate() {
        let b = median(&mut base[i]);
        let label = match w {
            Workload::OpenClose => "open-close (unwatched path)",
            Workload::Getpid => "getpid (traced by nobody)",
            _ => w.name(),
        };
        println!(
            "{label:<34}{b:>12.0}{:>16}{:>12}",
            ratio(&mut counted[i], b),
            ratio(&mut with[i], b)
        );
    }
    let (b, o) = (median(&mut all_base), median(&mut all_with));
    println!(
        "{:<34}{b:>12.0}{:>16}{:>12.3}",
        "open-close (every open reported)",
        "n/a",
        o / b
    );
    match &script {
        Some(s) => println!(
            "bpftrace count: {} syscalls:* tracepoints (the sensor's syscall set), counted in a kernel map",
            s.matches("tracepoint:").count()
        ),
        None => {
            println!("bpftrace: not installed (cargo xtask setup installs it); its column is n/a")
        }
    }
    println!("events lost during the runs: {lost}");
    Ok(())
}

/// `name` on PATH.
fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

/// A bpftrace program that counts, in a kernel map, every syscall the sensor handles, on the
/// per-syscall tracepoints: the cheapest way a monitor can see the same set, delivering
/// nothing to userspace.
fn count_script(attached: &[String]) -> anyhow::Result<String> {
    let events = Path::new("/sys/kernel/tracing/events");
    if !events.exists() {
        // bpftrace finds tracepoints through tracefs, which this kernel does not mount itself.
        let ok = Command::new("mount")
            .args(["-t", "tracefs", "nodev", "/sys/kernel/tracing"])
            .status()?
            .success();
        anyhow::ensure!(
            ok,
            "cannot mount tracefs on /sys/kernel/tracing for bpftrace"
        );
    }
    let mut probes: Vec<String> = attached
        .iter()
        .filter_map(|n| {
            let (dir, sys) = n
                .strip_prefix("enter_")
                .map(|s| ("sys_enter", s))
                .or_else(|| n.strip_prefix("exit_").map(|s| ("sys_exit", s)))?;
            let tp = format!("{dir}_{sys}");
            Path::new("/sys/kernel/tracing/events/syscalls")
                .join(&tp)
                .exists()
                .then(|| format!("tracepoint:syscalls:{tp}"))
        })
        .collect();
    probes.sort();
    probes.dedup();
    anyhow::ensure!(
        !probes.is_empty(),
        "no syscalls:* tracepoint matches the sensor's handlers ({})",
        attached.join(", ")
    );
    Ok(format!("{} {{ @[probe] = count(); }}", probes.join(",")))
}

/// A running bpftrace, attached (it printed `Attaching N probes...`).
struct Bpftrace(std::process::Child);

impl Bpftrace {
    fn start(bin: &Path, script: &str) -> anyhow::Result<Bpftrace> {
        use std::io::BufRead;
        let mut child = Command::new(bin)
            .args(["-e", script])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()?;
        let out = child.stdout.take().expect("piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if line.starts_with("Attaching") {
                    let _ = tx.send(());
                }
            }
        });
        let monitor = Bpftrace(child);
        if rx.recv_timeout(Duration::from_secs(60)).is_err() {
            monitor.stop();
            anyhow::bail!("bpftrace did not attach within 60 s: {script}");
        }
        // bpftrace prints the line just before it attaches the probes.
        std::thread::sleep(Duration::from_millis(500));
        Ok(monitor)
    }

    fn stop(mut self) {
        // SAFETY: kill on our own child's pid.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGINT) };
        if wait_within(&mut self.0, Duration::from_secs(10)).is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Waits up to `within` for `child` to exit.
fn wait_within(
    child: &mut std::process::Child,
    within: Duration,
) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + within;
    loop {
        if let Ok(Some(s)) = child.try_wait() {
            return Some(s);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The sustained kernel→userspace rate: generators open a watched file as fast as they can
/// for a fixed time while the reader drains; reports delivered events/s and losses.
pub fn throughput(exe: &Path, seconds: u64) -> anyhow::Result<()> {
    let scratch = std::env::temp_dir().join(format!("heir-bench-tp-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)?;
    let config = sensor::Config {
        watch: vec![watch::Rule::new(
            &format!("{}/", scratch.display()),
            watch::Access::Any,
        )],
        ring_bytes: 64 * 1024 * 1024,
        ..sensor::Config::default()
    };
    println!("kernel→userspace delivery (open events, {seconds} s per run)");
    println!(
        "{:<12}{:>14}{:>10}{:>14}",
        "generators", "events/s", "lost", "emitted"
    );
    for generators in [1usize, 2] {
        let s = Running::start(config.clone())?;
        let t = Instant::now();
        let deadline = t + Duration::from_secs(seconds);
        let mut children = Vec::new();
        for g in 0..generators {
            let path = scratch.join(format!("gen-{g}"));
            children.push(
                Command::new(exe)
                    .args(["bench", "loop", "open-close"])
                    .arg(&path)
                    .arg("--until-ms")
                    .arg(seconds.saturating_mul(1000).to_string())
                    .stdout(std::process::Stdio::null())
                    .spawn()?,
            );
        }
        for mut c in children {
            c.wait()?;
        }
        let elapsed = t.elapsed().max(deadline - t);
        std::thread::sleep(Duration::from_millis(200));
        let (c, received) = s.stop()?;
        let open = c.get(heir_abi::Kind::Open);
        println!(
            "{generators:<12}{:>14.0}{:>10}{:>14}",
            received as f64 / elapsed.as_secs_f64(),
            open.lost,
            open.emitted
        );
    }
    // Drain rate: fill the ring while the reader holds off, then time how fast it empties.
    let s = Running::start(config)?;
    s.hold.store(true, Ordering::Relaxed);
    let path = scratch.join("fill");
    let fill = 150_000u64;
    let out = Command::new(exe)
        .args(["bench", "loop", "open-close"])
        .arg(&path)
        .arg("--count")
        .arg(fill.to_string())
        .output()?;
    anyhow::ensure!(out.status.success(), "fill loop failed");
    let t = Instant::now();
    s.hold.store(false, Ordering::Relaxed);
    while s.received.load(Ordering::Relaxed) < fill && t.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_micros(200));
    }
    let drained = t.elapsed();
    let (c, received) = s.stop()?;
    println!(
        "reader drain rate from a full ring: {:.0} events/s ({received} events in {:.1} ms, {} lost while filling)",
        received as f64 / drained.as_secs_f64(),
        drained.as_secs_f64() * 1e3,
        c.get(heir_abi::Kind::Open).lost
    );
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(())
}

/// The `heir bench loop` child: runs a workload (for a count or a time) and prints ns/op.
pub fn loop_child(
    w: Workload,
    path: PathBuf,
    until_ms: Option<u64>,
    count: Option<u64>,
) -> anyhow::Result<()> {
    let (ns, n) = match until_ms {
        None => {
            let n = count.unwrap_or_else(|| w.iterations());
            (run_loop(w, n, &path)?, n)
        }
        Some(ms) => {
            let end = Instant::now() + Duration::from_millis(ms);
            let mut total = 0.0;
            let mut rounds = 0u32;
            while Instant::now() < end {
                total += run_loop(w, 10_000, &path)?;
                rounds += 1;
            }
            (total / f64::from(rounds.max(1)), u64::from(rounds) * 10_000)
        }
    };
    // ns per iteration, then iterations run.
    println!("{ns:.1} {n}");
    Ok(())
}
