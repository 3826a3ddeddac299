//! Command-and-control beacons: a device calling the same outside host at a steady rhythm.
//!
//! Per (device, destination, port) the connection start times are kept (and the bytes sent,
//! where flows give them). Every few new connections the series is analysed three ways:
//! - **periodicity** by FFT: the connection times are binned into a spike train; its power
//!   spectrum proposes candidate periods and its autocorrelation (inverse FFT of the power)
//!   counts connection pairs one and two periods apart, beyond what random timing would give.
//!   Jitter only blurs a lag by one interval's worth and a missed beat costs one pair;
//! - **timing regularity**: the share of intervals within 25% of a whole multiple of the
//!   period (a missed beat is an interval of two periods, not an irregularity);
//! - **size regularity**: 1 − coefficient of variation of the bytes sent.
//!
//! Legitimate telemetry is just as periodic, so the detector also requires what telemetry
//! lacks: the destination is outside the hospital, not on the allowlist, and not shared by a
//! fleet (when several devices beacon to the same host it is a vendor service, not C2).

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;

use heir_model::event::{TcpFlags, Transport};
use heir_model::{Alert, Category, Event, EventKind, NetAddr, Severity};
use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};
use serde::{Deserialize, Serialize};

use crate::util::{Cidr, Device, bound, default_internal, exe, in_any};
use crate::{Detector, Kind, Spec};

const SPEC: Spec = Spec {
    rule: "net.c2_beacon",
    category: Category::C2Beacon,
    owasp_iot: "I3",
    enisa: "Nefarious activity/abuse: command and control",
    attack: "T1071.001",
};

/// Beacon settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub enabled: bool,
    /// Connections needed before a series is analysed.
    pub min_connections: usize,
    /// Connections kept per series.
    pub max_connections: usize,
    /// Shortest and longest period of interest, seconds.
    pub min_period_secs: f64,
    pub max_period_secs: f64,
    /// Combined score (0..1) above which a series is a beacon.
    pub threshold: f64,
    /// Share of intervals on the beat (discounted for missing beats) a beacon needs besides:
    /// identical requests at scattered times score on size regularity and chance spectral
    /// peaks, but most of their intervals fall off any beat.
    pub min_timing: f64,
    /// Destinations contacted by this many devices or more are a fleet service.
    pub fleet_devices: usize,
    /// Networks inside the hospital (never C2 destinations here).
    pub internal: Vec<Cidr>,
    /// Known-good telemetry destinations.
    pub allowed_destinations: Vec<Cidr>,
    pub max_series: usize,
    /// Connection starts closer than this (milliseconds) to the previous one are the same
    /// connection seen by two sensors (a syscall connect and a packet flow).
    pub merge_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            enabled: true,
            min_connections: 12,
            max_connections: 128,
            min_period_secs: 5.0,
            max_period_secs: 6.0 * 3600.0,
            threshold: 0.6,
            min_timing: 0.5,
            fleet_devices: 3,
            internal: default_internal(),
            allowed_destinations: Vec::new(),
            max_series: 20_000,
            merge_ms: 200,
        }
    }
}

/// How well intervals fit a beat of `period`: the share within 25% of a whole number of
/// periods, and the share of the beats in the covered time that actually happened.
fn beat_fit(intervals: &[f64], period: f64) -> (f64, f64) {
    let mut on = 0usize;
    let mut beats = 0.0;
    for d in intervals {
        let m = (d / period).round().max(1.0);
        if ((d - m * period) / period).abs() <= 0.25 {
            on += 1;
        }
        beats += m;
    }
    let n = intervals.len() as f64;
    (on as f64 / n, (n / beats).min(1.0))
}

/// The analysis of one series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Periodicity {
    pub period_secs: f64,
    /// FFT autocorrelation at one and two periods beyond what random timing would give (0..1).
    pub spectral: f64,
    /// Share of intervals on the beat, discounted by the share of beats missing.
    pub timing: f64,
    /// `None` when sizes are unknown (syscall connects).
    pub size: Option<f64>,
    pub confidence: f64,
}

