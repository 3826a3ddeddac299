//! How much to believe what arrives: replay protection, per-member rate limits, hospital
//! reputation, and corroboration by independent hospitals.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use heir_model::Timestamp;
use serde::{Deserialize, Serialize};

use crate::clock;

/// Settings for the trust checks.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Live messages older than this are refused as stale; replay memory lasts this long.
    #[serde(with = "secs")]
    pub max_age: Duration,
    /// Tolerated clock skew for messages dated in the future.
    #[serde(with = "secs")]
    pub max_skew: Duration,
    /// Messages a member may publish in a burst.
    pub burst: u32,
    /// Sustained messages per minute a member may publish.
    pub per_minute: u32,
    /// Independent hospitals needed before the responder may act on an indicator by itself.
    pub act_min_hospitals: usize,
    /// Corroborated confidence (0..1) needed before the responder may act by itself.
    pub act_min_confidence: f64,
}

mod secs {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_secs)
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_age: Duration::from_secs(600),
            max_skew: Duration::from_secs(60),
            burst: 60,
            per_minute: 120,
            act_min_hospitals: 3,
            act_min_confidence: 0.9,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("message issued at {issued} is older than the freshness window")]
    Stale { issued: Timestamp },
    #[error("message issued at {issued} is dated in the future")]
    Future { issued: Timestamp },
    #[error("message nonce was already seen (replay)")]
    Replay,
    #[error("member exceeded its publication rate")]
    RateLimited,
}

type NonceKey = ([u8; 32], [u8; 16]);

/// Remembers (author, nonce) pairs for the freshness window, so a captured message cannot be
/// replayed: within the window its nonce is known, past it the message is stale.
#[derive(Debug)]
pub struct ReplayGuard {
    max_age: Duration,
    max_skew: Duration,
    seen: HashMap<NonceKey, Timestamp>,
    order: VecDeque<(Timestamp, NonceKey)>,
    capacity: usize,
}

impl ReplayGuard {
    pub fn new(max_age: Duration, max_skew: Duration, capacity: usize) -> Self {
        Self {
            max_age,
            max_skew,
            seen: HashMap::new(),
            order: VecDeque::new(),
            capacity,
        }
    }

    pub fn check_fresh(&self, issued: Timestamp, now: Timestamp) -> Result<(), Error> {
        if issued > clock::add(now, self.max_skew) {
            return Err(Error::Future { issued });
        }
        if issued < clock::sub(now, self.max_age) {
            return Err(Error::Stale { issued });
        }
        Ok(())
    }

    pub fn seen(&self, member: &[u8; 32], nonce: &[u8; 16]) -> bool {
        self.seen.contains_key(&(*member, *nonce))
    }

    /// Records a nonce; false if it was already there.
    pub fn record(&mut self, member: &[u8; 32], nonce: &[u8; 16], now: Timestamp) -> bool {
        self.expire(now);
        let key = (*member, *nonce);
        if self.seen.contains_key(&key) {
            return false;
        }
        self.seen.insert(key, now);
        self.order.push_back((now, key));
        while self.order.len() > self.capacity {
            if let Some((_, k)) = self.order.pop_front() {
                self.seen.remove(&k);
            }
        }
        true
    }

    fn expire(&mut self, now: Timestamp) {
        // Remember a little longer than the window so a message dated at the skew limit is
        // still known when it would otherwise become stale.
        let horizon = clock::sub(now, self.max_age + self.max_skew);
        while let Some((t, k)) = self.order.front().copied() {
            if t >= horizon {
                break;
            }
            self.order.pop_front();
            self.seen.remove(&k);
        }
    }

    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

/// A token bucket per member.
#[derive(Debug)]
pub struct RateLimiter {
    burst: f64,
    per_sec: f64,
    buckets: HashMap<[u8; 32], (f64, Timestamp)>,
}

impl RateLimiter {
    pub fn new(burst: u32, per_minute: u32) -> Self {
        Self {
            burst: f64::from(burst.max(1)),
            per_sec: f64::from(per_minute) / 60.0,
            buckets: HashMap::new(),
        }
    }

    /// Takes one token for `member` at `now`; false if the bucket is empty.
    pub fn allow(&mut self, member: &[u8; 32], now: Timestamp) -> bool {
        if self.buckets.len() > 10_000 {
            let burst = self.burst;
            let per_sec = self.per_sec;
            self.buckets.retain(|_, (tokens, at)| {
                *tokens + now.saturating_sub(*at).as_secs_f64() * per_sec < burst
            });
        }
        let (tokens, at) = self.buckets.entry(*member).or_insert((self.burst, now));
        let refill = now.saturating_sub(*at).as_secs_f64() * self.per_sec;
        *tokens = (*tokens + refill).min(self.burst);
        *at = now.max(*at);
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Per-hospital reputation in 0..=1. Every hospital starts neutral; indicators that others
/// corroborate raise it, retractions and false-positive reports lower it.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Reputation {
    scores: HashMap<String, f64>,
}

pub const NEUTRAL: f64 = 0.5;

impl Reputation {
    pub fn get(&self, hospital: &str) -> f64 {
        self.scores.get(hospital).copied().unwrap_or(NEUTRAL)
    }

