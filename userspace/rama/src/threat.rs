//! Threat activity: alerts on a device, decaying with time.
//!
//! Each alert adds `severity weight × confidence × (1 + log10(count))` to the device's load,
//! and the load halves every [`HALF_LIFE`]. Because exponential decay is multiplicative, one
//! number and its timestamp summarise all past alerts: adding an alert is O(1) however many
//! came before, which is what lets scores follow alerts live.

use std::collections::VecDeque;
use std::time::Duration;

use heir_model::{Alert, Severity, Timestamp};
use serde::{Deserialize, Serialize};

/// Table T: time for an alert's weight to halve.
pub const HALF_LIFE: Duration = Duration::from_secs(24 * 3600);
/// Below this load a device counts as quiet again.
pub const QUIET: f64 = 1e-3;
/// Alerts kept per device to explain its threat factor.
pub const RECENT: usize = 16;

/// Table T: weight of one alert of each severity at full confidence.
pub const fn severity_weight(s: Severity) -> f64 {
    match s {
        Severity::Info => 0.05,
        Severity::Low => 0.15,
        Severity::Medium => 0.4,
        Severity::High => 0.8,
        Severity::Critical => 1.5,
    }
}

/// What one alert adds to the load at the moment it fires.
pub fn alert_weight(a: &Alert) -> f64 {
    let count = a.count.max(1) as f64;
    severity_weight(a.severity) * f64::from(a.confidence.clamp(0.0, 1.0)) * (1.0 + count.log10())
}

/// `2^(−d / half-life)`.
pub fn decay(d: Duration) -> f64 {
    (-(d.as_secs_f64() / HALF_LIFE.as_secs_f64())).exp2()
}

/// An alert as remembered for explanations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Seen {
    pub ts: Timestamp,
    pub rule: String,
    pub title: String,
    pub severity: Severity,
    pub weight: f64,
}

/// A device's decaying alert load.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Threat {
    load: f64,
    at: Timestamp,
    recent: VecDeque<Seen>,
}

impl Threat {
    /// The load at `now` (never increases with time).
    pub fn load(&self, now: Timestamp) -> f64 {
        if self.load == 0.0 {
            return 0.0;
        }
        self.load * decay(now.saturating_sub(self.at))
    }

    /// Adds an alert seen at `now`. Alerts stamped in the future count as fresh; late ones
    /// count as already decayed.
    pub fn add(&mut self, a: &Alert, now: Timestamp) {
        let now = now.max(self.at);
        let w = alert_weight(a);
        self.load = self.load(now) + w * decay(now.saturating_sub(a.ts));
        self.at = now;
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back(Seen {
            ts: a.ts,
            rule: a.rule.clone(),
            title: a.title.clone(),
            severity: a.severity,
            weight: w,
        });
    }

    /// Re-bases the load at `now`, forgetting it when it has decayed below [`QUIET`].
    /// Returns whether the device is still active.
    pub fn settle(&mut self, now: Timestamp) -> bool {
        if now > self.at {
            self.load = self.load(now);
            self.at = now;
        }
        if self.load < QUIET {
            self.load = 0.0;
        }
        self.load > 0.0
    }

    pub fn recent(&self) -> impl Iterator<Item = &Seen> {
        self.recent.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use heir_model::Category;

    fn alert(sev: Severity, t: u64) -> Alert {
        Alert::new(
            Timestamp::from_secs(t),
            "r",
            "t",
            Category::PortScan,
            sev,
            1.0,
        )
    }

    #[test]
    fn load_halves_every_half_life_and_settles_to_quiet() {
        let mut th = Threat::default();
        let t0 = Timestamp::from_secs(1_000_000);
        th.add(&alert(Severity::High, 1_000_000), t0);
        assert_eq!(th.load(t0), 0.8);
        let one_day = Timestamp::from_secs(1_000_000 + 86_400);
        assert!((th.load(one_day) - 0.4).abs() < 1e-12);
        // A late alert (stamped a day ago) counts half.
        th.add(&alert(Severity::High, 1_000_000), one_day);
        assert!((th.load(one_day) - 0.8).abs() < 1e-12);
        let much_later = Timestamp::from_secs(1_000_000 + 86_400 * 20);
        assert!(!th.settle(much_later));
        assert_eq!(th.load(much_later), 0.0);
        assert_eq!(th.recent().count(), 2);
    }

    #[test]
    fn aggregated_alerts_weigh_more_but_not_linearly() {
        let mut a = alert(Severity::Medium, 0);
        assert_eq!(alert_weight(&a), 0.4);
        a.count = 100;
        assert!((alert_weight(&a) - 1.2).abs() < 1e-12);
    }
}
