//! The agent's health as `GET /v1/status`, the metrics and the terminal UI show it, and the
//! log line a sink's new drops deserve.

use crate::pipeline::Stats;
use crate::sensor::{Counters, Sensor};
use crate::sink::{Dropped, Drops};

/// The status from the sensor's counters, the pipeline's and the sinks' drops.
pub fn of(
    sensor: Option<&Sensor>,
    c: &Counters,
    rate: f64,
    stats: &Stats,
    drops: &Drops,
) -> heir_api::Status {
    let sinks: Vec<heir_api::SinkDrops> = drops
        .snapshot()
        .into_iter()
        .map(|(d, n)| heir_api::SinkDrops {
            component: d.component.to_owned(),
            reason: d.reason.name().to_owned(),
            dropped: n,
        })
        .collect();
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
            dropped: Stats::get(&stats.dropped) + sinks.iter().map(|s| s.dropped).sum::<u64>(),
            alerts: Stats::get(&stats.alerts),
        },
        sinks,
    }
}

/// Logs one line per sink counter that grew since the last call: a sysadmin reading the log
/// learns that a component is losing items, which one and why.
pub fn log_new_drops(drops: &Drops, seen: &mut Vec<(Dropped, u64)>) {
    let now = drops.snapshot();
    for (d, n) in &now {
        let before = seen
            .iter()
            .find(|(s, _)| s == d)
            .map_or(0, |(_, before)| *before);
        if *n > before {
            tracing::warn!(
                component = d.component,
                reason = d.reason.name(),
                "sink {d} dropped {} item(s), {n} since start",
                n - before
            );
        }
    }
    *seen = now;
}