#[derive(Default)]
struct Series {
    times: VecDeque<u64>,
    sizes: VecDeque<u64>,
    since_analysis: usize,
    alerted: bool,
    who: String,
}

pub struct Beacon {
    cfg: Config,
    series: HashMap<(Device, IpAddr, u16), Series>,
    fleet: HashMap<IpAddr, HashSet<Device>>,
    planner: FftPlanner<f64>,
    ffts: HashMap<(usize, bool), Arc<dyn Fft<f64>>>,
}

impl Beacon {
    pub fn new(cfg: Config) -> Self {
        Self {
            cfg,
            series: HashMap::new(),
            fleet: HashMap::new(),
            planner: FftPlanner::new(),
            ffts: HashMap::new(),
        }
    }

    fn fft(&mut self, n: usize, inverse: bool) -> Arc<dyn Fft<f64>> {
        let planner = &mut self.planner;
        self.ffts
            .entry((n, inverse))
            .or_insert_with(|| {
                if inverse {
                    planner.plan_fft_inverse(n)
                } else {
                    planner.plan_fft_forward(n)
                }
            })
            .clone()
    }

    /// Analyses connection times (ns) and optional sizes.
    ///
    /// The connection times become a spike train (16 bins per median interval, zero-padded
    /// so the transform does not wrap). Its power spectrum proposes candidate periods; its
    /// autocorrelation (the inverse transform of the power spectrum) counts pairs of
    /// connections one and two periods apart. Unlike the spectrum's line height, those
    /// pair counts only see one interval's jitter at a time, so a sleep-loop beacon whose
    /// phase wanders still scores, and a missed beat costs one pair, not the line.
    pub fn analyse(&mut self, times: &[u64], sizes: &[u64]) -> Option<Periodicity> {
        if times.len() < 4 {
            return None;
        }
        let t0 = times[0];
        let rel: Vec<f64> = times
            .iter()
            .map(|t| t.saturating_sub(t0) as f64 / 1e9)
            .collect();
        let mut intervals: Vec<f64> = rel
            .windows(2)
            .map(|w| w[1] - w[0])
            .filter(|d| *d > 0.0)
            .collect();
        if intervals.len() < 3 {
            return None;
        }
        intervals.sort_by(f64::total_cmp);
        let median = intervals[intervals.len() / 2];
        let span = *rel.last()?;
        if median <= 0.0 || span <= 0.0 {
            return None;
        }
        // 16 bins per median interval, coarser when the span would need more than 8192
        // (sized in floating point: a span of years over nanosecond gaps must not overflow).
        let mut bin = median / 16.0;
        while 2.0 * (span / bin + 2.0) > 8192.0 {
            bin *= 2.0;
        }
        let n = ((2.0 * ((span / bin).ceil() + 1.0)) as usize).next_power_of_two();
        let span_bins = span / bin;
        let mut buf = vec![Complex::new(0.0, 0.0); n];
        for t in &rel {
            buf[((t / bin) as usize).min(n - 1)].re += 1.0;
        }
        self.fft(n, false).process(&mut buf);
        let power: Vec<f64> = buf.iter().map(|c| c.norm_sqr()).collect();
        // Candidates: the strongest spectral peaks that fit at least three cycles in the span
        // (the spectrum of the zero-padded train has twice the resolution: k cycles per 2·span),
        // and the short-interval cluster. Missed beats make sub-harmonics strong and divisors
        // of the period fit every interval, so candidates are judged by how the intervals fall
        // on their beat *and* how many of their beats are present.
        let mut peaks: Vec<(usize, f64)> =
            power[..n / 2].iter().copied().enumerate().skip(6).collect();
        peaks.sort_by(|a, b| b.1.total_cmp(&a.1));
        let mut candidates: Vec<f64> = peaks
            .iter()
            .take(6)
            .map(|(k, _)| n as f64 * bin / *k as f64)
            .collect();
        candidates.push(intervals[intervals.len() / 4]);
        candidates.push(median);
        let mut best: Option<(f64, f64)> = None;
        for c in candidates {
            if c <= 0.0 {
                continue;
            }
            let near: Vec<f64> = intervals
                .iter()
                .copied()
                .filter(|d| (d / c - 1.0).abs() < 0.3)
                .collect();
            let c = if near.len() >= 3 {
                near.iter().sum::<f64>() / near.len() as f64
            } else {
                c
            };
            let (on_beat, coverage) = beat_fit(&intervals, c);
            let score = on_beat * coverage.sqrt();
            if best.is_none_or(|(_, s)| score > s) {
                best = Some((c, score));
            }
        }
        let (period, timing) = best?;
        // Autocorrelation through the FFT: acf[l] = pairs of connections l bins apart.
        let mut acf: Vec<Complex<f64>> = power.iter().map(|p| Complex::new(*p, 0.0)).collect();
        self.fft(n, true).process(&mut acf);
        let events = rel.len() as f64;
        // Pairs within ±20% of one period around lag `lag`.
        let pairs_near = |lag: f64| -> (f64, f64) {
            let lo = ((lag - 0.2 * period) / bin).floor().max(1.0) as usize;
            let hi = (((lag + 0.2 * period) / bin).ceil() as usize)
                .min(n / 2 - 1)
                .max(lo);
            let observed: f64 = acf[lo..=hi].iter().map(|c| c.re / n as f64).sum();
            // What uniformly scattered connections would give at these lags.
            let width = (hi - lo + 1) as f64;
            let expected = events * events * (span_bins - lag / bin).max(0.0)
                / (span_bins * span_bins)
                * width;
            (observed, expected)
        };
        let (o1, e1) = pairs_near(period);
        let (o2, e2) = pairs_near(2.0 * period);
        let possible = 2.0 * (events - 1.0);
        let spectral = if possible > e1 + e2 {
            ((o1 + o2 - e1 - e2) / (possible - e1 - e2)).clamp(0.0, 1.0)
        } else {
            0.0
        };
        let size = (sizes.len() >= 4).then(|| {
            let m = sizes.iter().map(|s| *s as f64).sum::<f64>() / sizes.len() as f64;
            if m <= 0.0 {
                return 1.0;
            }
            let var =
                sizes.iter().map(|s| (*s as f64 - m).powi(2)).sum::<f64>() / sizes.len() as f64;
            (1.0 - var.sqrt() / m).clamp(0.0, 1.0)
        });
        let confidence = match size {
            Some(s) => 0.45 * spectral + 0.35 * timing + 0.2 * s,
            None => 0.55 * spectral + 0.45 * timing,
        };
        Some(Periodicity {
            period_secs: period,
            spectral,
            timing,
            size,
            confidence,
        })
    }
}

