//! `dnas study pick`: a strategy's pick under a budget against K random architectures that fit
//! the same budget, all retrained with the study's recipe — the pick's percentile among them and
//! the mean and best of the random ones (is the search worth running?).

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

use super::metrics::percentile_among;
use super::truth::{PlanEntry, StudyDir};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Scored {
    pub key: String,
    pub macs: u64,
    pub params: u64,
    /// Mean test top-1 over the finished seeds.
    pub top1: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PickReport {
    pub format: String,
    pub name: String,
    /// The search run the pick came from.
    pub source: String,
    pub budget: serde_json::Value,
    pub pick: Scored,
    pub random: Vec<Scored>,
    /// Share of the random architectures the pick beats (ties half).
    pub percentile: f64,
    pub beats: usize,
    pub random_mean: f64,
    pub random_best: f64,
}

fn scored(study: &StudyDir, e: &PlanEntry) -> Result<Option<Scored>> {
    let mut v = Vec::new();
    for &s in &e.seeds {
        if let Some(t) = study.result(&e.key, s)?.and_then(|r| r.test_top1) {
            v.push(t);
        }
    }
    Ok((!v.is_empty()).then(|| Scored { key: e.key.clone(), macs: e.macs, params: e.params, top1: v.iter().sum::<f64>() / v.len() as f64 }))
}

/// The report of plan `pick-<name>` (entry 0 the pick, the rest random); errors while runs are missing.
pub fn pick_report(study: &StudyDir, name: &str, source: &str, budget: serde_json::Value) -> Result<PickReport> {
    let entries = study.load_plan(&format!("pick-{name}"))?;
    let Some((first, rest)) = entries.split_first() else { bail!("plan pick-{name} is empty") };
    let Some(pick) = scored(study, first)? else { bail!("the pick {} is not retrained yet", first.key) };
    let mut random = Vec::new();
    for e in rest {
        match scored(study, e)? {
            Some(s) => random.push(s),
            None => bail!("random architecture {} is not retrained yet", e.key),
        }
    }
    let tops: Vec<f64> = random.iter().map(|r| r.top1).collect();
    let percentile = percentile_among(pick.top1, &tops).unwrap_or(f64::NAN);
    Ok(PickReport {
        format: "dnas.study.pick".into(),
        name: name.into(),
        source: source.into(),
        budget,
        beats: tops.iter().filter(|&&t| pick.top1 > t).count(),
        random_mean: tops.iter().sum::<f64>() / tops.len().max(1) as f64,
        random_best: tops.iter().cloned().fold(f64::NAN, f64::max),
        pick,
        random,
        percentile,
    })
}
