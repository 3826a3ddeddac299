//! Exfiltration: a device sending far more data out of the hospital than it usually does.
//!
//! Per device, outbound bytes to destinations outside the internal networks are summed per
//! window and compared with an exponentially weighted baseline learnt from earlier windows.
//! The alert fires the moment the running sum crosses the threshold (not at window end), and a
//! window that alerted does not feed the baseline, so a slow exfiltration cannot teach the
//! detector that it is normal. Baselines are saved so a restart keeps them.

use std::collections::HashMap;
use std::net::IpAddr;

use heir_model::{Alert, Category, Event, EventKind, Severity};
use serde::{Deserialize, Serialize};

use crate::util::{Cidr, default_internal, in_any, secs_to_ns};
use crate::{Detector, Kind, Spec, StateError};

const SPEC: Spec = Spec {
    rule: "net.exfiltration",
    category: Category::Exfiltration,
    owasp_iot: "I6",
    enisa: "Nefarious activity/abuse: data breach (exfiltration)",
    attack: "T1048",
};

/// Exfiltration settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub enabled: bool,
    pub window_secs: u64,
    /// Windows observed before a device's baseline is trusted.
    pub warmup_windows: u32,
    /// Outbound bytes above `factor` × baseline are suspicious…
    pub factor: f64,
    /// …and never below this many bytes, so tiny baselines do not alert on a software update.
    pub min_bytes: u64,
    /// Weight of the newest window in the baseline (0..1).
    pub alpha: f64,
    /// Networks that are inside the hospital.
    pub internal: Vec<Cidr>,
    pub max_devices: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            enabled: true,
            window_secs: 300,
            warmup_windows: 12,
            factor: 10.0,
            min_bytes: 50_000_000,
            alpha: 0.1,
            internal: default_internal(),
            max_devices: 50_000,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Baseline {
    mean: f64,
    windows: u32,
}

#[derive(Default)]
struct Current {
    start: u64,
    bytes: u64,
    alerted: bool,
    top: HashMap<IpAddr, u64>,
}

pub struct Exfiltration {
    cfg: Config,
    baselines: HashMap<IpAddr, Baseline>,
    current: HashMap<IpAddr, Current>,
}

impl Exfiltration {
    pub fn new(cfg: Config) -> Self {
        Self {
            cfg,
            baselines: HashMap::new(),
            current: HashMap::new(),
        }
    }

    fn close(&mut self, device: IpAddr, c: &Current) {
        let b = self.baselines.entry(device).or_default();
        if c.alerted {
            return;
        }
        let x = c.bytes as f64;
        b.mean = if b.windows == 0 {
            x
        } else {
            self.cfg.alpha * x + (1.0 - self.cfg.alpha) * b.mean
        };
        b.windows = b.windows.saturating_add(1);
    }

    /// Closes windows that ended before `now`, counting empty windows in between as zero.
    fn roll(&mut self, device: IpAddr, now: u64) {
        let w = secs_to_ns(self.cfg.window_secs).max(1);
        let Some(c) = self.current.get(&device) else {
            return;
        };
        if now < c.start.saturating_add(w) {
            return;
        }
        let c = self.current.remove(&device).expect("present");
        self.close(device, &c);
        let empty = ((now - c.start) / w)
            .saturating_sub(1)
            .min(u64::from(self.cfg.warmup_windows) * 4);
        for _ in 0..empty {
            self.close(device, &Current::default());
        }
    }
}

