//! Rank agreement between a predictor and the truth: Kendall τ-b, Spearman ρ (average ranks for
//! ties), precision of the top fraction, and percentile bootstrap intervals for each.
//!
//! Conventions: both slices are "higher is better"; `x[i]` and `y[i]` belong to the same
//! architecture. A metric that is undefined (fewer than two items, or one side all tied) is
//! `None`, never a made-up 0.

use crate::util::Rng;

/// Kendall's τ-b: (concordant − discordant) / √((n₀ − n₁)(n₀ − n₂)), where n₀ = n(n−1)/2 and
/// n₁, n₂ count the pairs tied in `x` and in `y`. A pair tied on either side is neither
/// concordant nor discordant.
pub fn kendall_tau_b(x: &[f64], y: &[f64]) -> Option<f64> {
    let n = x.len().min(y.len());
    if n < 2 {
        return None;
    }
    let (mut conc, mut disc, mut tie_x, mut tie_y) = (0i64, 0i64, 0i64, 0i64);
    for i in 0..n {
        for j in i + 1..n {
            let dx = x[i] - x[j];
            let dy = y[i] - y[j];
            if dx == 0.0 {
                tie_x += 1;
            }
            if dy == 0.0 {
                tie_y += 1;
            }
            if dx != 0.0 && dy != 0.0 {
                if (dx > 0.0) == (dy > 0.0) {
                    conc += 1;
                } else {
                    disc += 1;
                }
            }
        }
    }
    let n0 = (n * (n - 1) / 2) as i64;
    let denom = (((n0 - tie_x) * (n0 - tie_y)) as f64).sqrt();
    (denom > 0.0).then(|| (conc - disc) as f64 / denom)
}

/// Ranks 1..=n, tied values sharing the mean of their positions (1-based).
pub fn average_ranks(v: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    let mut ranks = vec![0.0; v.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && v[idx[j + 1]] == v[idx[i]] {
            j += 1;
        }
        let r = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            ranks[k] = r;
        }
        i = j + 1;
    }
    ranks
}

/// Pearson correlation; `None` when either side has no variance.
pub fn pearson(x: &[f64], y: &[f64]) -> Option<f64> {
    let n = x.len().min(y.len());
    if n < 2 {
        return None;
    }
    let mx = x[..n].iter().sum::<f64>() / n as f64;
    let my = y[..n].iter().sum::<f64>() / n as f64;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for i in 0..n {
        let (a, b) = (x[i] - mx, y[i] - my);
        sxy += a * b;
        sxx += a * a;
        syy += b * b;
    }
    (sxx > 0.0 && syy > 0.0).then(|| sxy / (sxx * syy).sqrt())
}

/// Spearman's ρ: Pearson correlation of the average ranks.
pub fn spearman_rho(x: &[f64], y: &[f64]) -> Option<f64> {
    let n = x.len().min(y.len());
    pearson(&average_ranks(&x[..n]), &average_ranks(&y[..n]))
}

/// Indices of the `k` largest values; ties at the boundary go to the lower index, so the
/// result is deterministic.
fn top_k(v: &[f64], k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&a, &b| v[b].total_cmp(&v[a]).then(a.cmp(&b)));
    idx.truncate(k);
    idx
}

/// Of the true top ⌈fraction·n⌉ items, the share the predictor also puts in its top
/// ⌈fraction·n⌉.
pub fn precision_at_top(pred: &[f64], truth: &[f64], fraction: f64) -> Option<f64> {
    let n = pred.len().min(truth.len());
    if n == 0 || !(fraction > 0.0 && fraction <= 1.0) {
        return None;
    }
    let k = ((fraction * n as f64).ceil() as usize).clamp(1, n);
    let p = top_k(&pred[..n], k);
    let t = top_k(&truth[..n], k);
    Some(p.iter().filter(|i| t.contains(i)).count() as f64 / k as f64)
}

/// A point estimate with its percentile bootstrap interval.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Estimate {
    pub value: f64,
    pub lo: f64,
    pub hi: f64,
    /// Resamples the metric was defined on (the rest drew only ties).
    pub resamples: usize,
}

impl std::fmt::Display for Estimate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:+.3} [{:+.3}, {:+.3}]", self.value, self.lo, self.hi)
    }
}

