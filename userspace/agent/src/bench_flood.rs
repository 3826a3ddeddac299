//! `heir bench flood`: the real agent under a sustained syscall flood.
//!
//! A gateway nobody watches meets bursts nobody planned for. What matters then is that the
//! agent stays up, that its memory stays bounded, that every event it could not keep is
//! counted (in the kernel when the ring was full, in the pipeline when a queue was), that the
//! counters a sysadmin reads (metrics, the terminal UI) say so, and that once the flood is over
//! it keeps everything again. This runs `heir agent` as users do, floods a watched directory
//! with the throughput generators (`heir bench loop open-close`) and checks each of those.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};

/// What the flood was asked to do.
#[derive(Debug, Clone)]
pub struct Plan {
    pub seconds: u64,
    pub generators: usize,
    /// The agent's resident memory may not exceed this, in MiB, at any sample.
    pub rss_bound_mib: u64,
    /// The ring buffer's size, when not the agent's default (a small ring makes losses certain).
    pub ring_bytes: Option<u32>,
}

/// The counters a Prometheus scrape of the agent reports, as far as the flood reads them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Counters {
    /// Kernel: open events written to the ring, lost for a full ring, filtered in the kernel.
    emitted: u64,
    lost: u64,
    /// Kernel, every kind: what was written to the ring.
    emitted_all: u64,
    /// Userspace: records read from the ring, undecodable records, events a queue turned away.
    records: u64,
    undecodable: u64,
    dropped: u64,
}

impl Counters {
    fn parse(text: &str) -> Counters {
        let mut c = Counters::default();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let Some((name, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Ok(v) = value.parse::<f64>() else {
                continue;
            };
            let v = v as u64;
            match name {
                "heir_events_total{kind=\"open\"}" => c.emitted = v,
                "heir_events_lost_total{kind=\"open\"}" => c.lost = v,
                "heir_pipeline_records_total" => c.records = v,
                "heir_pipeline_undecodable_total" => c.undecodable = v,
                "heir_pipeline_dropped_total" => c.dropped = v,
                _ => {}
            }
            if name.starts_with("heir_events_total{") {
                c.emitted_all += v;
            }
        }
        c
    }
}

/// The agent under test: killed and reaped when dropped.
struct Agent {
    child: Child,
    metrics: SocketAddr,
    socket: PathBuf,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Agent {
    fn start(exe: &Path, dir: &Path, ring_bytes: Option<u32>) -> Result<Agent> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let metrics: SocketAddr = ([127, 0, 0, 1], port).into();
        let watched = dir.join("w");
        std::fs::create_dir_all(&watched)?;
        let config = dir.join("heir.toml");
        std::fs::write(
            &config,
            format!(
                "metrics_listen = \"{metrics}\"\n\n[sensor]\nwatch = [{{ prefix = \"{}/\", access = \"any\" }}]\n{}",
                watched.display(),
                ring_bytes.map_or(String::new(), |n| format!("ring_bytes = {n}\n"))
            ),
        )?;
        let mut child = Command::new(exe)
            .arg("agent")
            .arg("--config")
            .arg(&config)
            .arg("--data-dir")
            .arg(dir.join("data"))
            .stdout(Stdio::piped())
            .stderr(Stdio::from(std::fs::File::create(dir.join("agent.log"))?))
            .spawn()
            .context("starting heir agent")?;
        let stdout = child.stdout.take().context("the agent's stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let agent = Agent {
            child,
            metrics,
            socket: dir.join("data/api.sock"),
        };
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) if line == "ready" => Ok(agent),
            Ok(line) => bail!("heir agent's first line was `{line}`, not `ready`"),
            Err(_) => bail!(
                "heir agent did not say `ready` within 60 s (log: {})",
                dir.join("agent.log").display()
            ),
        }
    }

    fn alive(&mut self) -> Result<()> {
        match self.child.try_wait()? {
            None => Ok(()),
            Some(status) => bail!("heir agent exited during the flood: {status}"),
        }
    }

    /// Resident memory in MiB, from /proc.
    fn rss_mib(&self) -> Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .context("VmRSS in /proc/PID/status")?
            .parse()?;
        Ok(kib / 1024)
    }

    /// One scrape of the metrics endpoint, as Prometheus would do it.
    fn scrape(&self) -> Result<(Counters, String)> {
        let mut s = TcpStream::connect_timeout(&self.metrics, Duration::from_secs(5))?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        write!(
            s,
            "GET /metrics HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.metrics
        )?;
        let mut text = String::new();
        s.read_to_string(&mut text)?;
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .context("an HTTP response from the metrics endpoint")?;
        Ok((Counters::parse(&body), body))
    }
}

