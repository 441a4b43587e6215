//! `dnas select`: the run's per-block rankings → the architecture with the lowest sum of block
//! scores under the budget (exact, [`super::select`]) → architecture JSON.
//!
//! Costs are additive: the child's params and MACs are the fixed part (stem, head, classifier)
//! plus each chosen candidate's layers; latency is the fixed part plus each layer's entry in a
//! latency table keyed by [`crate::space::LayerShape::key`].

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::evaluate::BlockRanking;
use super::metric::DnaMetric;
use super::run::RunDir;
use super::select::{select, BlockChoices, Budget, Candidate, SearchStats, Selection};
use crate::space::arch::{fixed_cost, Arch, ArchBlock, Predicted};
use crate::space::SearchSpace;

/// Measured latency per layer (ms) on one runtime setting, plus the fixed part of the network.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LatencyLut {
    /// The latency target it was measured on (`ort-cpu-1t`, `tract`, …).
    pub provider: String,
    #[serde(default)]
    pub threads: usize,
    /// Stem + head + classifier, including one model call's fixed overhead.
    pub fixed_ms: f64,
    /// Per layer (`LayerShape::key`): p50 of the layer alone minus the call overhead measured on a
    /// trivial model of the same input shape.
    pub entries: BTreeMap<String, f64>,
    /// How it was measured (runtime settings, warm-up, runs, overheads).
    #[serde(default)]
    pub settings: serde_json::Value,
}

impl LatencyLut {
    pub fn load(path: &Path) -> Result<LatencyLut> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read latency table '{}'", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("'{}' is not a latency table", path.display()))
    }

    pub fn layer_ms(&self, key: &str) -> Result<f64> {
        if key.starts_with("skip/") {
            return Ok(0.0);
        }
        self.entries.get(key).copied().ok_or_else(|| anyhow!("the latency table has no entry '{key}' (measure it with dnas latency-lut)"))
    }
}

/// What a selection ran on and found.
#[derive(Debug, Serialize)]
pub struct Choice {
    pub archs: Vec<Arch>,
    pub selections: Vec<Selection>,
    pub stats: SearchStats,
    pub candidates_per_block: Vec<usize>,
    pub fixed_macs: u64,
    pub fixed_params: u64,
}

/// Space-level fixed costs (stem, head, classifier) for the child's shapes.
pub fn space_fixed_cost(space: &SearchSpace) -> Result<(u64, u64)> {
    fixed_cost(&space.stem, &space.head, space.input, space.head_in(), space.classes, space.se)
}

pub fn load_rankings(run: &RunDir, blocks: usize) -> Result<Vec<BlockRanking>> {
    (0..blocks)
        .map(|b| {
            let p = run.eval_path(b);
            let text = std::fs::read_to_string(&p).with_context(|| {
                format!("no ranking for block {b} ('{}'): run dnas evaluate --run {} first", p.display(), run.root.display())
            })?;
            serde_json::from_str(&text).with_context(|| format!("'{}' is not a block ranking", p.display()))
        })
        .collect()
}

/// Selects the `top` best architectures of `run` under `budget` (its `fixed_*` are filled here).
/// `metric` turns each block's ranking into the losses added up (`DnaMetric::Score`: DNA's).
pub fn choose(run: &RunDir, mut budget: Budget, lut: Option<&LatencyLut>, top: usize, metric: DnaMetric) -> Result<Choice> {
    let space = run.space()?;
    let rankings = load_rankings(run, space.blocks.len())?;
    let (fixed_params, fixed_macs) = space_fixed_cost(&space)?;
    budget.fixed_params = fixed_params;
    budget.fixed_macs = fixed_macs;
    if budget.max_ms.is_some() && lut.is_none() {
        bail!("--max-ms needs --latency-lut");
    }
    if let Some(l) = lut {
        budget.fixed_ms = l.fixed_ms;
    }
    let mut blocks = Vec::new();
    for r in &rankings {
        let losses = metric.block_losses(r);
        let candidates = r
            .candidates
            .iter()
            .zip(losses)
            .map(|(c, loss)| {
                let latency_ms = match lut {
                    Some(l) => c.units.iter().map(|k| l.layer_ms(k)).sum::<Result<f64>>().with_context(|| format!("block '{}'", r.name))?,
                    None => 0.0,
                };
                Ok(Candidate { id: c.id.clone(), loss, macs: c.macs, params: c.params, latency_ms })
            })
            .collect::<Result<Vec<_>>>()?;
        blocks.push(BlockChoices { name: r.name.clone(), candidates });
    }
    let (selections, stats) = select(&blocks, &budget, top)?;
    let budget_json = serde_json::json!({"max_macs": budget.max_macs, "max_params": budget.max_params, "max_ms": budget.max_ms,
        "latency_provider": lut.map(|l| l.provider.clone()), "metric": metric.label()});
    let archs = selections
        .iter()
        .enumerate()
        .map(|(rank, s)| {
            let arch_blocks = s
                .picks
                .iter()
                .enumerate()
                .map(|(b, &pick)| {
                    let c = &rankings[b].candidates[pick];
                    let bs = &space.blocks[b];
                    let width = bs.cells[c.cell].width.or(bs.width).unwrap_or(bs.out);
                    ArchBlock {
                        name: bs.name.clone(),
                        out: bs.out,
                        stride: bs.stride,
                        width,
                        layers: c.ops.clone(),
                        candidate: c.id.clone(),
                        score: c.score,
                    }
                })
                .collect();
            Arch {
                format: "dnas.arch".into(),
                version: 1,
                name: if rank == 0 { format!("{}_searched", space.name) } else { format!("{}_searched_{}", space.name, rank + 1) },
                space: run.record.space.clone(),
                teacher_sha256: run.record.teacher.sha256.clone(),
                input: space.input,
                classes: space.classes,
                se: space.se,
                stem: space.stem.clone(),
                blocks: arch_blocks,
                head: space.head.clone(),
                predicted: Predicted { score: s.loss, macs: s.macs, params: s.params, latency_ms: lut.map(|_| s.latency_ms) },
                budget: budget_json.clone(),
            }
        })
        .collect();
    Ok(Choice {
        archs,
        selections,
        stats,
        candidates_per_block: blocks.iter().map(|b| b.candidates.len()).collect(),
        fixed_macs,
        fixed_params,
    })
}
