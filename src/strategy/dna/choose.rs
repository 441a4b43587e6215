//! `dnas select`: the run's per-block rankings → the architecture with the lowest sum of block
//! scores under the budget (exact, [`super::select`]) → architecture JSON.
//!
//! Costs are additive: the child's params and MACs are the fixed part (stem, head, classifier)
//! plus each chosen candidate's layers; latency is the fixed part plus each layer's entry in a
//! latency table keyed by [`crate::space::LayerShape::key`].

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::evaluate::BlockRanking;
use super::metric::DnaMetric;
use super::run::RunDir;
use super::select::{select, BlockChoices, Budget, Candidate, SearchStats, Selection};
use crate::space::arch::{fixed_cost, layer_cost, Arch, ArchBlock, Predicted};
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

    /// Stem + head + classifier when the last block writes `last_out` channels: `fixed_ms` is
    /// for the width `SearchSpace::head_in` gives; another width swaps in its head entry.
    pub fn fixed_ms_for(&self, space: &SearchSpace, last_out: usize) -> Result<f64> {
        let default = space.head_in();
        if last_out == default[0] {
            return Ok(self.fixed_ms);
        }
        let other = space.head_in_from(last_out);
        Ok(self.fixed_ms - self.layer_ms(&head_key(default))? + self.layer_ms(&head_key(other))?)
    }
}

/// Latency-table key of the head (1×1 conv, pool, classifier) at input [c, h, w].
pub fn head_key(input: [usize; 3]) -> String {
    format!("head/i{}/{}x{}", input[0], input[1], input[2])
}

/// What a selection ran on and found.
#[derive(Debug, Serialize)]
pub struct Choice {
    pub archs: Vec<Arch>,
    pub selections: Vec<Selection>,
    pub stats: SearchStats,
    pub candidates_per_block: Vec<usize>,
    /// Block-boundary width assignments searched (1 unless some block's cells write different
    /// widths).
    pub width_combinations: usize,
}

/// Space-level fixed costs (stem, head, classifier) for the child's shapes when the last block
/// writes `last_out` channels.
pub fn space_fixed_cost(space: &SearchSpace, last_out: usize) -> Result<(u64, u64)> {
    fixed_cost(&space.stem, &space.head, space.input, space.head_in_from(last_out), space.classes, space.se)
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

/// Most width assignments [`choose`] enumerates.
const MAX_WIDTH_COMBINATIONS: usize = 4096;

/// Every assignment of one output width per block (first block most significant).
fn width_combinations(space: &SearchSpace) -> Result<Vec<Vec<usize>>> {
    let per_block: Vec<Vec<usize>> = (0..space.blocks.len()).map(|b| space.out_widths(Some(b))).collect();
    let n = per_block.iter().try_fold(1usize, |n, w| n.checked_mul(w.len()).filter(|&n| n <= MAX_WIDTH_COMBINATIONS));
    if n.is_none() {
        bail!("the space's cells write so many different widths that more than {MAX_WIDTH_COMBINATIONS} block-boundary combinations would be searched");
    }
    let mut out = vec![vec![]];
    for widths in &per_block {
        out = out.into_iter().flat_map(|pre: Vec<usize>| widths.iter().map(move |&w| [pre.clone(), vec![w]].concat())).collect();
    }
    Ok(out)
}

/// Selects the `top` best architectures of `run` under `budget` (its `fixed_*` are filled here).
/// `metric` turns each block's ranking into the losses added up (`DnaMetric::Score`: DNA's).
///
/// A candidate's cost depends on the width its block reads, which is what the previous block's
/// chosen cell writes (cells may differ in `out`), and the head's on the last block's. Costs stay
/// additive once every block boundary's width is fixed, so the exact knapsack runs once per
/// assignment of widths to boundaries — over the candidates whose cells write those widths — and
/// the best of all assignments is the exact optimum.
pub fn choose(run: &RunDir, budget: Budget, lut: Option<&LatencyLut>, top: usize, metric: DnaMetric) -> Result<Choice> {
    let space = run.space()?;
    let rankings = load_rankings(run, space.blocks.len())?;
    for (b, r) in rankings.iter().enumerate() {
        let bs = &space.blocks[b];
        if let Some(c) = r.candidates.iter().find(|c| c.cell >= bs.cells.len() || c.ops.len() != bs.cells[c.cell].layers) {
            bail!(
                "'{}': candidate '{}' (cell {}, {} layers) is not in block '{}' of the run's space: the ranking belongs to another space",
                run.eval_path(b).display(),
                c.id,
                c.cell,
                c.ops.len(),
                bs.name
            );
        }
    }
    let losses: Vec<Vec<f64>> = rankings.iter().map(|r| metric.block_losses(r)).collect();
    let (found, stats, width_combinations) = select_coupled(&space, &rankings, &losses, &budget, lut, top)?;
    let budget_json = serde_json::json!({"max_macs": budget.max_macs, "max_params": budget.max_params, "max_ms": budget.max_ms,
        "latency_provider": lut.map(|l| l.provider.clone()), "metric": metric.label()});
    let archs = found
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
                    ArchBlock {
                        name: bs.name.clone(),
                        out: space.cell_out(bs, c.cell),
                        stride: bs.stride,
                        width: space.cell_width(bs, c.cell),
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
                predicted: Predicted {
                    score: s.loss,
                    macs: s.macs,
                    params: s.params,
                    latency_ms: lut.map(|_| s.latency_ms),
                    score_kind: format!("dna:{}: sum of the blocks' losses", metric.label()),
                    higher_is_better: Some(false),
                },
                budget: budget_json.clone(),
            }
        })
        .collect();
    Ok(Choice {
        archs,
        selections: found,
        stats,
        candidates_per_block: rankings.iter().map(|r| r.candidates.len()).collect(),
        width_combinations,
    })
}