/// The terminal UI, run in a detached tmux session so its screen can be read.
struct Tui(String);

impl Tui {
    fn start(exe: &Path, socket: &Path) -> Option<Tui> {
        let name = format!("heir-flood-{}", std::process::id());
        let cmd = format!("{} tui --socket {}", exe.display(), socket.display());
        let ok = Command::new("tmux")
            .args([
                "new-session",
                "-d",
                "-x",
                "160",
                "-y",
                "48",
                "-s",
                &name,
                &cmd,
            ])
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(Tui(name))
    }

    /// The UI's sensor-health lines, as the sysadmin sees them.
    fn health(&self) -> Vec<String> {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &self.0])
            .output();
        let Ok(out) = out else { return Vec::new() };
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.contains("ev/s") || l.contains("dropped"))
            .map(|l| l.trim().to_owned())
            .collect()
    }
}

impl Drop for Tui {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.0])
            .status();
    }
}

fn generator(exe: &Path, path: &Path, until_ms: Option<u64>, count: Option<u64>) -> Result<Child> {
    let mut c = Command::new(exe);
    c.args(["bench", "loop", "open-close"]).arg(path);
    if let Some(ms) = until_ms {
        c.arg("--until-ms").arg(ms.to_string());
    }
    if let Some(n) = count {
        c.arg("--count").arg(n.to_string());
    }
    Ok(c.stdout(Stdio::piped()).spawn()?)
}

/// Iterations a finished generator ran (its second output field).
fn iterations(child: Child) -> Result<u64> {
    let out = child.wait_with_output()?;
    ensure!(out.status.success(), "a generator failed: {}", out.status);
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .nth(1)
        .context("a generator's iteration count")?
        .parse()
        .context("a generator's iteration count")
}

/// How long the kernel's counters must stand still before the flood's tail is known to be
/// counted: the agent reads them once a second, so a shorter quiet could be a stale reading.
const QUIET: Duration = Duration::from_millis(2_500);

/// Polls the metrics until the kernel's open counters have stood still for [`QUIET`] and the
/// pipeline has read everything the kernel wrote (every record accounted for), or `within`
/// passes; returns the last scrape and whether it settled.
fn settled(agent: &Agent, within: Duration) -> Result<(Counters, bool)> {
    let end = Instant::now() + within;
    let (mut last, _) = agent.scrape()?;
    let mut still_since = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(250));
        let (c, _) = agent.scrape()?;
        // Only the generators open the watched directory, so its counters go still when they
        // stop, whatever else the host runs.
        if (c.emitted, c.lost) != (last.emitted, last.lost) {
            still_since = Instant::now();
        }
        last = c;
        if still_since.elapsed() >= QUIET && c.records + c.undecodable >= c.emitted_all {
            return Ok((c, true));
        }
        if Instant::now() >= end {
            return Ok((c, false));
        }
    }
}

