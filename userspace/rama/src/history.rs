//! Score history: every change of a device's (and the hospital's) score, bounded per series.

use std::collections::VecDeque;

use heir_model::Timestamp;
use serde::{Deserialize, Serialize};

/// Points kept per series; the oldest are dropped first.
pub const CAPACITY: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub ts: Timestamp,
    pub value: f64,
}

/// One series of score changes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Series {
    points: VecDeque<Point>,
}

impl Series {
    /// Records `value` at `ts` unless it equals the last recorded value.
    pub fn record(&mut self, ts: Timestamp, value: f64) -> bool {
        if self.points.back().is_some_and(|p| p.value == value) {
            return false;
        }
        if self.points.len() == CAPACITY {
            self.points.pop_front();
        }
        self.points.push_back(Point { ts, value });
        true
    }

    pub fn points(&self) -> impl DoubleEndedIterator<Item = &Point> + ExactSizeIterator {
        self.points.iter()
    }

    pub fn last(&self) -> Option<&Point> {
        self.points.back()
    }

    pub fn len(&self) -> usize {
        self.points.len()
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_changes_only_and_stays_bounded() {
        let mut s = Series::default();
        assert!(s.record(Timestamp::from_secs(1), 10.0));
        assert!(!s.record(Timestamp::from_secs(2), 10.0));
        assert!(s.record(Timestamp::from_secs(3), 11.0));
        assert_eq!(s.len(), 2);
        for i in 0..(CAPACITY as u64 + 10) {
            s.record(Timestamp::from_secs(10 + i), i as f64 + 100.0);
        }
        assert_eq!(s.len(), CAPACITY);
        assert_eq!(
            s.last().unwrap().value,
            (CAPACITY as u64 + 9) as f64 + 100.0
        );
    }
}
