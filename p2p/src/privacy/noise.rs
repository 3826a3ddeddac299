//! Exact discrete Laplace noise for released counts.
//!
//! Why not `count + Laplace(1/ε)` in floating point: the textbook inverse-transform sampler
//! (`-b·sgn(u)·ln(1−2|u|)` on a uniform double) cannot produce every double, and which
//! doubles it can produce depends on the value it is added to. An observer who sees the low
//! bits of a release can then tell some true counts from their neighbours outright
//! (Mironov, "On Significance of the Least Significant Bits for Differential Privacy", CCS
//! 2012), which breaks ε-differential privacy however small ε is.
//!
//! The released values are counts, so integer noise loses nothing: the discrete Laplace
//! distribution, P(y) ∝ e^(−ε·|y|) over all integers, gives ε-differential privacy for a
//! count that one contributor changes by at most one, and its output is an integer whose
//! every bit is accounted for. It is sampled here exactly, with integer arithmetic and
//! Bernoulli trials only, by Canonne, Kamath and Steinke's algorithms ("The Discrete
//! Gaussian for Differential Privacy", NeurIPS 2020, algorithms 1 and 2), from a
//! cryptographically secure generator (a predictable generator would let the noise be
//! subtracted).

use rand::{CryptoRng, Rng};

/// ε is used as the rational `⌊ε·2^20⌋ / 2^20`: rounded down, so the privacy actually given
/// is never weaker than the configured one.
const DENOMINATOR: u64 = 1 << 20;

/// One draw from the discrete Laplace distribution P(y) ∝ e^(−ε·|y|), i.e. of scale 1/ε;
/// its variance is 2·e^(−ε)/(1−e^(−ε))². `epsilon` is rounded down to a multiple of 2^-20
/// (and at least 2^-20); a non-finite or non-positive one is treated as the smallest.
pub fn discrete_laplace<R: Rng + CryptoRng + ?Sized>(epsilon: f64, rng: &mut R) -> i64 {
    let numerator = if epsilon.is_finite() && epsilon > 0.0 {
        // Saturating float-to-int conversion; at least 1 so the noise stays finite.
        ((epsilon * DENOMINATOR as f64).floor() as u64).max(1)
    } else {
        1
    };
    sample(numerator, DENOMINATOR, rng)
}

/// CKS20 algorithm 2: a draw from DLap(t/s), P(y) ∝ e^(−|y|·s/t), for integers s, t ≥ 1.
fn sample<R: Rng + ?Sized>(s: u64, t: u64, rng: &mut R) -> i64 {
    loop {
        // X = U + t·V is geometric with ratio e^(−1/t): U uniform below t, kept with
        // probability e^(−U/t), and V geometric with ratio e^(−1).
        let u = uniform_below(t, rng);
        if !bernoulli_exp(u, t, rng) {
            continue;
        }
        let mut v: u64 = 0;
        while bernoulli_exp(1, 1, rng) {
            v += 1;
        }
        let x = u.saturating_add(t.saturating_mul(v));
        // ⌊X/s⌋ is geometric with ratio e^(−s/t); a random sign, with −0 refused so that
        // zero is not counted twice.
        let y = i64::try_from(x / s).unwrap_or(i64::MAX);
        let negative = rng.next_u32() & 1 == 1;
        if negative && y == 0 {
            continue;
        }
        return if negative { -y } else { y };
    }
}

/// CKS20 algorithm 1: true with probability e^(−n/d), for n ≥ 0, d ≥ 1.
fn bernoulli_exp<R: Rng + ?Sized>(n: u64, d: u64, rng: &mut R) -> bool {
    if n > d {
        // e^(−γ) = e^(−1)^⌊γ⌋ · e^(−(γ−⌊γ⌋)).
        for _ in 0..n / d {
            if !bernoulli_exp(1, 1, rng) {
                return false;
            }
        }
        return bernoulli_exp(n % d, d, rng);
    }
    // γ ≤ 1: K is the first k with a failed Bernoulli(γ/k); P(K odd) = e^(−γ).
    // Should d·k overflow, γ/k < 2^-44 and reaching it took 2^44 successes in a row: the
    // next trial failing is as good as certain, so it ends there.
    let mut k: u64 = 1;
    while let Some(dk) = d.checked_mul(k)
        && bernoulli(n, dk, rng)
    {
        k += 1;
    }
    k % 2 == 1
}