pub fn run(exe: &Path, plan: &Plan) -> Result<()> {
    ensure!(
        // SAFETY: geteuid has no preconditions.
        unsafe { libc::geteuid() } == 0,
        "heir bench flood loads the probes and needs root"
    );
    let dir = std::env::temp_dir().join(format!("heir-flood-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = flood(exe, &dir, plan);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn flood(exe: &Path, dir: &Path, plan: &Plan) -> Result<()> {
    let mut agent = Agent::start(exe, dir, plan.ring_bytes)?;
    let tui = Tui::start(exe, &agent.socket);
    let (before, _) = settled(&agent, Duration::from_secs(10))?;
    let rss_start = agent.rss_mib()?;
    println!(
        "flood: {} generator(s) opening a watched file for {} s against `heir agent` (default ring, pipeline and sinks)",
        plan.generators, plan.seconds
    );
    let start = Instant::now();
    let children = (0..plan.generators)
        .map(|g| {
            generator(
                exe,
                &dir.join(format!("w/gen-{g}")),
                Some(plan.seconds * 1000),
                None,
            )
        })
        .collect::<Result<Vec<_>>>()?;
    let mut rss_peak = rss_start;
    let mut tui_during = Vec::new();
    let mut last = before;
    let mut t_last = start;
    println!(
        "{:>5} {:>12} {:>12} {:>12} {:>8}",
        "s", "opens/s", "kept/s", "lost/s", "RSS MiB"
    );
    while start.elapsed() < Duration::from_secs(plan.seconds) {
        std::thread::sleep(Duration::from_secs(5).min(
            Duration::from_secs(plan.seconds).saturating_sub(start.elapsed())
                + Duration::from_millis(10),
        ));
        agent.alive()?;
        let rss = agent.rss_mib()?;
        rss_peak = rss_peak.max(rss);
        let (c, _) = agent.scrape()?;
        let dt = t_last.elapsed().as_secs_f64();
        println!(
            "{:>5.0} {:>12.0} {:>12.0} {:>12.0} {:>8}",
            start.elapsed().as_secs_f64(),
            (c.emitted + c.lost).saturating_sub(last.emitted + last.lost) as f64 / dt,
            c.emitted.saturating_sub(last.emitted) as f64 / dt,
            c.lost.saturating_sub(last.lost) as f64 / dt,
            rss
        );
        (last, t_last) = (c, Instant::now());
        if let Some(t) = &tui {
            tui_during = t.health();
        }
    }
    let offered: u64 = children
        .into_iter()
        .map(iterations)
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .sum();
    let secs = start.elapsed().as_secs_f64();
    agent.alive()?;
    let (after, accounted) = settled(&agent, Duration::from_secs(30))?;
    rss_peak = rss_peak.max(agent.rss_mib()?);
    let d = |a: u64, b: u64| a.saturating_sub(b);
    let (kept, lost) = (d(after.emitted, before.emitted), d(after.lost, before.lost));
    println!(
        "opens offered by the generators: {offered} ({:.2} M/s)",
        offered as f64 / secs / 1e6
    );
    println!(
        "kernel: {kept} open events kept ({:.2} M/s), {lost} lost to a full ring ({:.1}%), {} counted in all",
        kept as f64 / secs / 1e6,
        100.0 * lost as f64 / (kept + lost).max(1) as f64,
        kept + lost
    );
    println!(
        "pipeline: {} records read, {} undecodable, {} dropped by a full queue; every record the kernel wrote was read: {accounted}",
        d(after.records, before.records),
        d(after.undecodable, before.undecodable),
        d(after.dropped, before.dropped)
    );
    println!(
        "agent RSS: {rss_start} MiB at start, {rss_peak} MiB at peak (bound {} MiB)",
        plan.rss_bound_mib
    );
    if !tui_during.is_empty() {
        println!("terminal UI during the flood:");
        for l in &tui_during {
            println!("  | {l}");
        }
    }

    // After the flood: a paced load the ring can carry must arrive whole.
    // Bursts well inside the ring: an eighth of it, at a few hundred bytes per record.
    let calm = 10u64;
    let ring = u64::from(plan.ring_bytes.unwrap_or(16 << 20));
    let per = (ring / 8 / 512).clamp(16, 2_000);
    for i in 0..calm {
        let g = generator(exe, &dir.join(format!("w/calm-{i}")), None, Some(per))?;
        iterations(g)?;
        std::thread::sleep(Duration::from_millis(200));
    }
    let (end, accounted_after) = settled(&agent, Duration::from_secs(30))?;
    let calm_lost = d(end.lost, after.lost);
    let calm_kept = d(end.emitted, after.emitted);
    println!(
        "after the flood: {calm_kept} of {} paced opens kept, {calm_lost} lost, {} dropped, all read: {accounted_after}",
        calm * per,
        d(end.dropped, after.dropped)
    );
    if let Some(t) = &tui {
        for l in t.health() {
            println!("  | {l}");
        }
    }

    // What the flood must show; each failure names what broke.
    ensure!(
        kept + lost >= offered,
        "the generators made {offered} opens but the kernel counted {} kept or lost",
        kept + lost
    );
    ensure!(
        accounted,
        "the pipeline did not read every record the kernel wrote within 30 s"
    );
    ensure!(
        rss_peak <= plan.rss_bound_mib,
        "the agent's RSS peaked at {rss_peak} MiB, above the {} MiB bound",
        plan.rss_bound_mib
    );
    ensure!(
        calm_lost == 0 && calm_kept >= calm * per && accounted_after,
        "after the flood the agent did not return to 0 loss: {calm_lost} lost, {calm_kept} of {} kept",
        calm * per
    );
    println!("flood: agent alive, RSS within bound, every lost event counted, 0 loss after");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_come_from_the_metric_names_the_agent_serves() {
        let text = "# HELP heir_events Kernel events emitted, by kind.\n\
            heir_events_total{kind=\"open\"} 10\n\
            heir_events_total{kind=\"exec\"} 5\n\
            heir_events_lost_total{kind=\"open\"} 3\n\
            heir_pipeline_records_total 14\n\
            heir_pipeline_undecodable_total 1\n\
            heir_pipeline_dropped_total 2\n";
        let c = Counters::parse(text);
        assert_eq!(
            c,
            Counters {
                emitted: 10,
                lost: 3,
                emitted_all: 15,
                records: 14,
                undecodable: 1,
                dropped: 2
            }
        );
    }
}
