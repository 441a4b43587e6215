//! How much of a truth set is architecture and how much is seed: the one-way random-effects
//! ANOVA behind the intraclass correlation ICC(1), the reliability of a k-seed mean
//! (Spearman–Brown), and the ceiling that reliability puts on any predictor's rank agreement.
//!
//! Model: `y[a][s] = μ + α_a + ε_as`, α ~ (0, σ²_between), ε ~ (0, σ²_within). With `g`
//! architectures, `N` runs and `n_a` seeds of architecture `a`:
//! - MSB = Σ n_a (ȳ_a − ȳ)² / (g − 1), MSW = Σ Σ (y_as − ȳ_a)² / (N − g);
//! - n₀ = (N − Σ n_a² / N) / (g − 1) (the mean group size, corrected for imbalance);
//! - σ²_between = (MSB − MSW) / n₀ (floored at 0), σ²_within = MSW;
//! - ICC(1) = (MSB − MSW) / (MSB + (n₀ − 1) MSW), the reliability of one seed;
//! - the reliability of a k-seed mean: k·ICC / (1 + (k − 1)·ICC).
//!
//! A perfect predictor scored against a truth of reliability R reaches, in expectation under
//! normality, Pearson r = √R, hence Kendall τ = (2/π)·asin(√R): the attenuation ceiling.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reliability {
    /// Architectures with at least one seed, and of them those with two or more.
    pub archs: usize,
    pub repeated: usize,
    pub runs: usize,
    /// Mean seeds per architecture, corrected for imbalance (n₀).
    pub n0: f64,
    /// √MSW: the std of one seed around its architecture's mean.
    pub within_std: f64,
    /// √σ²_between: the std of the architectures' true means.
    pub between_std: f64,
    /// ICC(1): the reliability of one seed's value.
    pub icc1: f64,
    /// The reliability of the truth value as used (the mean of n₀ seeds).
    pub icc_mean: f64,
    /// τ a perfect predictor reaches in expectation against the truth as used.
    pub tau_ceiling: f64,
}

/// Spearman–Brown: the reliability of a mean of `k` seeds from that of one.
pub fn reliability_of_mean(icc1: f64, k: f64) -> f64 {
    if icc1 <= 0.0 {
        return icc1.max(0.0);
    }
    k * icc1 / (1.0 + (k - 1.0) * icc1)
}

/// The expected Kendall τ of a perfect predictor against a truth of reliability `r`.
pub fn tau_ceiling(r: f64) -> f64 {
    (2.0 / std::f64::consts::PI) * r.clamp(0.0, 1.0).sqrt().asin()
}

/// An observed τ corrected for the truth's unreliability (clamped to [−1, 1]).
pub fn tau_corrected(tau: f64, r: f64) -> Option<f64> {
    (r > 0.0).then(|| {
        let pearson = (std::f64::consts::FRAC_PI_2 * tau).sin() / r.sqrt();
        (2.0 / std::f64::consts::PI) * pearson.clamp(-1.0, 1.0).asin()
    })
}

