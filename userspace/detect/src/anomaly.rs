//! Streaming anomaly detection per device with Half-Space Trees (Tan, Ting & Liu, IJCAI 2011).
//!
//! Each device's activity is summarised per window into a feature vector (bytes and packets
//! each way, flows, distinct peers and ports, transport mix, syscall mix). Features are
//! scaled relative to the device's own baseline (log ratio), so one random forest structure serves
//! every device and only the per-device node masses are stored (2 × 16-bit per node). A window
//! is scored against the mass profile learnt from the previous ψ windows (reference), then
//! added to the latest profile; every ψ windows latest becomes reference. Low mass means rare.
//!
//! An alert needs three things: the device is past warm-up, its score is far below its own
//! score history (robust z-score), and at least one feature is far from its own baseline, which
//! is also what the alert names ("bytes_out 40× baseline"). Model state serialises with
//! postcard, so a restart resumes instead of relearning.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use heir_model::{Alert, Category, Event, EventKind, Severity, Timestamp};
use serde::{Deserialize, Serialize};

use crate::util::{Cidr, Device, default_internal, in_any, secs_to_ns};
use crate::{Detector, Kind, Spec, StateError};

const SPEC: Spec = Spec {
    rule: "ml.device_anomaly",
    category: Category::Anomaly,
    owasp_iot: "I10",
    enisa: "Nefarious activity/abuse: unusual device behaviour",
    attack: "T1071",
};

/// Feature names, in vector order.
pub const FEATURES: [&str; 16] = [
    "bytes_out",
    "bytes_in",
    "packets_out",
    "packets_in",
    "flows",
    "distinct_peers",
    "distinct_ports",
    "tcp_flows",
    "udp_flows",
    "other_flows",
    "execs",
    "opens",
    "connects",
    "accepts",
    "file_changes",
    "privileged_calls",
];
const N: usize = FEATURES.len();

/// Anomaly-detection settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub enabled: bool,
    /// Seconds per feature window.
    pub window_secs: u64,
    /// Trees in the forest.
    pub trees: usize,
    /// Depth of each tree.
    pub depth: u32,
    /// Windows per mass profile (ψ).
    pub profile_windows: u16,
    /// Windows a device must have been seen before it can alert (≥ profile_windows).
    pub warmup_windows: u32,
    /// How far below its own score history (robust z) a window must be.
    pub z_threshold: f64,
    /// Minimum ratio to baseline for a feature to be named as the cause.
    pub min_feature_ratio: f64,
    /// Internal networks: flows are attributed to the internal end.
    pub internal: Vec<Cidr>,
    pub max_devices: usize,
    /// Seed of the forest structure; fixed so saved state stays valid across restarts.
    pub seed: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            enabled: true,
            window_secs: 60,
            trees: 32,
            depth: 6,
            profile_windows: 64,
            warmup_windows: 96,
            z_threshold: 4.0,
            min_feature_ratio: 5.0,
            internal: default_internal(),
            max_devices: 4_096,
            seed: 0x6865_6972_2d68_7374,
        }
    }
}

struct Tree {
    dims: Vec<u8>,
    splits: Vec<f32>,
}

fn xorshift(s: &mut u64) -> u64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}

fn unit(s: &mut u64) -> f64 {
    (xorshift(s) >> 11) as f64 / (1u64 << 53) as f64
}