impl Detector for Beacon {
    fn name(&self) -> &'static str {
        "beacon"
    }

    fn kinds(&self) -> &'static [Kind] {
        &[Kind::Flow, Kind::Connect]
    }

    fn inspect(&mut self, ev: &Event, out: &mut Vec<Alert>) {
        let (device, dst, port, size, who) = match &ev.kind {
            EventKind::Flow {
                src,
                dst,
                dst_port,
                bytes_out,
                first_seen,
                transport,
                flags_out,
                ..
            } => {
                if !in_any(&self.cfg.internal, *src) {
                    return;
                }
                // Only connections the device opened call home. A device answering someone
                // else's SYN (a RST from a closed port during a scan) is not a call, and
                // counting it would make every scanned device look like part of a fleet
                // talking to the scanner.
                if *transport == Transport::Tcp && !flags_out.has(TcpFlags::SYN) {
                    return;
                }
                let _ = first_seen;
                (Device::Ip(*src), *dst, *dst_port, Some(*bytes_out), None)
            }
            EventKind::Connect {
                addr: NetAddr::Inet { ip, port },
                ret,
            } if *ret == 0 || *ret == -115 => (Device::Local, *ip, *port, None, Some(&ev.process)),
            _ => return,
        };
        if in_any(&self.cfg.internal, dst) || in_any(&self.cfg.allowed_destinations, dst) {
            return;
        }
        let t = match &ev.kind {
            EventKind::Flow { first_seen, .. } => first_seen.as_nanos(),
            _ => ev.ts.as_nanos(),
        };
        let max_period = (self.cfg.max_period_secs * 1e9) as u64;
        bound(&mut self.series, self.cfg.max_series, |_, s| {
            s.times
                .back()
                .is_some_and(|b| t.saturating_sub(*b) < 2 * max_period)
        });
        if self.fleet.len() >= self.cfg.max_series {
            self.fleet.clear();
        }
        let devices = self.fleet.entry(dst).or_default();
        if devices.len() < 64 {
            devices.insert(device);
        }
        let fleet = devices.len() >= self.cfg.fleet_devices;
        let s = self.series.entry((device, dst, port)).or_default();
        // Two sensors may report the same connection: merge starts closer than `merge_ms`.
        if s.times
            .back()
            .is_some_and(|b| t.saturating_sub(*b) < self.cfg.merge_ms.saturating_mul(1_000_000))
        {
            return;
        }
        s.times.push_back(t);
        if let Some(b) = size {
            s.sizes.push_back(b);
        }
        if let Some(p) = who
            && s.who.is_empty()
        {
            s.who = exe(p).to_owned();
        }
        while s.times.len() > self.cfg.max_connections {
            s.times.pop_front();
        }
        while s.sizes.len() > self.cfg.max_connections {
            s.sizes.pop_front();
        }
        s.since_analysis += 1;
        if s.alerted
            || fleet
            || s.times.len() < self.cfg.min_connections
            || s.since_analysis < 4.min(self.cfg.min_connections)
        {
            return;
        }
        s.since_analysis = 0;
        let times: Vec<u64> = s.times.iter().copied().collect();
        let sizes: Vec<u64> = s.sizes.iter().copied().collect();
        let who = s.who.clone();
        let Some(p) = self.analyse(&times, &sizes) else {
            return;
        };
        if p.confidence < self.cfg.threshold
            || p.timing < self.cfg.min_timing
            || p.period_secs < self.cfg.min_period_secs
            || p.period_secs > self.cfg.max_period_secs
        {
            return;
        }
        if let Some(s) = self.series.get_mut(&(device, dst, port)) {
            s.alerted = true;
        }
        let mut a = SPEC.alert(
            ev.ts,
            format!(
                "Beacon from {device} to {dst}:{port} every {}",
                period_name(p.period_secs)
            ),
            Severity::High,
            p.confidence as f32,
        );
        a.device = Some(device.to_string());
        a.src_ip = device.ip();
        a.dst_ip = Some(dst);
        a.dst_port = Some(port);
        a.count = times.len() as u64;
        a.evidence.push(format!(
            "period {:.1}s over {} connections, confidence {:.2}",
            p.period_secs,
            times.len(),
            p.confidence
        ));
        a.evidence.push(format!(
            "spectral concentration {:.2}, {:.0}% of intervals on the beat",
            p.spectral,
            p.timing * 100.0
        ));
        if let Some(sz) = p.size {
            a.evidence.push(format!("request size regularity {sz:.2}"));
        }
        if !who.is_empty() {
            a.evidence.push(format!("process: {who}"));
        }
        out.push(a);
    }
}

