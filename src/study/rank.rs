//! `dnas study rank`: a predictor's scores for every finished truth architecture against their
//! retrained top-1 — Kendall τ-b, Spearman ρ and precision of the top quarter, each with a
//! bootstrap 95% interval — next to the noise ceiling (τ between two seeds of the truth).

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

use super::metrics::{bootstrap, kendall_tau_b, paired_difference, precision_top_quarter, spearman_rho, Estimate};
use super::predict::Predictor;
use super::truth::{Noise, Truth};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Predicted {
    pub key: String,
    pub macs: u64,
    pub predicted: f64,
    pub truth: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RankReport {
    pub format: String,
    pub predictor: String,
    /// The search run the predictor came from.
    pub source: String,
    pub archs: usize,
    pub kendall_tau: Estimate,
    pub spearman_rho: Estimate,
    pub precision_top_quarter: Estimate,
    /// MACs alone as a predictor (more is better): the baseline any search must beat.
    pub macs_tau: Option<f64>,
    pub noise: Noise,
    pub points: Vec<Predicted>,
}

pub const BOOTSTRAP: usize = 2000;

pub fn rank(truth: &Truth, p: &mut dyn Predictor, source: &str, seed: u64) -> Result<RankReport> {
    let mut points = Vec::new();
    for a in truth.finished() {
        let v = a.value().unwrap_or(f64::NAN);
        points.push(Predicted { key: a.key.clone(), macs: a.macs, predicted: p.predict(&a.arch)?, truth: v });
    }
    if points.len() < 3 {
        bail!("only {} truth architectures are finished; ranking needs at least 3", points.len());
    }
    let x: Vec<f64> = points.iter().map(|q| q.predicted).collect();
    let y: Vec<f64> = points.iter().map(|q| q.truth).collect();
    let m: Vec<f64> = points.iter().map(|q| q.macs as f64).collect();
    let undefined =
        |what: &str| anyhow::anyhow!("{what} is undefined on these {} architectures (all predictions or all truths tied)", points.len());
    Ok(RankReport {
        format: "dnas.study.rank".into(),
        predictor: p.name(),
        source: source.into(),
        archs: points.len(),
        kendall_tau: bootstrap(&x, &y, kendall_tau_b, BOOTSTRAP, seed).ok_or_else(|| undefined("Kendall τ"))?,
        spearman_rho: bootstrap(&x, &y, spearman_rho, BOOTSTRAP, seed).ok_or_else(|| undefined("Spearman ρ"))?,
        precision_top_quarter: bootstrap(&x, &y, precision_top_quarter, BOOTSTRAP, seed).ok_or_else(|| undefined("precision"))?,
        macs_tau: kendall_tau_b(&m, &y),
        noise: truth.noise.clone(),
        points,
    })
}

/// Predictor `a` against predictor `b` on the same truth architectures: τ and ρ differences
/// with paired-bootstrap intervals (the question "does a rank better than b?").
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Difference {
    pub a: String,
    pub b: String,
    pub archs: usize,
    pub kendall_tau: Estimate,
    pub spearman_rho: Estimate,
}

/// Every pair (i < j) of `reports` (which must score the same architectures in one order).
pub fn differences(reports: &[RankReport], seed: u64) -> Result<Vec<Difference>> {
    let mut out = Vec::new();
    for (i, a) in reports.iter().enumerate() {
        for b in &reports[i + 1..] {
            let keys = |r: &RankReport| r.points.iter().map(|p| p.key.clone()).collect::<Vec<_>>();
            if keys(a) != keys(b) {
                bail!("{} and {} were scored on different architectures", a.predictor, b.predictor);
            }
            let (x, y): (Vec<f64>, Vec<f64>) = a.points.iter().zip(&b.points).map(|(p, q)| (p.predicted, q.predicted)).unzip();
            let t: Vec<f64> = a.points.iter().map(|p| p.truth).collect();
            let undefined = || anyhow::anyhow!("{} − {}: undefined on these architectures", a.predictor, b.predictor);
            out.push(Difference {
                a: a.predictor.clone(),
                b: b.predictor.clone(),
                archs: t.len(),
                kendall_tau: paired_difference(&x, &y, &t, kendall_tau_b, BOOTSTRAP, seed).ok_or_else(undefined)?,
                spearman_rho: paired_difference(&x, &y, &t, spearman_rho, BOOTSTRAP, seed).ok_or_else(undefined)?,
            });
        }
    }
    Ok(out)
}
