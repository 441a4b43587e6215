//! A strategy's picks over several search seeds against the band set — the MACs-matched
//! random baseline (architectures drawn uniformly at the budget, retrained with the same recipe
//! and seeds as the picks).
//!
//! Per strategy: each search seed's pick (its retrained seeds and their mean, its percentile in
//! the band); the mean pick with a t-interval over search seeds; an exact one-sided permutation
//! test of "the picks are better than band architectures" (p = the share of equally sized
//! subsets of band ∪ picks whose mean reaches the picks' mean); and, when a search cost buys
//! more than one truth training, random search at equal compute simulated on the band set
//! (draw B band architectures, keep the best by one seed, score it by another, so the winner's
//! curse is not counted as skill).

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

use super::metrics::{percentile_among, percentile_sorted};
use super::truth::{PlanEntry, StudyDir, Truth};
use crate::util::Rng;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SeedPick {
    /// The search run (one search seed).
    pub run: String,
    pub key: String,
    pub macs: u64,
    pub params: u64,
    /// Test top-1 of each retraining seed.
    pub seeds: Vec<f64>,
    pub top1: f64,
    /// Share of the band set it beats (ties half).
    pub band_percentile: f64,
    /// Wall seconds of the search that produced it, when the run records them.
    pub search_seconds: Option<f64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BandSummary {
    pub archs: usize,
    pub mean: f64,
    pub std: f64,
    pub best: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RandomSearch {
    /// Truth trainings one search's cost buys (B).
    pub trainings: usize,
    /// Expected top-1 of its pick and the 2.5–97.5% range of single outcomes.
    pub mean: f64,
    pub lo: f64,
    pub hi: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PicksReport {
    pub format: String,
    pub version: u32,
    pub name: String,
    pub budget: serde_json::Value,
    pub picks: Vec<SeedPick>,
    /// Mean of the picks' top-1 over search seeds, with a 95% t-interval (None below 2 seeds).
    pub mean: f64,
    pub interval: Option<(f64, f64)>,
    pub band: BandSummary,
    pub band_percentile_mean: f64,
    /// One-sided exact permutation p of "picks better than the band".
    pub p_vs_band: f64,
    pub search_seconds_mean: Option<f64>,
    /// Seconds of one truth training (mean over the band's runs).
    pub truth_train_seconds: Option<f64>,
    pub random_search: Option<RandomSearch>,
}

/// Two-sided 95% Student t quantile for `df` degrees of freedom.
pub fn t975(df: usize) -> f64 {
    const T: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101,
        2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
    ];
    match df {
        0 => f64::INFINITY,
        1..=30 => T[df - 1],
        31..=60 => 2.000 + (2.042 - 2.000) * (60 - df) as f64 / 30.0,
        _ => 1.960,
    }
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

fn std(v: &[f64]) -> f64 {
    if v.len() < 2 {
        return 0.0;
    }
    let m = mean(v);
    (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64).sqrt()
}

/// The exact one-sided permutation p-value that `picks` are drawn from higher values than
/// `band`: among all subsets of band ∪ picks of the picks' size, the share whose mean is at
/// least the picks' mean. Enumerated when there are at most 2·10⁶ subsets, else 200,000 seeded
/// random subsets.
pub fn permutation_p(picks: &[f64], band: &[f64], seed: u64) -> f64 {
    let k = picks.len();
    let all: Vec<f64> = band.iter().chain(picks).copied().collect();
    let n = all.len();
    if k == 0 || k >= n {
        return 1.0;
    }
    let target = picks.iter().sum::<f64>() - 1e-12;
    let subsets = (0..k).fold(1f64, |acc, i| acc * (n - i) as f64 / (i + 1) as f64);
    let (mut hit, mut total) = (0u64, 0u64);
    if subsets <= 2e6 {
        let mut idx: Vec<usize> = (0..k).collect();
        loop {
            total += 1;
            if idx.iter().map(|&i| all[i]).sum::<f64>() >= target {
                hit += 1;
            }
            // Next combination in lexicographic order.
            let mut i = k;
            while i > 0 && idx[i - 1] == n - k + i - 1 {
                i -= 1;
            }
            if i == 0 {
                break;
            }
            idx[i - 1] += 1;
            for j in i..k {
                idx[j] = idx[j - 1] + 1;
            }
        }
    } else {
        let mut rng = Rng::stream(seed, 0x9E4B, 0);
        let mut order: Vec<usize> = (0..n).collect();
        for _ in 0..200_000 {
            rng.shuffle(&mut order);
            total += 1;
            if order[..k].iter().map(|&i| all[i]).sum::<f64>() >= target {
                hit += 1;
            }
        }
    }
    hit as f64 / total as f64
}

/// Random search with `b` truth trainings, simulated on band architectures with two or more
/// seeds: `b` distinct ones drawn, the best by its first seed kept, its second seed reported.
pub fn random_search(band_seeds: &[Vec<f64>], b: usize, resamples: usize, seed: u64) -> Option<RandomSearch> {
    let pool: Vec<&Vec<f64>> = band_seeds.iter().filter(|s| s.len() >= 2).collect();
    if b < 2 || pool.len() < b {
        return None;
    }
    let mut rng = Rng::stream(seed, 0x4A5E, 0);
    let mut order: Vec<usize> = (0..pool.len()).collect();
    let mut vals: Vec<f64> = (0..resamples)
        .map(|_| {
            rng.shuffle(&mut order);
            let best = order[..b].iter().copied().max_by(|&i, &j| pool[i][0].total_cmp(&pool[j][0]).then(j.cmp(&i))).unwrap_or(0);
            pool[best][1]
        })
        .collect();
    vals.sort_by(f64::total_cmp);
    Some(RandomSearch { trainings: b, mean: mean(&vals), lo: percentile_sorted(&vals, 0.025), hi: percentile_sorted(&vals, 0.975) })
}

/// The report from each search seed's pick and the band set (each architecture's seeds).
pub fn picks_report(
    name: &str,
    budget: serde_json::Value,
    picks: Vec<SeedPick>,
    band_seeds: &[Vec<f64>],
    truth_train_seconds: Option<f64>,
    seed: u64,
) -> Result<PicksReport> {
    let band: Vec<f64> = band_seeds.iter().filter(|s| !s.is_empty()).map(|s| mean(s)).collect();
    if band.len() < 2 {
        bail!("the band set has {} finished architectures; comparing picks needs at least 2", band.len());
    }
    if picks.is_empty() {
        bail!("no pick is retrained yet");
    }
    let mut picks = picks;
    for p in &mut picks {
        p.band_percentile = percentile_among(p.top1, &band).unwrap_or(f64::NAN);
    }
    let tops: Vec<f64> = picks.iter().map(|p| p.top1).collect();
    let m = mean(&tops);
    let interval = (tops.len() >= 2).then(|| {
        let h = t975(tops.len() - 1) * std(&tops) / (tops.len() as f64).sqrt();
        (m - h, m + h)
    });
    let costs: Vec<f64> = picks.iter().filter_map(|p| p.search_seconds).collect();
    let search_seconds_mean = (!costs.is_empty()).then(|| mean(&costs));
    let random = match (search_seconds_mean, truth_train_seconds) {
        (Some(s), Some(t)) if t > 0.0 => random_search(band_seeds, (s / t).floor() as usize, 20_000, seed),
        _ => None,
    };
    Ok(PicksReport {
        format: "dnas.study.picks".into(),
        version: 1,
        name: name.into(),
        budget,
        band_percentile_mean: mean(&picks.iter().map(|p| p.band_percentile).collect::<Vec<_>>()),
        p_vs_band: permutation_p(&tops, &band, seed),
        band: BandSummary { archs: band.len(), mean: mean(&band), std: std(&band), best: band.iter().cloned().fold(f64::MIN, f64::max) },
        mean: m,
        interval,
        picks,
        search_seconds_mean,
        truth_train_seconds,
        random_search: random,
    })
}

/// The picks of a finished (or partly finished) `picks-<name>` plan against the study's band
/// set: each pick's retrained top-1 over its seeds, with its run's name and search seconds
/// (`runs`, in plan order), summarised by [`picks_report`].
pub fn collect(
    study: &StudyDir,
    name: &str,
    budget: serde_json::Value,
    plan: &[PlanEntry],
    runs: &[(String, Option<f64>)],
) -> Result<PicksReport> {
    let band = Truth::load(study, "band")?;
    let band_seeds: Vec<Vec<f64>> = band.archs.iter().map(|x| x.top1.values().copied().collect()).collect();
    let runs_done: Vec<_> = band.archs.iter().flat_map(|x| x.top1.keys().map(move |s| (x.key.clone(), *s))).collect();
    let mut secs = Vec::new();
    for (k, s) in &runs_done {
        if let Some(r) = study.result(k, *s)? {
            secs.push(r.seconds);
        }
    }
    let truth_secs = (!secs.is_empty()).then(|| secs.iter().sum::<f64>() / secs.len() as f64);
    let mut picks = Vec::new();
    for (e, (run, search_seconds)) in plan.iter().zip(runs) {
        let mut seeds = Vec::new();
        for &s in &e.seeds {
            if let Some(t) = study.result(&e.key, s)?.and_then(|r| r.test_top1) {
                seeds.push(t);
            }
        }
        if seeds.is_empty() {
            continue;
        }
        picks.push(SeedPick {
            run: run.clone(),
            key: e.key.clone(),
            macs: e.macs,
            params: e.params,
            top1: seeds.iter().sum::<f64>() / seeds.len() as f64,
            seeds,
            band_percentile: f64::NAN,
            search_seconds: *search_seconds,
        });
    }
    picks_report(name, budget, picks, &band_seeds, truth_secs, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permutation_p_by_hand() {
        // band 1 2 3, pick 4: subsets of size 1 of {1,2,3,4} reaching 4: one of four.
        assert!((permutation_p(&[4.0], &[1.0, 2.0, 3.0], 0) - 0.25).abs() < 1e-12);
        // Picks 3 and 4 of {1,2,3,4}: pairs with sum ≥ 7: only {3,4} → 1/6.
        assert!((permutation_p(&[3.0, 4.0], &[1.0, 2.0], 0) - 1.0 / 6.0).abs() < 1e-12);
        // The worst pick: every subset reaches it.
        assert!((permutation_p(&[0.0], &[1.0, 2.0], 0) - 1.0).abs() < 1e-12);
        // Sampled (too many subsets to enumerate) agrees with the exact value within noise:
        // 3 picks at the top of 300 → p = 1 / C(303, 3) ≈ 0.
        let band: Vec<f64> = (0..300).map(|i| i as f64).collect();
        assert!(permutation_p(&[400.0, 401.0, 402.0], &band, 1) < 1e-4);
        let mid = permutation_p(&[150.0, 151.0, 149.0], &band, 1);
        assert!((mid - 0.5).abs() < 0.02, "{mid}");
    }

    #[test]
    fn report_percentiles_interval_and_random_search() {
        let band: Vec<Vec<f64>> = (0..10).map(|i| vec![0.80 + 0.01 * i as f64, 0.80 + 0.01 * i as f64]).collect();
        let pick = |top1: f64| SeedPick {
            run: "r".into(),
            key: format!("k{top1}"),
            macs: 0,
            params: 0,
            seeds: vec![top1],
            top1,
            band_percentile: 0.0,
            search_seconds: Some(250.0),
        };
        let r = picks_report("x", serde_json::json!({}), vec![pick(0.885), pick(0.895), pick(0.905)], &band, Some(100.0), 0).unwrap();
        assert!((r.mean - 0.895).abs() < 1e-12);
        let (lo, hi) = r.interval.unwrap();
        // sd = 0.01, t(2) = 4.303 → half-width 0.01·4.303/√3.
        assert!((hi - lo - 2.0 * 0.01 * 4.303 / 3f64.sqrt()).abs() < 1e-9);
        assert!((r.picks[0].band_percentile - 0.9).abs() < 1e-12 && (r.picks[2].band_percentile - 1.0).abs() < 1e-12);
        assert!(r.p_vs_band < 0.01, "{}", r.p_vs_band);
        // 250 s of search / 100 s a training → 2 trainings of random search.
        let rs = r.random_search.unwrap();
        assert_eq!(rs.trainings, 2);
        // With seeds equal, the best of 2 of 10 evenly spaced: E = Σ over ranks = (2/90)·Σ_{j} (j)·0.01 + 0.80 …
        // checked against enumeration: E[max of 2 distinct of 0..9] = 2·Σ j·j / 90 = 2·285/90 = 6.333.
        assert!((rs.mean - (0.80 + 0.01 * 6.3333)).abs() < 0.002, "{}", rs.mean);
        assert!(picks_report("x", serde_json::json!({}), vec![], &band, None, 0).is_err());
    }
}