/// Nearest-rank percentile of sorted values (`q` in [0, 1]).
pub fn percentile_sorted(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = (q * (sorted.len() - 1) as f64).round() as usize;
    sorted[pos.min(sorted.len() - 1)]
}

/// `metric` on the data and a 95% percentile interval over `resamples` bootstrap resamples of
/// the items (pairs drawn with replacement), seeded. `None` when the metric is undefined on the
/// data itself.
pub fn bootstrap(pred: &[f64], truth: &[f64], metric: fn(&[f64], &[f64]) -> Option<f64>, resamples: usize, seed: u64) -> Option<Estimate> {
    let value = metric(pred, truth)?;
    let n = pred.len().min(truth.len());
    let mut rng = Rng::stream(seed, 0xB007, 0);
    let mut vals = Vec::with_capacity(resamples);
    let (mut p, mut t) = (vec![0.0; n], vec![0.0; n]);
    for _ in 0..resamples {
        for k in 0..n {
            let i = rng.below(n);
            p[k] = pred[i];
            t[k] = truth[i];
        }
        if let Some(v) = metric(&p, &t) {
            vals.push(v);
        }
    }
    vals.sort_by(f64::total_cmp);
    let (lo, hi) = if vals.is_empty() { (value, value) } else { (percentile_sorted(&vals, 0.025), percentile_sorted(&vals, 0.975)) };
    Some(Estimate { value, lo, hi, resamples: vals.len() })
}

/// As [`bootstrap`], but the truth is each architecture's seeds (`seeds[i]`, its value their
/// mean): every resample draws the architectures with replacement *and*, for each, its seeds
/// with replacement, so the truth's own seed noise widens the interval. With one seed per
/// architecture (or identical seeds) this is the plain bootstrap.
pub fn bootstrap_nested(
    pred: &[f64],
    seeds: &[Vec<f64>],
    metric: fn(&[f64], &[f64]) -> Option<f64>,
    resamples: usize,
    seed: u64,
) -> Option<Estimate> {
    let n = pred.len().min(seeds.len());
    bootstrap_nested_by(
        &seeds[..n],
        &|idx: &[usize], t: &[f64]| metric(&idx.iter().map(|&i| pred[i]).collect::<Vec<_>>(), t),
        resamples,
        seed,
    )
}

/// A statistic of resampled architectures: `f(indices, their truth values)`.
pub type Statistic<'a> = &'a dyn Fn(&[usize], &[f64]) -> Option<f64>;

/// The nested bootstrap of any statistic `f(indices, truth values)`: `f` gets the resampled
/// architectures' indices and, for each, the mean of its resampled seeds (on the data itself:
/// every index once and the seed means).
pub fn bootstrap_nested_by(seeds: &[Vec<f64>], f: Statistic, resamples: usize, seed: u64) -> Option<Estimate> {
    let n = seeds.len();
    if seeds.iter().any(|s| s.is_empty()) {
        return None;
    }
    let all: Vec<usize> = (0..n).collect();
    let truth: Vec<f64> = seeds.iter().map(|s| s.iter().sum::<f64>() / s.len() as f64).collect();
    let value = f(&all, &truth)?;
    let mut rng = Rng::stream(seed, 0xB0B0, 0);
    let mut vals = Vec::with_capacity(resamples);
    let (mut idx, mut t) = (vec![0usize; n], vec![0.0; n]);
    for _ in 0..resamples {
        for k in 0..n {
            let i = rng.below(n);
            idx[k] = i;
            let s = &seeds[i];
            t[k] = (0..s.len()).map(|_| s[rng.below(s.len())]).sum::<f64>() / s.len() as f64;
        }
        if let Some(v) = f(&idx, &t) {
            vals.push(v);
        }
    }
    vals.sort_by(f64::total_cmp);
    // Resampling seeds adds noise to a truth that already carries it, which attenuates a rank
    // statistic a second time: the interval keeps the resamples' spread around their median but
    // is centred on the estimate itself.
    let (lo, hi) = if vals.is_empty() {
        (value, value)
    } else {
        let mid = percentile_sorted(&vals, 0.5);
        (value - (mid - percentile_sorted(&vals, 0.025)), value + (percentile_sorted(&vals, 0.975) - mid))
    };
    Some(Estimate { value, lo, hi, resamples: vals.len() })
}

