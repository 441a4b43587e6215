//! `dnas study rank`: a predictor's scores against the retrained top-1 of the truth sets.
//!
//! Per set — the *band* set (architectures at the budget, where selection decides) and the
//! *space* set (across the whole MACs range) — Kendall τ-b, Spearman ρ and precision of the top
//! quarter, each with a 95% interval from a nested bootstrap that resamples architectures and
//! each architecture's seeds (so the truth's own noise widens it); beside them the truth's
//! reliability (ICC) and the τ a perfect predictor would reach against it. Over both sets
//! pooled: the partial τ given MACs (what the predictor knows beyond cost). A predictor that
//! only knows architectures within some limits (a one-shot supernet trained under a budget) is
//! scored only on those; the others are counted and named as skipped.

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

use super::metrics::{
    bootstrap_nested, bootstrap_nested_by, kendall_tau_b, paired_difference, partial_tau, precision_top_quarter, spearman_rho, Estimate,
};
use super::predict::{Limits, Predictor};
use super::reliability::{reliability, tau_corrected, Reliability};
use super::truth::Truth;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Predicted {
    pub key: String,
    pub macs: u64,
    pub params: u64,
    pub predicted: f64,
    /// The truth value: the mean of `seeds`.
    pub truth: f64,
    /// Test top-1 of each finished seed.
    pub seeds: Vec<f64>,
}

/// A predictor on one truth set.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SetScore {
    /// `band` or `space`.
    pub set: String,
    pub archs: usize,
    /// Truth architectures outside the predictor's limits, not scored (keys).
    pub skipped: Vec<String>,
    pub kendall_tau: Estimate,
    pub spearman_rho: Estimate,
    pub precision_top_quarter: Option<Estimate>,
    /// MACs alone as a predictor (more is better) on the same architectures.
    pub macs_tau: Option<f64>,
    /// Of the scored architectures' truth values.
    pub reliability: Option<Reliability>,
    /// τ corrected for the truth's unreliability (observed τ over what a perfect predictor reaches).
    pub tau_corrected: Option<f64>,
    pub points: Vec<Predicted>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RankReport {
    pub format: String,
    pub version: u32,
    pub predictor: String,
    /// The search run the predictor came from.
    pub source: String,
    /// Which truth architectures were scored: every one, or those within the predictor's limits.
    pub scored_on: String,
    pub sets: Vec<SetScore>,
    /// Partial τ given MACs over both sets pooled (each architecture once), nested bootstrap.
    pub partial_tau_macs: Option<Estimate>,
    pub pooled_archs: usize,
}

pub const BOOTSTRAP: usize = 2000;

fn scored_on(limits: &Option<Limits>) -> String {
    match limits {
        None => "every finished truth architecture".into(),
        Some(l) => format!(
            "truth architectures within the limits the run trained under (max_macs {}, max_params {})",
            l.max_macs.map_or("none".into(), |v| v.to_string()),
            l.max_params.map_or("none".into(), |v| v.to_string())
        ),
    }
}

fn score_set(set: &str, truth: &Truth, p: &mut dyn Predictor, limits: &Option<Limits>, seed: u64) -> Result<Option<SetScore>> {
    let mut points = Vec::new();
    let mut skipped = Vec::new();
    for a in truth.finished() {
        if limits.as_ref().is_some_and(|l| !l.fits(a.params, a.macs)) {
            skipped.push(a.key.clone());
            continue;
        }
        let seeds: Vec<f64> = a.top1.values().copied().collect();
        let v = a.value().unwrap_or(f64::NAN);
        points.push(Predicted { key: a.key.clone(), macs: a.macs, params: a.params, predicted: p.predict(&a.arch)?, truth: v, seeds });
    }
    if points.len() < 3 {
        eprintln!("[rank] {}: set '{set}' has {} scorable architectures ({} skipped); it needs 3", p.name(), points.len(), skipped.len());
        return Ok(None);
    }
    let x: Vec<f64> = points.iter().map(|q| q.predicted).collect();
    let s: Vec<Vec<f64>> = points.iter().map(|q| q.seeds.clone()).collect();
    let y: Vec<f64> = points.iter().map(|q| q.truth).collect();
    let m: Vec<f64> = points.iter().map(|q| q.macs as f64).collect();
    let undefined = |what: &str| {
        anyhow::anyhow!("{what} is undefined on the {} architectures of set '{set}' (all predictions or all truths tied)", points.len())
    };
    let tau = bootstrap_nested(&x, &s, kendall_tau_b, BOOTSTRAP, seed).ok_or_else(|| undefined("Kendall τ"))?;
    let rel = reliability(&s);
    Ok(Some(SetScore {
        set: set.into(),
        archs: points.len(),
        skipped,
        spearman_rho: bootstrap_nested(&x, &s, spearman_rho, BOOTSTRAP, seed).ok_or_else(|| undefined("Spearman ρ"))?,
        precision_top_quarter: bootstrap_nested(&x, &s, precision_top_quarter, BOOTSTRAP, seed),
        macs_tau: kendall_tau_b(&m, &y),
        tau_corrected: rel.and_then(|r| tau_corrected(tau.value, r.icc_mean)),
        reliability: rel,
        kendall_tau: tau,
        points,
    }))
}