fn period_name(s: f64) -> String {
    if s >= 3600.0 {
        format!("{:.1}h", s / 3600.0)
    } else if s >= 120.0 {
        format!("{:.1}min", s / 60.0)
    } else {
        format!("{s:.0}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detectors::fixtures::*;

    /// `while true; do curl -s https://c2/x; sleep $((50 + RANDOM % 20)); done` with some beats
    /// missed (laptop asleep, network hiccup).
    fn curl_beacon(period_ms: u64, jitter: f64, miss: f64, n: u64, seed: &mut u64) -> Vec<Event> {
        let mut t = 0u64;
        let mut out = Vec::new();
        for i in 0..n {
            let j = (unit(seed) * 2.0 - 1.0) * jitter;
            t += (period_ms as f64 * (1.0 + j)) as u64;
            if unit(seed) < miss {
                continue;
            }
            let bytes = 700 + (xorshift(seed) % 60);
            out.push(session(
                t,
                "10.9.0.77",
                40000 + (i % 20000) as u16,
                "198.51.100.23",
                443,
                bytes,
                1_200,
            ));
        }
        out
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

    #[test]
    fn jittered_beacon_with_missed_beats_is_found_with_its_period() {
        let mut seed = 0x9E37_79B9_7F4A_7C15;
        let mut d = Beacon::new(Config::default());
        let alerts = run(&mut d, &curl_beacon(60_000, 0.2, 0.2, 40, &mut seed));
        assert_eq!(alerts.len(), 1, "{alerts:#?}");
        let e = &alerts[0].evidence[0];
        let period: f64 = e
            .split_whitespace()
            .nth(1)
            .unwrap()
            .trim_end_matches('s')
            .parse()
            .unwrap();
        assert!((period - 60.0).abs() < 6.0, "{e}");
        assert!(alerts[0].confidence >= 0.6);
        assert_complete(&alerts);
    }

    /// A scanner probing four devices makes each answer it (RST from closed ports). Those
    /// answers are not calls: they must neither count as beats nor make the scanner look
    /// like a destination the whole fleet talks to, which would hide a real beacon to it.
    #[test]
    fn scan_replies_do_not_hide_a_beacon_to_the_scanner() {
        let mut d = Beacon::new(Config {
            min_period_secs: 0.5,
            ..Config::default()
        });
        let mut events = Vec::new();
        for (i, dev) in ["10.1.1.10", "10.1.2.10", "10.1.3.10", "10.1.4.10"]
            .iter()
            .enumerate()
        {
            for port in 0..50u16 {
                events.push(flow(
                    i as u64 * 10 + u64::from(port),
                    dev,
                    port + 1,
                    "203.0.113.66",
                    58609,
                    FlowSpec {
                        flags_out: TcpFlags::RST | TcpFlags::ACK,
                        packets_out: 1,
                        bytes_out: 54,
                        ..FlowSpec::default()
                    },
                ));
            }
        }
        assert!(run(&mut d, &events).is_empty());
        let mut seed = 11;
        let mut t = 10_000;
        let beats: Vec<_> = (0..16u16)
            .map(|i| {
                t += (1_000.0 * (0.9 + 0.2 * unit(&mut seed))) as u64;
                session(t, "10.1.2.10", 50000 + i, "203.0.113.66", 8080, 120, 90)
            })
            .collect();
        let alerts = run(&mut d, &beats);
        assert_eq!(alerts.len(), 1, "{alerts:#?}");
        assert_eq!(alerts[0].src_ip, Some(ip("10.1.2.10")));
    }

    #[test]
    fn host_side_connect_beacon_names_the_process() {
        let mut seed = 5;
        let mut d = Beacon::new(Config::default());
        let p = proc_(300, 299, 1000, "curl", "/usr/bin/curl", "/usr/bin/bash");
        let mut t = 0;
        let events: Vec<_> = (0..30)
            .map(|_| {
                t += (30_000.0 * (0.85 + 0.3 * unit(&mut seed))) as u64;
                connect(t, p.clone(), "203.0.113.99", 8443)
            })
            .collect();
        let alerts = run(&mut d, &events);
        assert_eq!(alerts.len(), 1);
        assert!(
            alerts[0]
                .evidence
                .iter()
                .any(|e| e.contains("/usr/bin/curl"))
        );
    }

    #[test]
    fn extreme_time_series_do_not_overflow() {
        let mut d = Beacon::new(Config::default());
        let _ = d.analyse(&[0, 1, 2, 3, 4, u64::MAX], &[u64::MAX; 6]);
        let _ = d.analyse(&[5; 20], &[]);
        assert!(d.analyse(&[1, 2], &[]).is_none());
    }

    #[test]
    fn identical_requests_at_irregular_gaps_are_not_a_beacon() {
        // Browsing through a loaded gateway: the same request after gaps of 0.5 s to 4 s.
        // Size regularity is perfect and a chance spectral peak appears at 3.3 s (combined
        // score 0.67), but fewer than half the intervals fall on that beat.
        let starts = [
            0u64, 566, 3521, 4400, 6998, 7905, 11474, 13683, 15103, 17779, 19021, 22981,
        ];
        let mut d = Beacon::new(Config {
            min_period_secs: 0.5,
            ..Config::default()
        });
        let times: Vec<u64> = starts.iter().map(|ms| ms * 1_000_000).collect();
        let p = d.analyse(&times, &[900; 12]).unwrap();
        assert!(
            p.confidence >= d.cfg.threshold,
            "the case the gate is for: {p:?}"
        );
        assert!(p.timing < d.cfg.min_timing, "{p:?}");
        let events: Vec<_> = starts
            .iter()
            .map(|ms| session(*ms, "10.9.0.78", 40000, "203.0.113.81", 8081, 120, 900))
            .collect();
        let alerts = run(&mut d, &events);
        assert!(alerts.is_empty(), "{alerts:#?}");
    }

    #[test]
    fn robust_across_jitter_missed_beats_and_seeds() {
        for seed in 1..=20u64 {
            let mut rng = seed * 7919;
            for (period, jitter, miss) in
                [(30_000, 0.1, 0.0), (60_000, 0.2, 0.2), (300_000, 0.2, 0.2)]
            {
                let mut d = Beacon::new(Config::default());
                let alerts = run(&mut d, &curl_beacon(period, jitter, miss, 48, &mut rng));
                assert_eq!(
                    alerts.len(),
                    1,
                    "seed {seed} period {period} jitter {jitter} miss 1/{miss}"
                );
                let e = &alerts[0].evidence[0];
                let p: f64 = e
                    .split_whitespace()
                    .nth(1)
                    .unwrap()
                    .trim_end_matches('s')
                    .parse()
                    .unwrap();
                let want = period as f64 / 1000.0;
                assert!(
                    (p - want).abs() / want < 0.1,
                    "seed {seed}: {e} (want {want}s)"
                );
            }
            // Poisson arrivals with the same mean rate are not a beacon.
            let mut d = Beacon::new(Config::default());
            let mut t = 0u64;
            let events: Vec<_> = (0..80)
                .map(|_| {
                    t += (-(1.0 - unit(&mut rng)).ln() * 60_000.0) as u64 + 1_000;
                    session(t, "10.9.0.78", 40000, "203.0.113.81", 443, 800, 1_200)
                })
                .collect();
            let alerts = run(&mut d, &events);
            assert!(alerts.is_empty(), "seed {seed}: {alerts:#?}");
        }
    }

    #[test]
    fn random_browsing_fleet_telemetry_and_internal_polling_stay_quiet() {
        let mut seed = 11;
        let mut d = Beacon::new(Config::default());
        // Irregular user traffic to one site: exponential gaps.
        let mut t = 0u64;
        let browsing: Vec<_> = (0..80)
            .map(|_| {
                t += (-(1.0 - unit(&mut seed)).ln() * 45_000.0) as u64 + 1_000;
                session(
                    t,
                    "10.9.0.78",
                    40000,
                    "203.0.113.80",
                    443,
                    500 + xorshift(&mut seed) % 50_000,
                    90_000,
                )
            })
            .collect();
        assert!(run(&mut d, &browsing).is_empty());
        // Five monitors reporting to the vendor's cloud every 60s: a fleet service.
        let mut fleet = Vec::new();
        for dev in 1..=5 {
            for i in 0..40u64 {
                fleet.push(session(
                    i * 60_000 + dev * 1_000,
                    &format!("10.9.3.{dev}"),
                    40000,
                    "198.51.100.200",
                    443,
                    900,
                    300,
                ));
            }
        }
        fleet.sort_by_key(|e| e.ts);
        let alerts = run(&mut d, &fleet);
        assert!(alerts.is_empty(), "fleet telemetry: {alerts:#?}");
        // Monitoring system polling internal devices every 30s.
        let polling: Vec<_> = (0..60u64)
            .map(|i| session(i * 30_000, "10.9.0.79", 40000, "10.9.0.5", 161, 80, 200))
            .collect();
        assert!(run(&mut d, &polling).is_empty());
    }
}