/// The exact `top` selections over `rankings` (candidates of `space`'s blocks; `losses` per
/// candidate), each candidate costed at the width its block reads; also the search statistics
/// and the number of block-boundary width assignments searched. See [`choose`].
pub fn select_coupled(
    space: &SearchSpace,
    rankings: &[BlockRanking],
    losses: &[Vec<f64>],
    budget: &Budget,
    lut: Option<&LatencyLut>,
    top: usize,
) -> Result<(Vec<Selection>, SearchStats, usize)> {
    if budget.max_ms.is_some() && lut.is_none() {
        bail!("--max-ms needs --latency-lut");
    }
    let combos = width_combinations(space)?;
    let mut cache = HashMap::new();
    let mut found: Vec<Selection> = Vec::new();
    let mut stats = SearchStats::default();
    let mut failures = Vec::new();
    for combo in &combos {
        let mut cin = space.stem_out()[0];
        let (mut blocks, mut index) = (Vec::new(), Vec::new());
        for (b, r) in rankings.iter().enumerate() {
            let bs = &space.blocks[b];
            let (mut candidates, mut map) = (Vec::new(), Vec::new());
            for (j, (c, &loss)) in r.candidates.iter().zip(&losses[b]).enumerate() {
                if space.cell_out(bs, c.cell) != combo[b] {
                    continue;
                }
                let (mut params, mut macs, mut latency_ms) = (0, 0, 0.0);
                for (&op, shape) in c.ops.iter().zip(space.child_cell_shapes(b, c.cell, cin)) {
                    let (p, m) = layer_cost(op, &shape, space.se, &mut cache)?;
                    params += p;
                    macs += m;
                    if let Some(l) = lut {
                        latency_ms += l.layer_ms(&shape.key(op)).with_context(|| format!("block '{}'", r.name))?;
                    }
                }
                candidates.push(Candidate { id: c.id.clone(), loss, macs, params, latency_ms });
                map.push(j);
            }
            blocks.push(BlockChoices { name: r.name.clone(), candidates });
            index.push(map);
            cin = combo[b];
        }
        let (fixed_params, fixed_macs) = space_fixed_cost(space, cin)?;
        let fixed_ms = match lut {
            Some(l) => l.fixed_ms_for(space, cin)?,
            None => 0.0,
        };
        let budget = Budget { fixed_params, fixed_macs, fixed_ms, ..budget.clone() };
        match select(&blocks, &budget, top) {
            Ok((sels, st)) => {
                stats.nodes += st.nodes;
                stats.grid = st.grid;
                for mut sel in sels {
                    sel.picks = sel.picks.iter().enumerate().map(|(b, &p)| index[b][p]).collect();
                    found.push(sel);
                }
            }
            Err(e) if combos.len() > 1 && format!("{e}").starts_with("no architecture fits") => {
                let w: Vec<String> = combo.iter().map(|w| w.to_string()).collect();
                failures.push(format!("widths {}: {e:#}", w.join("/")))
            }
            Err(e) => return Err(e),
        }
    }
    if found.is_empty() {
        bail!(
            "no architecture fits the budget under any of the {} block-boundary width combinations; {}",
            combos.len(),
            failures.join("; ")
        );
    }
    found.sort_by(|a, b| a.loss.total_cmp(&b.loss).then(a.macs.cmp(&b.macs)).then_with(|| a.picks.cmp(&b.picks)));
    found.truncate(top.max(1));
    Ok((found, stats, combos.len()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::space::arch::{build_child, graph_cost};
    use crate::space::point::Point;
    use crate::space::{resolve_standalone, Resolved};
    use crate::strategy::dna::evaluate::RankedCandidate;
    use crate::util::Rng;

    /// Three blocks whose cells write different widths, so every block's first layer (and the
    /// head) costs what the previous choice makes it cost.
    const COUPLED: &str = r#"{"name":"coupled","version":1,"input":[1,8,8],"classes":3,
        "stem":{"channels":4,"kernel":3,"stride":1,"cut":0},
        "blocks":[
          {"name":"b0","cut":1,"out":6,"stride":2,"cells":[{"layers":1,"out":4,"width":4},{"layers":2}],"ops":["ir_k3_e3","ir_k5_e6"]},
          {"name":"b1","cut":2,"out":8,"stride":1,"cells":[{"layers":1,"out":5},{"layers":2}],"ops":["ir_k3_e6","ir_k5_e3"]},
          {"name":"b2","cut":3,"out":10,"stride":2,"cells":[{"layers":1},{"layers":2,"out":12,"width":12}],"ops":["ir_k3_e3","ir_k3_e6"]}],
        "head":{"channels":8}}"#;

    fn rankings(r: &Resolved, rng: &mut Rng) -> Vec<BlockRanking> {
        r.blocks
            .iter()
            .map(|b| BlockRanking {
                block: b.index,
                name: b.name.clone(),
                teacher_out: b.teacher_out.clone(),
                metric: "test".into(),
                std_y: 1.0,
                images: 1,
                batches: 1,
                layer_evals: 0,
                naive_layer_evals: 0,
                recal_layer_evals: 0,
                seconds: 0.0,
                candidates: b
                    .cells
                    .iter()
                    .flat_map(|c| (0..c.paths()).map(move |i| (c, c.path(i))))
                    .map(|(c, p)| RankedCandidate {
                        id: c.path_id(&p),
                        cell: c.index,
                        ops: c.path_ops(&p),
                        score: rng.uniform(),
                        mse: 0.0,
                        // Deliberately wrong: selection must cost candidates itself, at the width read.
                        params: 0,
                        macs: 0,
                        units: vec![],
                    })
                    .collect(),
            })
            .collect()
    }

    #[test]
    fn coupled_widths_select_the_true_optimum_of_every_architecture() {
        let space = SearchSpace::parse(COUPLED).unwrap();
        assert_eq!(space.varied_outs().map(|(n, w)| (n.to_string(), w)), Some(("b0".into(), vec![4, 6])));
        let r = resolve_standalone(&space).unwrap();
        assert_eq!(r.blocks[1].in_widths, vec![4, 6]);
        let mut rng = Rng::new(11);
        let ranks = rankings(&r, &mut rng);
        let losses: Vec<Vec<f64>> = ranks.iter().map(|b| b.candidates.iter().map(|c| c.score).collect()).collect();
        // Every architecture, costed from its built graph (an independent count).
        let mut all = Vec::new();
        let n: Vec<usize> = ranks.iter().map(|b| b.candidates.len()).collect();
        for i in 0..n.iter().product::<usize>() {
            let picks = vec![i / (n[1] * n[2]), i / n[2] % n[1], i % n[2]];
            let point = Point {
                blocks: picks
                    .iter()
                    .enumerate()
                    .map(|(b, &j)| {
                        let c = &ranks[b].candidates[j];
                        let cell = &r.blocks[b].cells[c.cell];
                        (c.cell, c.ops.iter().zip(&cell.layers).map(|(op, l)| l.ops.iter().position(|o| o == op).unwrap()).collect())
                    })
                    .collect(),
            };
            let (params, macs) = graph_cost(&build_child(&r.arch(&point, "x", "").unwrap(), 0).unwrap()).unwrap();
            let loss: f64 = picks.iter().enumerate().map(|(b, &j)| losses[b][j]).sum();
            all.push((loss, picks, params, macs));
        }
        all.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut macs: Vec<u64> = all.iter().map(|a| a.3).collect();
        macs.sort();
        for q in [0.05, 0.3, 0.7] {
            let max_macs = macs[(q * macs.len() as f64) as usize];
            let budget = Budget { max_macs: Some(max_macs), ..Default::default() };
            let (sel, _, combos) = select_coupled(&space, &ranks, &losses, &budget, None, 3).unwrap();
            assert_eq!(combos, 2 * 2 * 2);
            let truth: Vec<_> = all.iter().filter(|a| a.3 <= max_macs).take(3).collect();
            assert_eq!(sel.len(), truth.len());
            for (s, t) in sel.iter().zip(&truth) {
                assert!((s.loss - t.0).abs() < 1e-12, "budget {max_macs}: {} vs {}", s.loss, t.0);
                assert_eq!((s.macs, s.params), (t.3, t.2), "budget {max_macs}, picks {:?}", s.picks);
            }
            assert_eq!(sel[0].picks, truth[0].1);
        }
        // Below the cheapest architecture: an error saying so for every width combination.
        let budget = Budget { max_macs: Some(macs[0] - 1), ..Default::default() };
        let e = format!("{:#}", select_coupled(&space, &ranks, &losses, &budget, None, 1).unwrap_err());
        assert!(e.contains("no architecture fits") && e.contains("8 block-boundary width combinations"), "{e}");
    }
}