impl Tree {
    /// Random half-space splits over a randomly perturbed work space, as in the paper.
    fn new(depth: u32, seed: &mut u64) -> Tree {
        let mut lo = [0.0f64; N];
        let mut hi = [0.0f64; N];
        for q in 0..N {
            let s = unit(seed);
            let r = 2.0 * s.max(1.0 - s);
            lo[q] = s - r;
            hi[q] = s + r;
        }
        let internal = (1usize << depth) - 1;
        let mut dims = vec![0u8; internal];
        let mut splits = vec![0f32; internal];
        fn build(
            node: usize,
            internal: usize,
            lo: &mut [f64; N],
            hi: &mut [f64; N],
            dims: &mut [u8],
            splits: &mut [f32],
            seed: &mut u64,
        ) {
            if node >= internal {
                return;
            }
            let q = (xorshift(seed) % N as u64) as usize;
            let mid = (lo[q] + hi[q]) / 2.0;
            dims[node] = q as u8;
            splits[node] = mid as f32;
            let old_hi = hi[q];
            hi[q] = mid;
            build(2 * node + 1, internal, lo, hi, dims, splits, seed);
            hi[q] = old_hi;
            let old_lo = lo[q];
            lo[q] = mid;
            build(2 * node + 2, internal, lo, hi, dims, splits, seed);
            lo[q] = old_lo;
        }
        build(0, internal, &mut lo, &mut hi, &mut dims, &mut splits, seed);
        Tree { dims, splits }
    }
}

/// Per-device learnt state.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Model {
    reference: Vec<u16>,
    latest: Vec<u16>,
    in_latest: u16,
    windows: u32,
    /// Robust running statistics of log(score): EWMA mean and mean absolute deviation.
    score_mean: f64,
    score_mad: f64,
    /// EWMA of each raw feature.
    baseline: Vec<f64>,
}

#[derive(Default)]
struct Window {
    start: u64,
    v: [f64; N],
    peers: HashSet<IpAddr>,
    ports: HashSet<u16>,
}

#[derive(Serialize, Deserialize)]
struct Saved {
    seed: u64,
    trees: usize,
    depth: u32,
    models: Vec<(Device, Model)>,
}

pub struct Anomaly {
    cfg: Config,
    forest: Vec<Tree>,
    nodes: usize,
    models: HashMap<Device, Model>,
    windows: HashMap<Device, Window>,
}

impl Anomaly {
    pub fn new(cfg: Config) -> Self {
        let depth = cfg.depth.clamp(1, 12);
        let trees = cfg.trees.clamp(1, 64);
        let mut seed = cfg.seed | 1;
        let forest = (0..trees).map(|_| Tree::new(depth, &mut seed)).collect();
        let nodes = (1usize << (depth + 1)) - 1;
        Self {
            cfg: Config {
                depth,
                trees,
                ..cfg
            },
            forest,
            nodes,
            models: HashMap::new(),
            windows: HashMap::new(),
        }
    }

    /// Position of each feature relative to the device's own baseline: 0.5 at baseline, a
    /// quarter of the unit per doubling. Relative scaling keeps every device's normal cluster
    /// in the same place, which is what lets one forest structure serve all of them.
    fn normalise(v: &[f64; N], baseline: &[f64]) -> [f64; N] {
        let mut x = [0.0; N];
        for q in 0..N {
            x[q] = (0.5 + 0.25 * ((v[q].max(0.0) + 1.0) / (baseline[q].max(0.0) + 1.0)).log2())
                .clamp(-2.0, 3.0);
        }
        x
    }

    /// Scores `x` against the reference profile and records it in the latest one.
    fn score_and_learn(&self, m: &mut Model, x: &[f64; N]) -> f64 {
        let depth = self.cfg.depth;
        let internal = (1usize << depth) - 1;
        let limit = (f64::from(self.cfg.profile_windows) * 0.1).max(1.0) as u16;
        let mut score = 0.0;
        for (t, tree) in self.forest.iter().enumerate() {
            let base = t * self.nodes;
            let mut node = 0usize;
            let mut d = 0u32;
            let mut scored = false;
            loop {
                m.latest[base + node] = m.latest[base + node].saturating_add(1);
                let r = m.reference[base + node];
                if !scored && (d == depth || r < limit) {
                    score += f64::from(r) * f64::from(1u32 << d);
                    scored = true;
                }
                if node >= internal {
                    break;
                }
                node = if x[tree.dims[node] as usize] < f64::from(tree.splits[node]) {
                    2 * node + 1
                } else {
                    2 * node + 2
                };
                d += 1;
            }
        }
        m.in_latest += 1;
        if m.in_latest >= self.cfg.profile_windows {
            m.reference = std::mem::replace(&mut m.latest, vec![0; m.reference.len()]);
            m.in_latest = 0;
        }
        score
    }