/// True with probability n/d exactly, for n ≤ d, d ≥ 1.
fn bernoulli<R: Rng + ?Sized>(n: u64, d: u64, rng: &mut R) -> bool {
    uniform_below(d, rng) < n
}

/// A uniform integer in [0, n), n ≥ 1, exactly: draws outside the largest multiple of n
/// that fits are redrawn rather than folded (folding would favour small values).
fn uniform_below<R: Rng + ?Sized>(n: u64, rng: &mut R) -> u64 {
    let zone = u64::MAX - (u64::MAX - n + 1) % n;
    loop {
        let x = rng.next_u64();
        if x <= zone {
            return x % n;
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    fn variance(epsilon: f64) -> f64 {
        let q = (-epsilon).exp();
        2.0 * q / ((1.0 - q) * (1.0 - q))
    }

    /// The sample variance of many draws matches the discrete Laplace distribution's,
    /// 2·e^(−1/b)/(1−e^(−1/b))² for scale b = 1/ε, and the mean is zero.
    #[test]
    fn spread_matches_the_distribution() {
        let mut rng = StdRng::seed_from_u64(20_200_401);
        for (epsilon, n) in [
            (1.0, 100_000),
            (0.5, 100_000),
            (0.1, 40_000),
            (3.0, 100_000),
        ] {
            let xs: Vec<f64> = (0..n)
                .map(|_| discrete_laplace(epsilon, &mut rng) as f64)
                .collect();
            let mean = xs.iter().sum::<f64>() / n as f64;
            let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1) as f64;
            let want = variance(epsilon);
            // Laplace kurtosis 6: the variance estimate's relative error is √(5/n) (< 1.2%
            // here); 5% leaves room without hiding a wrong distribution.
            assert!(
                (var - want).abs() / want < 0.05,
                "ε = {epsilon}: variance {var}, expected {want}"
            );
            assert!(
                mean.abs() < 4.0 * (want / n as f64).sqrt(),
                "ε = {epsilon}: mean {mean}"
            );
        }
    }

    /// P(0) = (1−q)/(1+q) with q = e^(−ε): zero is neither over- nor under-counted by the
    /// sign step.
    #[test]
    fn zero_has_its_mass() {
        let mut rng = StdRng::seed_from_u64(3);
        let n = 100_000;
        let zeros = (0..n)
            .filter(|_| discrete_laplace(1.0, &mut rng) == 0)
            .count();
        let q = (-1.0f64).exp();
        let want = (1.0 - q) / (1.0 + q);
        let got = zeros as f64 / n as f64;
        assert!((got - want).abs() < 0.01, "P(0) = {got}, expected {want}");
    }

    #[test]
    fn bernoulli_exp_has_its_probability() {
        let mut rng = StdRng::seed_from_u64(11);
        for (num, den) in [(0, 1), (1, 2), (1, 1), (3, 2), (5, 1)] {
            let n = 100_000;
            let hits = (0..n).filter(|_| bernoulli_exp(num, den, &mut rng)).count();
            let want = (-(num as f64) / den as f64).exp();
            let got = hits as f64 / n as f64;
            assert!((got - want).abs() < 0.01, "e^-{num}/{den}: {got} vs {want}");
        }
    }

    #[test]
    fn uniform_below_covers_its_range() {
        let mut rng = StdRng::seed_from_u64(5);
        let mut seen = [0u32; 7];
        for _ in 0..70_000 {
            seen[uniform_below(7, &mut rng) as usize] += 1;
        }
        assert!(
            seen.iter().all(|&c| (9_500..10_500).contains(&c)),
            "{seen:?}"
        );
        assert_eq!(uniform_below(1, &mut rng), 0);
        assert!(uniform_below(u64::MAX, &mut rng) < u64::MAX);
    }

    /// Odd budgets do not stall or overflow: tiny ε gives wide but finite noise.
    #[test]
    fn extreme_budgets_still_sample() {
        let mut rng = StdRng::seed_from_u64(9);
        for e in [f64::NAN, -1.0, 0.0, 1e-9, 1e-3, 50.0, f64::INFINITY] {
            let _ = discrete_laplace(e, &mut rng);
        }
        assert_eq!(discrete_laplace(1e6, &mut rng), 0, "huge ε: no noise");
    }
}