    fn nudge(&mut self, hospital: &str, towards: f64, rate: f64) {
        let s = self.scores.entry(hospital.to_owned()).or_insert(NEUTRAL);
        *s += (towards - *s) * rate;
    }

    /// Another hospital independently saw what `hospital` reported.
    pub fn corroborated(&mut self, hospital: &str) {
        self.nudge(hospital, 1.0, 0.05);
    }

    /// `hospital` withdrew one of its own indicators: honest, but it was wrong.
    pub fn retracted(&mut self, hospital: &str) {
        self.nudge(hospital, 0.0, 0.05);
    }

    /// Another hospital reported one of `hospital`'s indicators as a false positive.
    pub fn false_positive(&mut self, hospital: &str) {
        self.nudge(hospital, 0.0, 0.15);
    }

    /// The score as gossipsub's application-specific score: negative below neutral.
    pub fn as_peer_score(&self, hospital: &str) -> f64 {
        (self.get(hospital) - NEUTRAL) * 2.0
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, f64)> {
        self.scores.iter().map(|(k, v)| (k.as_str(), *v))
    }
}

/// Confidence that an indicator is real, from independent reports: each hospital's own
/// confidence, weighted by its reputation, combined as independent evidence
/// (1 − Π(1 − wᵢ·cᵢ)). One hospital cannot raise it by repeating itself.
pub fn corroborate<'a>(
    reports: impl IntoIterator<Item = (&'a str, f64)>,
    reputation: &Reputation,
) -> f64 {
    let mut best: HashMap<&str, f64> = HashMap::new();
    for (h, c) in reports {
        let e = best.entry(h).or_insert(0.0);
        *e = e.max(c.clamp(0.0, 1.0));
    }
    let miss: f64 = best
        .iter()
        .map(|(h, c)| 1.0 - (2.0 * reputation.get(h)).min(1.0) * c)
        .product();
    1.0 - miss
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: u64) -> Timestamp {
        Timestamp::from_secs(s)
    }

    #[test]
    fn replay_guard_refuses_repeats_and_stale() {
        let mut g = ReplayGuard::new(Duration::from_secs(600), Duration::from_secs(60), 1000);
        let m = [1; 32];
        assert!(g.record(&m, &[1; 16], t(1000)));
        assert!(!g.record(&m, &[1; 16], t(1001)));
        assert!(
            g.record(&[2; 32], &[1; 16], t(1001)),
            "same nonce, other author"
        );
        assert_eq!(g.check_fresh(t(1000), t(1500)), Ok(()));
        assert_eq!(
            g.check_fresh(t(1000), t(1601)),
            Err(Error::Stale { issued: t(1000) })
        );
        assert_eq!(
            g.check_fresh(t(1100), t(1000)),
            Err(Error::Future { issued: t(1100) })
        );
        // After the window the memory is dropped, but such a message is stale anyway.
        g.record(&m, &[9; 16], t(2000));
        assert!(!g.seen(&m, &[1; 16]));
        assert!(g.check_fresh(t(1000), t(2000)).is_err());
    }

    #[test]
    fn rate_limiter_allows_bursts_then_refills() {
        let mut r = RateLimiter::new(3, 60);
        let m = [7; 32];
        assert!((0..3).all(|_| r.allow(&m, t(10))));
        assert!(!r.allow(&m, t(10)));
        assert!(r.allow(&[8; 32], t(10)), "other members are unaffected");
        assert!(r.allow(&m, t(11)), "one token per second refills");
        assert!(!r.allow(&m, t(11)));
    }

    #[test]
    fn corroboration_grows_with_distinct_hospitals_only() {
        let rep = Reputation::default();
        let one = corroborate([("A", 0.6)], &rep);
        let same = corroborate([("A", 0.6), ("A", 0.6), ("A", 0.6)], &rep);
        let three = corroborate([("A", 0.6), ("B", 0.6), ("C", 0.6)], &rep);
        assert!((one - 0.6).abs() < 1e-9);
        assert_eq!(one, same);
        assert!(three > 0.9);
        let mut bad = Reputation::default();
        for _ in 0..10 {
            bad.false_positive("B");
            bad.false_positive("C");
        }
        assert!(corroborate([("A", 0.6), ("B", 0.6), ("C", 0.6)], &bad) < three);
        assert!(bad.as_peer_score("B") < 0.0);
    }
}