/// Kendall's partial τ of `x` and `y` given `z`:
/// (τ_xy − τ_xz·τ_yz) / √((1 − τ_xz²)(1 − τ_yz²)). `None` when undefined (z ranks x or y perfectly).
pub fn partial_tau(x: &[f64], y: &[f64], z: &[f64]) -> Option<f64> {
    let (xy, xz, yz) = (kendall_tau_b(x, y)?, kendall_tau_b(x, z)?, kendall_tau_b(y, z)?);
    let d = ((1.0 - xz * xz) * (1.0 - yz * yz)).sqrt();
    (d > 1e-12).then(|| (xy - xz * yz) / d)
}

/// `metric(a) − metric(b)` against the same `truth`, with a 95% percentile interval from a
/// *paired* bootstrap: each resample draws one set of items for both predictors, so the
/// interval is that of the difference itself (narrower than comparing two separate intervals
/// when the predictors err on the same architectures). `None` when undefined on the data.
pub fn paired_difference(
    a: &[f64],
    b: &[f64],
    truth: &[f64],
    metric: fn(&[f64], &[f64]) -> Option<f64>,
    resamples: usize,
    seed: u64,
) -> Option<Estimate> {
    let value = metric(a, truth)? - metric(b, truth)?;
    let n = a.len().min(b.len()).min(truth.len());
    let mut rng = Rng::stream(seed, 0xD1FF, 0);
    let mut vals = Vec::with_capacity(resamples);
    let (mut pa, mut pb, mut t) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
    for _ in 0..resamples {
        for k in 0..n {
            let i = rng.below(n);
            (pa[k], pb[k], t[k]) = (a[i], b[i], truth[i]);
        }
        if let (Some(x), Some(y)) = (metric(&pa, &t), metric(&pb, &t)) {
            vals.push(x - y);
        }
    }
    vals.sort_by(f64::total_cmp);
    let (lo, hi) = if vals.is_empty() { (value, value) } else { (percentile_sorted(&vals, 0.025), percentile_sorted(&vals, 0.975)) };
    Some(Estimate { value, lo, hi, resamples: vals.len() })
}

/// Precision of the top quarter, as a metric function for [`bootstrap`].
pub fn precision_top_quarter(pred: &[f64], truth: &[f64]) -> Option<f64> {
    precision_at_top(pred, truth, 0.25)
}

