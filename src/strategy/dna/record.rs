//! A DNA run's `search.json`: DNA trains its block supernets without a budget and applies the
//! limits when it selects, so the header is written (or rewritten, under other limits) by the
//! selection that writes the run's `arch.json`, with its cost: the block trainings, the
//! rankings and the exact selection.

use std::collections::BTreeMap;

use anyhow::Result;
use serde_json::json;

use super::choose::load_rankings;
use super::metric::DnaMetric;
use super::run::RunDir;
use crate::space::arch::Arch;
use crate::space::limits::PathBudget;
use crate::strategy::{begin, finish, SearchHeader, SearchRecord, SearchResult, Strategy};
use crate::util::read_json;

/// Records `arch` (written as the run's `arch.json`) as the run's pick under `limits`.
pub fn record_pick(run: &RunDir, arch: &Arch, limits: PathBudget, metric: DnaMetric, select_seconds: f64) -> Result<SearchRecord> {
    let mut settings = serde_json::to_value(&run.record)?;
    settings["metric"] = json!(metric.label());
    let r = &run.record;
    begin(&run.root, &SearchHeader::new(Strategy::Dna, r.space.clone(), r.teacher.sha256.clone(), limits, r.seed, settings))?;
    let (train, rank) = dna_seconds(run).unwrap_or((0.0, 0.0));
    finish(&run.root, SearchResult::of_arch(arch, "arch.json", train, rank + select_seconds, json!({"metric": metric.label()})))
}

/// A DNA run's (training, ranking) seconds from its block records and rankings.
pub fn dna_seconds(run: &RunDir) -> Option<(f64, f64)> {
    let blocks = run.space().ok()?.blocks.len();
    let mut groups = BTreeMap::new();
    for b in 0..blocks {
        let done = read_json(&run.done_path(b)).ok()?;
        groups.insert(done["trained_with"].to_string(), done["seconds"].as_f64()?);
    }
    let rank: f64 = load_rankings(run, blocks).ok()?.iter().map(|r| r.seconds).sum();
    Some((groups.values().sum(), rank))
}