/// Scores `p` on each of `sets` (name, truth) and the partial τ given MACs over them pooled.
pub fn rank(sets: &[(&str, &Truth)], p: &mut dyn Predictor, source: &str, seed: u64) -> Result<RankReport> {
    let limits = p.limits();
    let mut scores = Vec::new();
    for (name, truth) in sets {
        if let Some(s) = score_set(name, truth, p, &limits, seed)? {
            scores.push(s);
        }
    }
    if scores.is_empty() {
        bail!("{}: no truth set has 3 scorable finished architectures yet", p.name());
    }
    let mut pooled: Vec<Predicted> = Vec::new();
    for s in &scores {
        for q in &s.points {
            if !pooled.iter().any(|o| o.key == q.key) {
                pooled.push(q.clone());
            }
        }
    }
    let x: Vec<f64> = pooled.iter().map(|q| q.predicted).collect();
    let m: Vec<f64> = pooled.iter().map(|q| q.macs as f64).collect();
    let s: Vec<Vec<f64>> = pooled.iter().map(|q| q.seeds.clone()).collect();
    let partial = bootstrap_nested_by(
        &s,
        &|idx: &[usize], t: &[f64]| {
            let xi: Vec<f64> = idx.iter().map(|&i| x[i]).collect();
            let mi: Vec<f64> = idx.iter().map(|&i| m[i]).collect();
            partial_tau(&xi, t, &mi)
        },
        BOOTSTRAP,
        seed,
    );
    Ok(RankReport {
        format: "dnas.study.rank".into(),
        version: 2,
        predictor: p.name(),
        source: source.into(),
        scored_on: scored_on(&limits),
        sets: scores,
        partial_tau_macs: partial,
        pooled_archs: pooled.len(),
    })
}

/// Predictor `a` against predictor `b` on the same truth architectures of one set: τ and ρ
/// differences with paired-bootstrap intervals (the question "does a rank better than b?").
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Difference {
    pub a: String,
    pub b: String,
    /// The truth set (empty in reports written before truth v2).
    #[serde(default)]
    pub set: String,
    pub archs: usize,
    pub kendall_tau: Estimate,
    pub spearman_rho: Estimate,
}

