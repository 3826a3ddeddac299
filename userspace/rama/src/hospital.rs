//! The hospital's RAMA: the worst device, raised by the next worst.
//!
//! An average would let a thousand healthy thermometers hide one compromised ventilator. The
//! hospital score starts at the worst device's score and adds a quarter of the remaining
//! headroom in proportion to the next four worst:
//!
//! `H = s₁ + (100 − s₁) · 0.25 · (s₂ + s₃ + s₄ + s₅) / 400`
//!
//! so it is never below any device's score, adding devices never lowers it, and several bad
//! devices rank above one.

use serde::{Deserialize, Serialize};

use crate::inventory::DeviceId;
use crate::score::{Band, round1};

/// How many runners-up raise the hospital score.
pub const RUNNERS_UP: usize = 4;
/// Share of the headroom the runners-up can fill.
pub const RUNNERS_UP_SHARE: f64 = 0.25;

/// The hospital's score and where it comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hospital {
    pub value: f64,
    pub band: Band,
    pub devices: usize,
    /// Devices per band: low, medium, high, critical.
    pub bands: [usize; 4],
    /// The worst devices, worst first (at most 1 + [`RUNNERS_UP`]).
    pub worst: Vec<(DeviceId, f64)>,
}

/// The hospital score from device scores sorted worst first.
pub fn value(worst_first: &[f64]) -> f64 {
    let Some((&s1, rest)) = worst_first.split_first() else {
        return 0.0;
    };
    let next: f64 = rest.iter().take(RUNNERS_UP).sum();
    round1(
        (s1 + (100.0 - s1) * RUNNERS_UP_SHARE * next / (100.0 * RUNNERS_UP as f64))
            .clamp(0.0, 100.0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_critical_device_is_not_hidden_by_many_healthy_ones() {
        let mut fleet = vec![90.0];
        fleet.extend(std::iter::repeat_n(1.0, 10_000));
        let h = value(&fleet);
        assert!(h >= 90.0, "{h}");
        assert_eq!(value(&[90.0]), 90.0);
        assert_eq!(value(&[]), 0.0);
        // Several bad devices rank above one.
        assert!(value(&[90.0, 80.0, 80.0, 80.0, 80.0]) > value(&[90.0, 1.0]));
        assert!(value(&[100.0; 5]) <= 100.0);
    }
}