/// The ANOVA estimate from the seeds of each architecture. `None` without at least two
/// architectures, one of them with two seeds (no within-architecture variance to measure).
pub fn reliability(groups: &[Vec<f64>]) -> Option<Reliability> {
    let groups: Vec<&Vec<f64>> = groups.iter().filter(|g| !g.is_empty()).collect();
    let g = groups.len();
    let n: usize = groups.iter().map(|v| v.len()).sum();
    if g < 2 || n <= g {
        return None;
    }
    let grand = groups.iter().flat_map(|v| v.iter()).sum::<f64>() / n as f64;
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let ssb: f64 = groups.iter().map(|v| v.len() as f64 * (mean(v) - grand).powi(2)).sum();
    let ssw: f64 = groups.iter().map(|v| v.iter().map(|y| (y - mean(v)).powi(2)).sum::<f64>()).sum();
    let msb = ssb / (g - 1) as f64;
    let msw = ssw / (n - g) as f64;
    let n0 = (n as f64 - groups.iter().map(|v| (v.len() * v.len()) as f64).sum::<f64>() / n as f64) / (g - 1) as f64;
    let denom = msb + (n0 - 1.0) * msw;
    let icc1 = if denom > 0.0 { (msb - msw) / denom } else { 0.0 };
    let icc_mean = reliability_of_mean(icc1, n0);
    Some(Reliability {
        archs: g,
        repeated: groups.iter().filter(|v| v.len() > 1).count(),
        runs: n,
        n0,
        within_std: msw.sqrt(),
        between_std: ((msb - msw) / n0).max(0.0).sqrt(),
        icc1,
        icc_mean,
        tau_ceiling: tau_ceiling(icc_mean),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn icc_by_hand() {
        // Three architectures, two seeds each: means 2, 5, 8; grand mean 5.
        // SSB = 2·(9 + 0 + 9) = 36, MSB = 18; SSW = (1+1) + (0+0) + (1+1)... per group:
        // {1,3}: 1+1 = 2; {5,5}: 0; {7,9}: 2 → SSW = 4, MSW = 4/3. n₀ = (6 − 12/6)/2 = 2.
        // ICC(1) = (18 − 4/3)/(18 + 4/3) = (50/3)/(58/3) = 50/58.
        let r = reliability(&[vec![1.0, 3.0], vec![5.0, 5.0], vec![7.0, 9.0]]).unwrap();
        assert!(close(r.n0, 2.0));
        assert!(close(r.icc1, 50.0 / 58.0), "{}", r.icc1);
        assert!(close(r.within_std, (4.0f64 / 3.0).sqrt()));
        // σ²_between = (18 − 4/3)/2 = 25/3.
        assert!(close(r.between_std, (25.0f64 / 3.0).sqrt()));
        // Mean of 2: 2·ρ/(1+ρ) = (100/58)/(108/58) = 100/108.
        assert!(close(r.icc_mean, 100.0 / 108.0));
        assert_eq!((r.archs, r.repeated, r.runs), (3, 3, 6));
        // Unbalanced: {1,3}, {5}, {7,8,9}: N = 6, g = 3, Σn² = 4+1+9 = 14 → n₀ = (6 − 14/6)/2 = 11/6.
        let u = reliability(&[vec![1.0, 3.0], vec![5.0], vec![7.0, 8.0, 9.0]]).unwrap();
        assert!(close(u.n0, 11.0 / 6.0));
        // grand = 33/6 = 5.5; SSB = 2·(2−5.5)² + (5−5.5)² + 3·(8−5.5)² = 24.5 + 0.25 + 18.75 = 43.5, MSB = 21.75;
        // SSW = 2 + 0 + 2 = 4, MSW = 4/3.
        let (msb, msw, n0) = (21.75, 4.0 / 3.0, 11.0 / 6.0);
        assert!(close(u.icc1, (msb - msw) / (msb + (n0 - 1.0) * msw)));
    }

    #[test]
    fn pure_noise_has_no_reliability_and_no_ceiling() {
        // Every architecture the same up to seed noise: MSB < MSW → ICC ≤ 0, floored ceiling 0.
        let r = reliability(&[vec![1.0, 2.0], vec![2.0, 1.0], vec![1.5, 1.5]]).unwrap();
        assert!(r.icc1 <= 0.0 && r.between_std == 0.0 && r.tau_ceiling == 0.0, "{r:?}");
        assert!(reliability(&[vec![1.0], vec![2.0]]).is_none(), "no repeats: no within variance");
        assert!(reliability(&[vec![1.0, 2.0]]).is_none(), "one architecture");
    }

    #[test]
    fn ceiling_and_correction() {
        assert!(close(tau_ceiling(1.0), 1.0));
        assert!(close(tau_ceiling(0.0), 0.0));
        // r = 0.5 → Pearson √0.5 → τ = (2/π) asin(0.7071) = 0.5.
        assert!(close(tau_ceiling(0.5), 0.5));
        // A τ at the ceiling corrects to 1.
        assert!(close(tau_corrected(tau_ceiling(0.3), 0.3).unwrap(), 1.0));
        assert!(tau_corrected(0.2, 0.0).is_none());
        assert!(close(reliability_of_mean(0.5, 2.0), 2.0 / 3.0));
    }
}