impl Detector for Exfiltration {
    fn name(&self) -> &'static str {
        "exfiltration"
    }

    fn kinds(&self) -> &'static [Kind] {
        &[Kind::Flow]
    }

    fn inspect(&mut self, ev: &Event, out: &mut Vec<Alert>) {
        let EventKind::Flow {
            src,
            dst,
            bytes_out,
            ..
        } = &ev.kind
        else {
            return;
        };
        if !in_any(&self.cfg.internal, *src) || in_any(&self.cfg.internal, *dst) {
            return;
        }
        let now = ev.ts.as_nanos();
        self.roll(*src, now);
        if self.current.len() >= self.cfg.max_devices && !self.current.contains_key(src) {
            return;
        }
        let w = secs_to_ns(self.cfg.window_secs).max(1);
        let c = self.current.entry(*src).or_insert_with(|| Current {
            start: now - now % w,
            ..Current::default()
        });
        c.bytes = c.bytes.saturating_add(*bytes_out);
        if c.top.len() < 256 || c.top.contains_key(dst) {
            let t = c.top.entry(*dst).or_default();
            *t = t.saturating_add(*bytes_out);
        }
        let Some(b) = self.baselines.get(src) else {
            return;
        };
        if b.windows < self.cfg.warmup_windows || c.alerted {
            return;
        }
        let limit = (b.mean * self.cfg.factor).max(self.cfg.min_bytes as f64);
        if (c.bytes as f64) <= limit {
            return;
        }
        c.alerted = true;
        let ratio = c.bytes as f64 / b.mean.max(1.0);
        let mut top: Vec<(&IpAddr, &u64)> = c.top.iter().collect();
        top.sort_by(|a, b| b.1.cmp(a.1));
        let mut a = SPEC.alert(
            ev.ts,
            format!(
                "{src} sent {} out of the network, {ratio:.0}× its baseline",
                human(c.bytes)
            ),
            Severity::High,
            (0.6 + (ratio.log10() / 10.0)).min(0.95) as f32,
        );
        a.device = Some(src.to_string());
        a.src_ip = Some(*src);
        a.dst_ip = top.first().map(|(ip, _)| **ip);
        a.evidence.push(format!(
            "bytes_out {} in this {}s window, {ratio:.0}× baseline {}",
            human(c.bytes),
            self.cfg.window_secs,
            human(b.mean as u64)
        ));
        a.evidence.push(format!(
            "top destinations: {}",
            top.iter()
                .take(3)
                .map(|(ip, n)| format!("{ip} ({})", human(**n)))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        out.push(a);
    }

    fn tick(&mut self, now: heir_model::Timestamp, _out: &mut Vec<Alert>) {
        let devices: Vec<IpAddr> = self.current.keys().copied().collect();
        for d in devices {
            self.roll(d, now.as_nanos());
        }
    }

    fn save(&self) -> Option<Vec<u8>> {
        // Sorted, so the same learnt state always saves to the same bytes.
        let sorted: std::collections::BTreeMap<&IpAddr, &Baseline> =
            self.baselines.iter().collect();
        postcard::to_allocvec(&sorted).ok()
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), StateError> {
        self.baselines = postcard::from_bytes(state).map_err(|source| StateError::Decode {
            detector: self.name().into(),
            source,
        })?;
        Ok(())
    }
}

pub fn human(b: u64) -> String {
    match b {
        b if b >= 1 << 30 => format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detectors::fixtures::*;

    fn day(d: &mut Exfiltration, windows: u64, bytes: u64) -> Vec<Alert> {
        // A monitor uploading its telemetry: ~bytes per 5-minute window, in 10 flows.
        let events: Vec<_> = (0..windows * 10)
            .map(|i| {
                session(
                    i * 30_000,
                    "10.9.0.77",
                    40000,
                    "203.0.113.10",
                    443,
                    bytes / 10,
                    4_000,
                )
            })
            .collect();
        run(d, &events)
    }

    #[test]
    fn bulk_upload_far_above_baseline_fires_once_and_survives_restart() {
        let mut d = Exfiltration::new(Config::default());
        assert!(
            day(&mut d, 24, 20_000_000).is_empty(),
            "steady telemetry is quiet"
        );
        let saved = d.save().unwrap();
        let mut d = Exfiltration::new(Config::default());
        d.restore(&saved).unwrap();
        // 800 MB to a new host in the next window.
        let events: Vec<_> = (0..40)
            .map(|i| {
                session(
                    24 * 300_000 + i * 1000,
                    "10.9.0.77",
                    41000,
                    "198.51.100.99",
                    443,
                    20_000_000,
                    3_000,
                )
            })
            .collect();
        let alerts = run(&mut d, &events);
        assert_eq!(alerts.len(), 1, "{alerts:#?}");
        assert!(
            alerts[0].evidence[0].contains("× baseline"),
            "{:?}",
            alerts[0].evidence
        );
        assert_eq!(alerts[0].dst_ip, Some(ip("198.51.100.99")));
        assert_complete(&alerts);
        assert!(d.restore(b"\xff\xff\xff").is_err());
    }

    #[test]
    fn internal_transfers_and_warmup_stay_quiet() {
        let mut d = Exfiltration::new(Config::default());
        // Big C-STORE to the PACS: internal.
        let events: Vec<_> = (0..100)
            .map(|i| {
                session(
                    i * 1000,
                    "10.9.0.77",
                    40000,
                    "10.9.0.5",
                    104,
                    50_000_000,
                    1_000,
                )
            })
            .collect();
        assert!(run(&mut d, &events).is_empty());
        // Big upload before any baseline exists: warm-up.
        let mut d = Exfiltration::new(Config::default());
        assert!(day(&mut d, 2, 900_000_000).is_empty());
    }
}
