//! What the UI shows: the latest snapshot of the agent, kept by the sync task.

use std::time::Duration;

use heir_api::{Availability, Blocks, Device, Indicator, Peer, Rama, Status, Stored};
use heir_model::Timestamp;
use heir_rama::Report;

/// Alerts kept for the list (newest first); older ones stay in the agent's store.
pub const MAX_ALERTS: usize = 1000;

/// The link to the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Connection {
    /// Not reached yet.
    Connecting,
    Connected,
    /// Lost or never made; the sync task tries again after `retry_in`.
    Disconnected {
        error: String,
        retry_in: Duration,
        attempts: u32,
    },
}

/// Everything the views render from. Written only by the sync task (and by tests); the UI
/// reads it under a short lock, so neither side ever waits on the other's I/O.
#[derive(Debug, Clone)]
pub struct State {
    pub connection: Connection,
    /// When the snapshot was taken (the agent's clock is not consulted; this is ours).
    pub now: Timestamp,
    pub status: Option<Status>,
    pub rama: Option<Rama>,
    /// Worst score first, as the agent sends them.
    pub devices: Vec<Device>,
    /// The explanation of the device selected in the Devices view.
    pub report: Option<Report>,
    /// Newest first.
    pub alerts: Vec<Stored>,
    pub indicators: Option<Availability<Vec<Indicator>>>,
    pub peers: Option<Availability<Vec<Peer>>>,
    pub blocks: Option<Availability<Blocks>>,
    /// Live items this UI missed because it fell behind (the agent told us how many).
    pub missed: u64,
    /// The outcome of the last action (acknowledge, approve, ...), shown in the status bar.
    pub message: Option<String>,
}

impl Default for State {
    fn default() -> Self {
        Self {
            connection: Connection::Connecting,
            now: Timestamp::now(),
            status: None,
            rama: None,
            devices: Vec::new(),
            report: None,
            alerts: Vec::new(),
            indicators: None,
            peers: None,
            blocks: None,
            missed: 0,
            message: None,
        }
    }
}

impl State {
    /// Adds a live alert, or replaces the stored copy (an acknowledgement changes it).
    pub fn merge_alert(&mut self, s: Stored) {
        if let Some(old) = self.alerts.iter_mut().find(|a| a.seq == s.seq) {
            *old = s;
            return;
        }
        let at = self.alerts.partition_point(|a| a.seq > s.seq);
        self.alerts.insert(at, s);
        self.alerts.truncate(MAX_ALERTS);
    }

    /// Alerts per bucket over the last `buckets × width`, oldest bucket first.
    pub fn alert_rate(&self, buckets: usize, width: Duration) -> Vec<u64> {
        let mut out = vec![0u64; buckets];
        let width = width.as_nanos().max(1) as u64;
        let now = self.now.as_nanos();
        for a in &self.alerts {
            let age = now.saturating_sub(a.alert.ts.as_nanos()) / width;
            if (age as usize) < buckets {
                out[buckets - 1 - age as usize] += a.alert.count.max(1);
            }
        }
        out
    }

    pub fn unacknowledged(&self) -> usize {
        self.alerts
            .iter()
            .filter(|a| a.acknowledged.is_none())
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use heir_api::fixture;

    #[test]
    fn live_alerts_merge_in_order_and_acks_replace() {
        let mut s = State {
            alerts: fixture::alerts().into_iter().rev().collect(),
            ..State::default()
        };
        let mut late = s.alerts[0].clone();
        late.seq = 9;
        s.merge_alert(late);
        let mut acked = s.alerts[2].clone();
        assert_eq!(acked.seq, 4);
        acked.acknowledged = Some(heir_api::Ack::at(fixture::NOW));
        s.merge_alert(acked);
        assert_eq!(
            s.alerts.iter().map(|a| a.seq).collect::<Vec<_>>(),
            [9, 5, 4, 3, 2, 1]
        );
        assert!(s.alerts[2].acknowledged.is_some());
    }

    #[test]
    fn alert_rate_buckets_by_age_and_counts_aggregates() {
        let s = State {
            now: fixture::NOW,
            alerts: fixture::alerts(),
            ..State::default()
        };
        // Ages 3000 s, 900 s (count 212), 600 s, 120 s, 30 s; buckets of 5 minutes, last hour.
        let r = s.alert_rate(12, Duration::from_secs(300));
        assert_eq!(r[11], 2, "120 s and 30 s ago");
        assert_eq!(r[9], 1, "600 s ago");
        assert_eq!(r[8], 212, "900 s ago, 212 occurrences");
        assert_eq!(r[1], 1, "3000 s ago");
        assert_eq!(r.iter().sum::<u64>(), 216);
    }
}
