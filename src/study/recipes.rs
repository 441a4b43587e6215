//! Candidate truth recipes compared on the same band architectures and seeds (one study
//! directory each): per recipe the seed and architecture spread, ICC(1), the reliability of a
//! k-seed mean and the seconds per run; the decision is the cheapest recipe whose reliability
//! reaches the target, else the most reliable one, said so. Written as `recipes.json`.

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde_json::{json, Value};

use super::truth::{StudyDir, Truth};
use crate::util::write_atomic;

/// Compares the recipes of `dirs` on their plan `plan`; writes and returns `recipes.json`
/// (`dnas.study.recipes` version 1) at `out`.
pub fn compare(dirs: &[PathBuf], plan: &str, target: f64, seeds: usize, out: &Path) -> Result<Value> {
    let mut rows = Vec::new();
    for d in dirs {
        let study = StudyDir::open(d)?;
        let t = Truth::load(&study, plan)?;
        let mut secs = Vec::new();
        for x in &t.archs {
            for s in x.top1.keys() {
                if let Some(r) = study.result(&x.key, *s)? {
                    secs.push(r.seconds);
                }
            }
        }
        let mean_s = (!secs.is_empty()).then(|| secs.iter().sum::<f64>() / secs.len() as f64);
        let rel_k = t.reliability.map(|r| crate::study::reliability::reliability_of_mean(r.icc1, seeds as f64));
        rows.push(json!({
            "dir": d, "recipe": study.record.recipe, "runs": t.finished_runs, "planned": t.planned_runs,
            "seconds_per_run": mean_s, "reliability": t.reliability, "reliability_of_mean": rel_k, "seeds": seeds,
        }));
    }
    // The cheapest finished recipe that reaches the target; else the most reliable, said so.
    let complete = |r: &serde_json::Value| r["runs"] == r["planned"] && r["reliability_of_mean"].is_f64();
    let mut reaching: Vec<&serde_json::Value> =
        rows.iter().filter(|r| complete(r) && r["reliability_of_mean"].as_f64().unwrap_or(0.0) >= target).collect();
    reaching
        .sort_by(|x, y| x["seconds_per_run"].as_f64().unwrap_or(f64::MAX).total_cmp(&y["seconds_per_run"].as_f64().unwrap_or(f64::MAX)));
    let decision = match reaching.first() {
        Some(r) => {
            json!({"chosen": r["dir"], "why": format!("the cheapest recipe whose {}-seed reliability is ≥ {}", seeds, target)})
        }
        None => {
            let best = rows.iter().filter(|r| complete(r)).max_by(|x, y| {
                x["reliability_of_mean"].as_f64().unwrap_or(0.0).total_cmp(&y["reliability_of_mean"].as_f64().unwrap_or(0.0))
            });
            json!({"chosen": best.map(|b| b["dir"].clone()),
                "why": format!("no finished recipe reaches a {}-seed reliability of {}: the most reliable one (the band is flat at this cost)", seeds, target)})
        }
    };
    let doc = json!({"format": "dnas.study.recipes", "version": 1, "plan": plan, "target": target, "recipes": rows, "decision": decision});
    write_atomic(out, serde_json::to_string_pretty(&doc)?.as_bytes())?;
    Ok(doc)
}