/// Every pair (i < j) of `reports`, on every set both scored on the same architectures.
pub fn differences(reports: &[RankReport], seed: u64) -> Result<Vec<Difference>> {
    let mut out = Vec::new();
    for (i, a) in reports.iter().enumerate() {
        for b in &reports[i + 1..] {
            for sa in &a.sets {
                let Some(sb) = b.sets.iter().find(|s| s.set == sa.set) else { continue };
                let keys = |s: &SetScore| s.points.iter().map(|p| p.key.clone()).collect::<Vec<_>>();
                if keys(sa) != keys(sb) {
                    bail!("{} and {} were scored on different architectures of set '{}'", a.predictor, b.predictor, sa.set);
                }
                let (x, y): (Vec<f64>, Vec<f64>) = sa.points.iter().zip(&sb.points).map(|(p, q)| (p.predicted, q.predicted)).unzip();
                let t: Vec<f64> = sa.points.iter().map(|p| p.truth).collect();
                let undefined = || anyhow::anyhow!("{} − {}: undefined on set '{}'", a.predictor, b.predictor, sa.set);
                out.push(Difference {
                    a: a.predictor.clone(),
                    b: b.predictor.clone(),
                    set: sa.set.clone(),
                    archs: t.len(),
                    kendall_tau: paired_difference(&x, &y, &t, kendall_tau_b, BOOTSTRAP, seed).ok_or_else(undefined)?,
                    spearman_rho: paired_difference(&x, &y, &t, spearman_rho, BOOTSTRAP, seed).ok_or_else(undefined)?,
                });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::space::arch::Arch;
    use crate::study::truth::{StudyRecord, TruthArch};

    /// Predicts −MACs (a deliberately cost-only predictor), optionally knowing only a budget.
    struct ByMacs(Option<Limits>, std::collections::HashMap<String, u64>);
    impl Predictor for ByMacs {
        fn name(&self) -> String {
            "by-macs".into()
        }
        fn predict(&mut self, arch: &Arch) -> Result<f64> {
            Ok(-(self.1[&arch.name] as f64))
        }
        fn limits(&self) -> Option<Limits> {
            self.0
        }
    }

    fn truth(archs: &[(&str, u64, &[f64])]) -> Truth {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/models/archs/fmnist_searched.json")).unwrap();
        let mut list = Vec::new();
        for (key, macs, seeds) in archs {
            let mut arch = Arch::parse(&text).unwrap();
            arch.name = key.to_string();
            list.push(TruthArch {
                key: key.to_string(),
                why: String::new(),
                params: 1000,
                macs: *macs,
                top1: seeds.iter().enumerate().map(|(i, v)| (i as u64, *v)).collect::<BTreeMap<_, _>>(),
                held_out_top1: BTreeMap::new(),
                seconds: 0.0,
                arch,
            });
        }
        let groups: Vec<Vec<f64>> = list.iter().map(|a| a.top1.values().copied().collect()).collect();
        let recipe: crate::study::truth::Recipe = serde_json::from_value(serde_json::json!({
            "data": "fmnist", "held_out": 0, "data_seed": 0, "train_subset": null, "epochs": 1, "batch": 8,
            "optimizer": "adamw", "lr": 0.001, "weight_decay": 0.0, "schedule": "cosine", "warmup_epochs": 0.0,
            "label_smoothing": 0.0, "kd": null}))
        .unwrap();
        Truth {
            study: StudyRecord { format: "dnas.study".into(), version: 1, space: "x@1".into(), teacher_sha256: String::new(), recipe },
            plan: "band".into(),
            planned_runs: 0,
            finished_runs: 0,
            reliability: reliability(&groups),
            archs: list,
        }
    }

    #[test]
    fn a_one_shot_predictor_is_scored_only_within_its_limits() {
        let t = truth(&[
            ("a", 5, &[0.80, 0.81]),
            ("b", 6, &[0.82, 0.80]),
            ("c", 7, &[0.79, 0.80]),
            ("d", 8, &[0.85, 0.86]),
            ("e", 9, &[0.70, 0.72]),
            ("f", 10, &[0.88, 0.87]),
        ]);
        let macs = t.archs.iter().map(|a| (a.key.clone(), a.macs)).collect();
        let mut p = ByMacs(Some(Limits { max_macs: Some(8), max_params: None }), macs);
        let r = rank(&[("band", &t)], &mut p, "run", 0).unwrap();
        let s = &r.sets[0];
        assert_eq!(s.archs, 4);
        assert_eq!(s.skipped, vec!["e".to_string(), "f".to_string()]);
        assert!(s.points.iter().all(|q| q.macs <= 8));
        assert!(r.scored_on.contains("max_macs 8"), "{}", r.scored_on);
        // Unlimited: every architecture, none skipped.
        let macs = t.archs.iter().map(|a| (a.key.clone(), a.macs)).collect();
        let r = rank(&[("band", &t)], &mut ByMacs(None, macs), "run", 0).unwrap();
        assert_eq!((r.sets[0].archs, r.sets[0].skipped.len()), (6, 0));
        assert!(r.scored_on.starts_with("every"));
        // A predictor that is −MACs has τ = −(τ of MACs), and nothing left once MACs are held fixed.
        let s = &r.sets[0];
        assert!((s.kendall_tau.value + s.macs_tau.unwrap()).abs() < 1e-12);
        assert!(r.partial_tau_macs.is_none(), "a predictor that is MACs has no partial τ: {:?}", r.partial_tau_macs);
        assert!(s.reliability.is_some() && s.tau_corrected.is_some());
    }
}