/// Where `value` stands among `others`: the share of them it beats, ties counting half
/// (0 = worst, 1 = better than every one).
pub fn percentile_among(value: f64, others: &[f64]) -> Option<f64> {
    if others.is_empty() {
        return None;
    }
    let score: f64 = others
        .iter()
        .map(|&o| {
            if value > o {
                1.0
            } else if value == o {
                0.5
            } else {
                0.0
            }
        })
        .sum();
    Some(score / others.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn kendall_by_hand() {
        // Perfect agreement and reversal.
        assert!(close(kendall_tau_b(&[1., 2., 3., 4.], &[10., 20., 30., 40.]).unwrap(), 1.0));
        assert!(close(kendall_tau_b(&[1., 2., 3., 4.], &[4., 3., 2., 1.]).unwrap(), -1.0));
        // x = 1 2 3 4, y = 1 3 2 4: pairs (2,3) discordant, 5 concordant → (5−1)/6.
        assert!(close(kendall_tau_b(&[1., 2., 3., 4.], &[1., 3., 2., 4.]).unwrap(), 4.0 / 6.0));
        // Ties: x = 1 1 2 3, y = 1 2 3 3. n0 = 6, tied in x: (0,1) → n1 = 1; tied in y: (2,3) → n2 = 1.
        // Pairs: (0,1) x-tie; (0,2) c; (0,3) c; (1,2) c; (1,3) c; (2,3) y-tie → C = 4, D = 0.
        // τ-b = 4 / √(5·5) = 0.8.
        assert!(close(kendall_tau_b(&[1., 1., 2., 3.], &[1., 2., 3., 3.]).unwrap(), 0.8));
        // Ties on both sides of one pair: x = 1 1 2, y = 5 5 6 → C = 2, n1 = n2 = 1 → 2/√(2·2) = 1.
        assert!(close(kendall_tau_b(&[1., 1., 2.], &[5., 5., 6.]).unwrap(), 1.0));
        // Undefined cases.
        assert_eq!(kendall_tau_b(&[1.], &[2.]), None);
        assert_eq!(kendall_tau_b(&[3., 3., 3.], &[1., 2., 3.]), None);
    }

    #[test]
    fn spearman_by_hand() {
        assert_eq!(average_ranks(&[10., 30., 20., 30.]), vec![1.0, 3.5, 2.0, 3.5]);
        // x = 1 2 3 4 5, y = 2 1 4 3 5: d² = 1+1+1+1+0 = 4 → 1 − 6·4/(5·24) = 0.8 (no ties).
        assert!(close(spearman_rho(&[1., 2., 3., 4., 5.], &[2., 1., 4., 3., 5.]).unwrap(), 0.8));
        // Ties: x ranks 1 2 3 4, y = 1 2 2 3 → ranks 1 2.5 2.5 4; Pearson of the ranks by hand:
        // mean 2.5 both; Σab = 2.25 + 0 + 0 + 2.25 = 4.5; Σa² = 5; Σb² = 2.25+0+0+2.25 = 4.5 → 4.5/√22.5.
        assert!(close(spearman_rho(&[1., 2., 3., 4.], &[1., 2., 2., 3.]).unwrap(), 4.5 / 22.5f64.sqrt()));
        assert_eq!(spearman_rho(&[1., 1.], &[1., 2.]), None);
    }

    #[test]
    fn precision_and_percentile() {
        // n = 8 → k = 2. Truth top-2: items 7, 6; predictor's top-2: 7, 0 → 1/2.
        let truth = [0., 1., 2., 3., 4., 5., 6., 7.];
        let pred = [9., 1., 2., 3., 4., 5., 6., 10.];
        assert!(close(precision_at_top(&pred, &truth, 0.25).unwrap(), 0.5));
        assert!(close(precision_at_top(&truth, &truth, 0.25).unwrap(), 1.0));
        // n = 5 → k = ⌈1.25⌉ = 2.
        assert!(close(precision_at_top(&[5., 4., 3., 2., 1.], &[1., 2., 3., 4., 5.], 0.25).unwrap(), 0.0));
        assert!(close(percentile_among(5.0, &[1., 2., 5., 9.]).unwrap(), 0.625));
        assert_eq!(percentile_among(1.0, &[]), None);
    }

    #[test]
    fn bootstrap_is_seeded_and_brackets_the_value() {
        let x: Vec<f64> = (0..30).map(|i| i as f64).collect();
        let y: Vec<f64> = (0..30).map(|i| i as f64 + if i % 3 == 0 { 5.0 } else { 0.0 }).collect();
        let a = bootstrap(&x, &y, kendall_tau_b, 500, 7).unwrap();
        let b = bootstrap(&x, &y, kendall_tau_b, 500, 7).unwrap();
        assert_eq!(a, b);
        assert!(a.lo <= a.value && a.value <= a.hi, "{a}");
        assert!(a.hi - a.lo > 0.0 && a.hi <= 1.0);
        // Perfect agreement: every resample gives 1 (or is undefined), so the interval is [1, 1].
        let p = bootstrap(&x, &x, kendall_tau_b, 200, 1).unwrap();
        assert!(close(p.lo, 1.0) && close(p.hi, 1.0));
    }

    #[test]
    fn nested_bootstrap_widens_with_seed_noise_only() {
        let n = 24;
        let pred: Vec<f64> = (0..n).map(|i| i as f64).collect();
        // Noiseless: both seeds equal the architecture's value (a monotone function of pred
        // with a few swaps) — the nested interval is the plain one.
        let value: Vec<f64> = (0..n).map(|i| i as f64 + if i % 4 == 0 { 2.5 } else { 0.0 }).collect();
        let quiet: Vec<Vec<f64>> = value.iter().map(|&v| vec![v, v]).collect();
        let plain = bootstrap(&pred, &value, kendall_tau_b, 1000, 5).unwrap();
        let nested = bootstrap_nested(&pred, &quiet, kendall_tau_b, 1000, 5).unwrap();
        assert!(close(plain.value, nested.value));
        let width = |e: &Estimate| e.hi - e.lo;
        assert!((width(&nested) - width(&plain)).abs() < 0.08, "{nested} vs {plain}");
        // Scripted noise: seeds ±3 around the same values (their mean is unchanged, so the
        // point estimate is the same), the interval must widen.
        let noisy: Vec<Vec<f64>> =
            value.iter().enumerate().map(|(i, &v)| if i % 2 == 0 { vec![v - 5.0, v + 5.0] } else { vec![v + 5.0, v - 5.0] }).collect();
        let wide = bootstrap_nested(&pred, &noisy, kendall_tau_b, 1000, 5).unwrap();
        assert!(close(wide.value, plain.value));
        assert!(width(&wide) > 1.25 * width(&nested), "{wide} vs {nested}");
        assert!(wide.lo <= wide.value && wide.value <= wide.hi, "{wide}");
        assert!(bootstrap_nested(&pred, &[vec![]], kendall_tau_b, 10, 1).is_none());
    }

    #[test]
    fn partial_tau_removes_a_shared_cause() {
        // x and y both follow z exactly: with z held fixed nothing is left, undefined.
        let z: Vec<f64> = (0..10).map(|i| i as f64).collect();
        assert_eq!(partial_tau(&z, &z, &z), None);
        // By hand: τ_xy = 0.6, τ_xz = 0.5, τ_yz = 0.4 can't be scripted directly, so check the
        // formula on data: x = 1 2 3 4, y = 1 3 2 4, z = 2 1 3 4.
        let (x, y, zz) = ([1., 2., 3., 4.], [1., 3., 2., 4.], [2., 1., 3., 4.]);
        let (a, b, c) = (kendall_tau_b(&x, &y).unwrap(), kendall_tau_b(&x, &zz).unwrap(), kendall_tau_b(&y, &zz).unwrap());
        assert!(close(a, 4.0 / 6.0) && close(b, 4.0 / 6.0) && close(c, 2.0 / 6.0));
        let want = (a - b * c) / ((1.0 - b * b) * (1.0 - c * c)).sqrt();
        assert!(close(partial_tau(&x, &y, &zz).unwrap(), want));
        // x unrelated to z (τ_xz = 0): partial = τ_xy / √(1 − τ_yz²).
        let (x, y, z0) = ([1., 2., 3., 4.], [1., 2., 4., 3.], [2., 1., 1., 2.]);
        assert!(kendall_tau_b(&x, &z0).unwrap().abs() < 1e-12);
        let yz = kendall_tau_b(&y, &z0).unwrap();
        assert!(close(yz, -2.0 / 24f64.sqrt()), "{yz}");
        assert!(close(partial_tau(&x, &y, &z0).unwrap(), kendall_tau_b(&x, &y).unwrap() / (1.0 - yz * yz).sqrt()));
    }

    #[test]
    fn paired_difference_is_exact_for_perfect_and_reversed_predictors() {
        let truth: Vec<f64> = (0..12).map(|i| i as f64 * 0.5 + if i % 3 == 0 { 0.1 } else { 0.0 }).collect();
        let reversed: Vec<f64> = truth.iter().map(|v| -v).collect();
        let d = paired_difference(&truth, &reversed, &truth, kendall_tau_b, 500, 3).unwrap();
        // τ = +1 and −1 on every resample that is not all ties: the difference is exactly 2.
        assert_eq!((d.value, d.lo, d.hi), (2.0, 2.0, 2.0));
        let same = paired_difference(&reversed, &reversed, &truth, kendall_tau_b, 500, 3).unwrap();
        assert_eq!((same.value, same.lo, same.hi), (0.0, 0.0, 0.0));
        // A noisy predictor against a perfect one: against τ = 1 on every resample, the
        // difference is τ_noisy − 1, negative, with the point estimate inside its interval.
        let noisy: Vec<f64> = truth.iter().enumerate().map(|(i, v)| v + if i % 2 == 0 { 1.3 } else { -1.3 }).collect();
        let d = paired_difference(&noisy, &truth, &truth, kendall_tau_b, 2000, 3).unwrap();
        let a = bootstrap(&noisy, &truth, kendall_tau_b, 2000, 3).unwrap();
        assert!((d.value - (a.value - 1.0)).abs() < 1e-12 && d.lo <= d.value && d.value <= d.hi && d.hi < 0.0, "{d} vs {a}");
    }
}