    fn close(&mut self, device: Device, w: Window, out: &mut Vec<Alert>) {
        let mut v = w.v;
        v[5] = w.peers.len() as f64;
        v[6] = w.ports.len() as f64;
        let total = self.forest.len() * self.nodes;
        if !self.models.contains_key(&device) && self.models.len() >= self.cfg.max_devices {
            return;
        }
        let mut m = self.models.remove(&device).unwrap_or_else(|| Model {
            reference: vec![0; total],
            latest: vec![0; total],
            in_latest: 0,
            windows: 0,
            score_mean: 0.0,
            score_mad: 0.0,
            baseline: v.to_vec(),
        });
        let x = Self::normalise(&v, &m.baseline);
        let score = self.score_and_learn(&mut m, &x);
        let s = (score + 1.0).ln();
        m.windows = m.windows.saturating_add(1);
        let ready = m.windows
            > self
                .cfg
                .warmup_windows
                .max(u32::from(self.cfg.profile_windows));
        let z = if m.score_mad > 0.0 {
            (m.score_mean - s) / (1.4826 * m.score_mad + 0.05)
        } else {
            0.0
        };
        let mut attribution: Vec<(usize, f64)> = (0..N)
            .map(|q| (q, (v[q] + 1.0) / (m.baseline[q] + 1.0)))
            .filter(|(_, r)| {
                *r >= self.cfg.min_feature_ratio || *r <= 1.0 / self.cfg.min_feature_ratio
            })
            .collect();
        attribution.sort_by(|a, b| b.1.ln().abs().total_cmp(&a.1.ln().abs()));
        let anomalous = ready && z >= self.cfg.z_threshold && !attribution.is_empty();
        if anomalous {
            let mut a = SPEC.alert(
                Timestamp::from_nanos(w.start.saturating_add(secs_to_ns(self.cfg.window_secs))),
                format!("Unusual behaviour of {device}"),
                Severity::Medium,
                (0.5 + z / 40.0).min(0.9) as f32,
            );
            a.device = Some(device.to_string());
            a.src_ip = device.ip();
            for (q, r) in attribution.iter().take(4) {
                let name = FEATURES[*q];
                a.evidence.push(if *r >= 1.0 {
                    format!(
                        "{name} {r:.0}× baseline ({:.0} vs {:.0})",
                        v[*q], m.baseline[*q]
                    )
                } else {
                    format!(
                        "{name} {:.0}× below baseline ({:.0} vs {:.0})",
                        1.0 / r,
                        v[*q],
                        m.baseline[*q]
                    )
                });
            }
            a.evidence.push(format!("half-space-trees mass score {score:.0}, {z:.1} deviations below this device's usual"));
            out.push(a);
        } else {
            // Only normal windows teach the baselines, so an ongoing attack is not learnt.
            let alpha = if m.windows <= 8 {
                1.0 / f64::from(m.windows)
            } else {
                0.05
            };
            for (b, x) in m.baseline.iter_mut().zip(v) {
                *b += alpha * (x - *b);
            }
            if m.windows == 1 {
                m.score_mean = s;
            } else {
                let dev = (s - m.score_mean).abs();
                m.score_mean += alpha * (s - m.score_mean);
                m.score_mad += alpha * (dev - m.score_mad);
            }
        }
        self.models.insert(device, m);
    }

    /// The devices an event belongs to: both internal ends of a flow, or this host.
    fn devices_of(&self, ev: &Event) -> [Option<(Device, bool)>; 2] {
        match &ev.kind {
            EventKind::Flow { src, dst, .. } | EventKind::Protocol { src, dst, .. } => [
                in_any(&self.cfg.internal, *src).then_some((Device::Ip(*src), true)),
                in_any(&self.cfg.internal, *dst).then_some((Device::Ip(*dst), false)),
            ],
            _ => [Some((Device::Local, true)), None],
        }
    }

