//! Truth plans: which architectures of the space a study retrains, with which seeds — the band
//! set (uniform over architectures inside a band of the budget) or the space set (stratified over
//! MACs) — written once as `plan-<set>.json` and reopened on resume.

use anyhow::{bail, Result};
use serde_json::json;

use super::sample::{band_sample, truth_sample, Band, Sampled, TruthSampling};
use super::truth::{PlanEntry, StudyDir};
use crate::space::point::PointCost;
use crate::space::Resolved;
use crate::validate::budget::Budget;

/// What a truth plan samples.
pub struct TruthPlan {
    /// `band` or `space`.
    pub set: String,
    pub archs: usize,
    /// Seed of the architecture draws.
    pub seed: u64,
    /// Training seeds of every architecture; empty: `train_seed` and `train_seed + 1` for the
    /// first `repeat` architectures, `train_seed` for the rest.
    pub seeds: Vec<u64>,
    pub repeat: usize,
    pub train_seed: u64,
    /// Band: the budget (its max_macs, max_params) and the band as shares of its max_macs.
    pub budget: Option<std::path::PathBuf>,
    pub band: (f64, f64),
    /// Space: MACs the stratified sample keeps architectures near, and its pool per cell choice.
    pub near_macs: Vec<u64>,
    pub pool_per_cells: usize,
}

impl TruthPlan {
    fn seeds_of(&self, i: usize) -> Vec<u64> {
        if !self.seeds.is_empty() {
            self.seeds.clone()
        } else if i < self.repeat {
            vec![self.train_seed, self.train_seed + 1]
        } else {
            vec![self.train_seed]
        }
    }
}

/// Creates (or reopens, unchanged) the study's plan for `p.set`; returns its name and entries.
/// A version-1 study keeps its single stratified plan under the name it had (`truth`).
pub fn truth_plan(study: &StudyDir, resolved: &Resolved, p: &TruthPlan) -> Result<(String, Vec<PlanEntry>)> {
    if p.seeds.is_empty() && p.repeat > p.archs {
        bail!("--repeat {} is more than --archs {}", p.repeat, p.archs);
    }
    let mut cost = PointCost::new(resolved)?;
    let seeds = |i: usize| p.seeds_of(i);
    let (plan, header) = if p.set == "band" {
        let Some(file) = &p.budget else { bail!("--set band needs --budget FILE (the band is a share of its max_macs)") };
        let budget = Budget::load(file)?;
        let Some(max_macs) = budget.max_macs else { bail!("budget '{}' has no max_macs: a band needs one", file.display()) };
        let band = Band::of_budget(max_macs, budget.max_params, p.band.0, p.band.1);
        let sampled = band_sample(resolved, &mut cost, p.archs, p.seed, band)?;
        let header = json!({
            "format": "dnas.study.plan", "version": 2, "kind": "truth", "set": "band",
            "settings": {"archs": p.archs, "seed": p.seed, "band": band, "band_fraction": [p.band.0, p.band.1], "seeds": p.seeds,
                         "repeat": p.repeat, "train_seed": p.train_seed},
        });
        (entries(study, resolved, &sampled, &seeds, "band_")?, header)
    } else {
        let sampling = TruthSampling { archs: p.archs, seed: p.seed, near_macs: p.near_macs.clone(), pool_per_cells: p.pool_per_cells };
        let sampled = truth_sample(resolved, &mut cost, &sampling)?;
        let header = json!({
            "format": "dnas.study.plan", "kind": "truth",
            "settings": {"archs": p.archs, "repeat": p.repeat, "seed": p.seed, "train_seed": p.train_seed, "near_macs": p.near_macs, "pool_per_cells": p.pool_per_cells},
        });
        (entries(study, resolved, &sampled, &seeds, "truth_")?, header)
    };
    let name = if p.set == "space" && study.plan_path("truth").exists() { "truth" } else { p.set.as_str() };
    Ok((name.to_string(), study.create_or_open_plan(name, header, plan)?))
}

/// Plan entries of sampled architectures, named `<prefix><i>`, with their seeds.
pub fn entries(
    study: &StudyDir,
    resolved: &Resolved,
    sampled: &[Sampled],
    seeds: &dyn Fn(usize) -> Vec<u64>,
    prefix: &str,
) -> Result<Vec<PlanEntry>> {
    sampled
        .iter()
        .enumerate()
        .map(|(i, s)| {
            Ok(PlanEntry {
                key: s.key.clone(),
                why: s.why.clone(),
                params: s.params,
                macs: s.macs,
                seeds: seeds(i),
                arch: resolved.arch(&s.point, &format!("{prefix}{i:02}"), &study.record.teacher_sha256)?,
            })
        })
        .collect()
}
