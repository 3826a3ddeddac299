//! `heir monitor` (the kernel's decoded events, live) and `heir replay` (a recording through
//! the same pipeline and detectors).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use heir_agent::pipeline::{self, Each, JsonLines, Stages, Stats};
use heir_agent::proctable::{Lookup, ProcessTable};
use heir_agent::sensor::{Counters, Sensor};
use heir_model::Event;
use tokio::sync::mpsc;

use super::{load_config, shutdown_signal};

#[derive(clap::Args)]
pub struct Args {
    /// One JSON object per line (stable field names) instead of text.
    #[arg(long)]
    json: bool,
    #[arg(long)]
    config: Option<PathBuf>,
    /// Summary interval in seconds.
    #[arg(long, default_value_t = 5)]
    every: u64,
}

pub async fn monitor(args: Args) -> Result<()> {
    let config = load_config(args.config.as_ref())?;
    let mut sensor = Sensor::start(&config.sensor, std::process::id())?;
    for f in &sensor.failed {
        eprintln!(
            "heir: probe {} not attached ({}); the others run on",
            f.program, f.reason
        );
    }
    let reader = sensor.reader()?;
    let stats = Arc::new(Stats::default());
    let (tx, rx) = mpsc::channel(pipeline::QUEUE_BATCHES);
    let source = tokio::spawn(pipeline::kernel_source(reader, tx, stats.clone()));
    let stages = Stages {
        control: None,
        table: ProcessTable::from_proc(),
        engine: None,
        ticks: pipeline::Ticks::Wall,
        stats: stats.clone(),
    };
    let mut out = JsonLines::stdout();
    let json = args.json;
    let print = move |batch: Vec<Event>| {
        for e in &batch {
            let r = if json { out.write(e) } else { print_text(e) };
            if r.is_err() {
                // stdout closed (e.g. piped into head): stop quietly.
                std::process::exit(0);
            }
        }
    };
    let pipeline = tokio::spawn(stages.run(rx, Each(print, |_| {})));
    eprintln!(
        "heir monitor: {} probes attached{}",
        sensor.attached.len(),
        if sensor.failed.is_empty() {
            String::new()
        } else {
            format!(", {} failed", sensor.failed.len())
        }
    );
    let mut tick = tokio::time::interval(Duration::from_secs(args.every.max(1)));
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
    // Stopping the source ends the pipeline once it has printed what it holds.
    source.abort();
    let _ = pipeline.await;
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

pub async fn replay(file: PathBuf) -> Result<()> {
    let config = heir_agent::Config::default();
    let stats = Arc::new(Stats::default());
    let (tx, rx) = mpsc::channel(pipeline::QUEUE_BATCHES);
    let path = file.clone();
    let reading = tokio::task::spawn_blocking(move || {
        let mut bad = Vec::new();
        let n = pipeline::replay_source(&path, tx, &mut bad);
        (n, bad)
    });
    let stages = Stages {
        control: None,
        table: ProcessTable::new(Lookup::None),
        engine: Some(heir_agent::runtime::engine(&config, None)),
        ticks: pipeline::Ticks::EventTime,
        stats: stats.clone(),
    };
    let mut out = JsonLines::stdout();
    stages
        .run(
            rx,
            Each(
                |_| {},
                move |a| {
                    let _ = out.write(&a);
                },
            ),
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