    fn roll(&mut self, now: u64, out: &mut Vec<Alert>) {
        let w = secs_to_ns(self.cfg.window_secs).max(1);
        let due: Vec<Device> = self
            .windows
            .iter()
            .filter(|(_, x)| now >= x.start.saturating_add(w))
            .map(|(k, _)| *k)
            .collect();
        for d in due {
            if let Some(x) = self.windows.remove(&d) {
                self.close(d, x, out);
            }
        }
    }
}

impl Detector for Anomaly {
    fn name(&self) -> &'static str {
        "anomaly"
    }

    fn kinds(&self) -> &'static [Kind] {
        &[
            Kind::Flow,
            Kind::Exec,
            Kind::Open,
            Kind::Connect,
            Kind::Accept,
            Kind::Rename,
            Kind::Unlink,
            Kind::CredChange,
            Kind::Capset,
            Kind::Module,
            Kind::Ptrace,
        ]
    }

    fn inspect(&mut self, ev: &Event, out: &mut Vec<Alert>) {
        let now = ev.ts.as_nanos();
        let w = secs_to_ns(self.cfg.window_secs).max(1);
        for (device, outbound) in self.devices_of(ev).into_iter().flatten() {
            if let Some(cur) = self.windows.get(&device)
                && now >= cur.start.saturating_add(w)
            {
                let cur = self.windows.remove(&device).expect("present");
                self.close(device, cur, out);
            }
            if !self.windows.contains_key(&device) && self.windows.len() >= self.cfg.max_devices {
                continue;
            }
            let win = self.windows.entry(device).or_insert_with(|| Window {
                start: now - now % w,
                ..Window::default()
            });
            let v = &mut win.v;
            match &ev.kind {
                EventKind::Flow {
                    src,
                    dst,
                    dst_port,
                    transport,
                    bytes_out,
                    bytes_in,
                    packets_out,
                    packets_in,
                    ..
                } => {
                    let (bo, bi, po, pi, peer) = if outbound {
                        (*bytes_out, *bytes_in, *packets_out, *packets_in, *dst)
                    } else {
                        (*bytes_in, *bytes_out, *packets_in, *packets_out, *src)
                    };
                    v[0] += bo as f64;
                    v[1] += bi as f64;
                    v[2] += po as f64;
                    v[3] += pi as f64;
                    v[4] += 1.0;
                    match transport {
                        heir_model::event::Transport::Tcp => v[7] += 1.0,
                        heir_model::event::Transport::Udp => v[8] += 1.0,
                        _ => v[9] += 1.0,
                    }
                    if win.peers.len() < 65_536 {
                        win.peers.insert(peer);
                    }
                    if win.ports.len() < 65_536 {
                        win.ports.insert(*dst_port);
                    }
                }
                EventKind::Exec { .. } => v[10] += 1.0,
                EventKind::Open { .. } => v[11] += 1.0,
                EventKind::Connect { .. } => v[12] += 1.0,
                EventKind::Accept { .. } => v[13] += 1.0,
                EventKind::Rename { .. } | EventKind::Unlink { .. } => v[14] += 1.0,
                EventKind::CredChange { .. }
                | EventKind::Capset { .. }
                | EventKind::Module { .. }
                | EventKind::Ptrace { .. } => v[15] += 1.0,
                _ => {}
            }
        }
    }

    fn tick(&mut self, now: Timestamp, out: &mut Vec<Alert>) {
        self.roll(now.as_nanos(), out);
    }

    fn save(&self) -> Option<Vec<u8>> {
        let saved = Saved {
            seed: self.cfg.seed,
            trees: self.cfg.trees,
            depth: self.cfg.depth,
            models: {
                let mut m: Vec<(Device, Model)> =
                    self.models.iter().map(|(k, v)| (*k, v.clone())).collect();
                m.sort_by_key(|a| a.0);
                m
            },
        };
        postcard::to_allocvec(&saved).ok()
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), StateError> {
        let saved: Saved = postcard::from_bytes(state).map_err(|source| StateError::Decode {
            detector: "anomaly".into(),
            source,
        })?;
        if saved.seed != self.cfg.seed
            || saved.trees != self.cfg.trees
            || saved.depth != self.cfg.depth
        {
            // A different forest shape makes the stored masses meaningless: start over.
            tracing::warn!("anomaly model shape changed (seed, trees or depth): relearning");
            return Ok(());
        }
        let total = self.forest.len() * self.nodes;
        self.models = saved
            .models
            .into_iter()
            .filter(|(_, m)| {
                m.reference.len() == total && m.latest.len() == total && m.baseline.len() == N
            })
            .collect();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detectors::fixtures::*;

    /// One minute of a monitor's normal life: a handful of flows with ±30% noise.
    fn normal_minute(minute: u64, seed: &mut u64) -> Vec<Event> {
        let flows = 4 + xorshift(seed) % 3;
        (0..flows)
            .map(|i| {
                let noise = 0.7 + 0.6 * unit(seed);
                session(
                    minute * 60_000 + i * 7_000,
                    "10.9.0.77",
                    40000 + i as u16,
                    "10.9.0.5",
                    2575 + (i % 2) as u16 * 1000,
                    (30_000.0 * noise) as u64,
                    (4_000.0 * noise) as u64,
                )
            })
            .collect()
    }

    fn feed(d: &mut Anomaly, events: &[Event]) -> Vec<Alert> {
        let mut out = Vec::new();
        for e in events {
            d.inspect(e, &mut out);
        }
        out
    }

    #[test]
    fn quiet_on_noisy_normal_then_names_the_feature_that_exploded() {
        let mut d = Anomaly::new(Config::default());
        let mut seed = 7;
        let mut alerts = Vec::new();
        for m in 0..400 {
            alerts.extend(feed(&mut d, &normal_minute(m, &mut seed)));
        }
        assert!(
            alerts.is_empty(),
            "false positives on normal traffic: {alerts:#?}"
        );
        // Restart: the model must come back without relearning.
        let saved = d.save().unwrap();
        let mut d = Anomaly::new(Config::default());
        d.restore(&saved).unwrap();
        let mut attack = normal_minute(400, &mut seed);
        attack.push(session(
            400 * 60_000 + 30_000,
            "10.9.0.77",
            50000,
            "10.9.0.5",
            2575,
            8_000_000,
            4_000,
        ));
        let mut alerts = feed(&mut d, &attack);
        alerts.extend(feed(&mut d, &normal_minute(401, &mut seed)));
        assert_eq!(alerts.len(), 1, "{alerts:#?}");
        assert!(
            alerts[0].evidence[0].starts_with("bytes_out"),
            "{:?}",
            alerts[0].evidence
        );
        assert!(alerts[0].evidence[0].contains("× baseline"));
        assert_eq!(alerts[0].device.as_deref(), Some("10.9.0.77"));
        assert_complete(&alerts);
    }

    #[test]
    fn quiet_on_normal_traffic_across_seeds() {
        for seed0 in [11u64, 12345, 0x9E37_79B9] {
            let mut d = Anomaly::new(Config::default());
            let mut seed = seed0;
            let mut alerts = Vec::new();
            for m in 0..300 {
                alerts.extend(feed(&mut d, &normal_minute(m, &mut seed)));
            }
            assert!(alerts.is_empty(), "seed {seed0}: {alerts:#?}");
        }
    }

    #[test]
    fn no_alert_during_warmup_and_bad_state_is_an_error() {
        let mut d = Anomaly::new(Config::default());
        let mut seed = 9;
        let mut alerts = Vec::new();
        for m in 0..50 {
            let mut ev = normal_minute(m, &mut seed);
            if m == 30 {
                ev.push(session(
                    m * 60_000 + 1,
                    "10.9.0.77",
                    1,
                    "10.9.0.5",
                    22,
                    900_000_000,
                    1,
                ));
            }
            alerts.extend(feed(&mut d, &ev));
        }
        assert!(alerts.is_empty());
        assert!(d.restore(&[1, 2, 3]).is_err());
    }
}
