//! Exact constrained selection: pick one candidate per block minimising the sum of block losses
//! under budgets on MACs, parameters and latency (all additive). This is a multiple-choice
//! knapsack; DNA's reference code walks loss-sorted lists in nested loops with pruning, which is
//! a heuristic. Here it is solved exactly by depth-first branch and bound whose bound is a
//! dynamic programme over *rounded-down* costs:
//!
//! `F_k(b)` = the least loss of blocks k.. whose costs, each rounded down to a grid unit, sum to at
//! most b units. Rounding down can only make completions cheaper, so any completion that really
//! fits within R also fits within ⌊R/unit⌋ units: `F_k(⌊R/unit⌋)` never exceeds the true best
//! completion (an admissible bound), and it is tight up to one grid unit per block. One table per
//! constrained quantity; the bound is their maximum. Feasibility is always checked on the exact
//! costs, so the answer is the true optimum (and with `top` > 1, the true `top` best).

use std::cmp::Ordering;

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub id: String,
    pub loss: f64,
    pub macs: u64,
    pub params: u64,
    /// Measured latency (ms) from a LUT, when one is used.
    #[serde(default)]
    pub latency_ms: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BlockChoices {
    pub name: String,
    pub candidates: Vec<Candidate>,
}

/// Budgets for the whole network; `fixed_*` are the costs outside the searched blocks (stem, head).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Budget {
    pub max_macs: Option<u64>,
    pub max_params: Option<u64>,
    pub max_ms: Option<f64>,
    pub fixed_macs: u64,
    pub fixed_params: u64,
    pub fixed_ms: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Selection {
    pub loss: f64,
    /// Index into each block's candidate list.
    pub picks: Vec<usize>,
    pub macs: u64,
    pub params: u64,
    pub latency_ms: f64,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct SearchStats {
    pub nodes: u64,
    pub grid: usize,
}

const GRID: usize = 2048;

/// One constrained quantity: per-candidate exact cost, its grid cost, and the bound table.
struct Dim {
    limit: f64,
    unit: f64,
    cost: Vec<Vec<f64>>,
    /// table[k][b], k = 0..=blocks.
    table: Vec<Vec<f64>>,
}

impl Dim {
    fn new(limit: f64, cost: Vec<Vec<f64>>, loss: &[Vec<f64>]) -> Dim {
        let unit = (limit / GRID as f64).max(f64::MIN_POSITIVE);
        let q: Vec<Vec<usize>> =
            cost.iter().map(|b| b.iter().map(|&c| (c / unit).floor().min(GRID as f64 + 1.0) as usize).collect()).collect();
        let n = cost.len();
        let mut table = vec![vec![f64::INFINITY; GRID + 1]; n + 1];
        table[n] = vec![0.0; GRID + 1];
        for k in (0..n).rev() {
            let (head, tail) = table.split_at_mut(k + 1);
            let (row, next) = (&mut head[k], &tail[0]);
            for (j, &qj) in q[k].iter().enumerate() {
                if qj > GRID {
                    continue;
                }
                let l = loss[k][j];
                for b in qj..=GRID {
                    let v = l + next[b - qj];
                    if v < row[b] {
                        row[b] = v;
                    }
                }
            }
        }
        Dim { limit, unit, cost, table }
    }

    fn bound(&self, k: usize, used: f64) -> f64 {
        let rest = self.limit - used;
        if rest < -1e-9 * self.limit.max(1.0) {
            return f64::INFINITY;
        }
        let b = ((rest.max(0.0) / self.unit).floor() as usize).min(GRID);
        self.table[k][b]
    }
}

/// The `top` best selections (best first) and search statistics. Errors when nothing fits.
pub fn select(blocks: &[BlockChoices], budget: &Budget, top: usize) -> Result<(Vec<Selection>, SearchStats)> {
    if blocks.is_empty() {
        bail!("nothing to select: no blocks");
    }
    for b in blocks {
        if b.candidates.is_empty() {
            bail!("block '{}' has no candidates", b.name);
        }
        if let Some(c) = b.candidates.iter().find(|c| !c.loss.is_finite()) {
            bail!("block '{}', candidate '{}': loss {} is not finite", b.name, c.id, c.loss);
        }
    }
    // Candidates of each block in loss order (ties: cheaper first), remembered by original index.
    let order: Vec<Vec<usize>> = blocks
        .iter()
        .map(|b| {
            let mut o: Vec<usize> = (0..b.candidates.len()).collect();
            o.sort_by(|&x, &y| {
                let (a, c) = (&b.candidates[x], &b.candidates[y]);
                a.loss.partial_cmp(&c.loss).unwrap_or(Ordering::Equal).then(a.macs.cmp(&c.macs)).then(x.cmp(&y))
            });
            o
        })
        .collect();
    let loss: Vec<Vec<f64>> = blocks.iter().zip(&order).map(|(b, o)| o.iter().map(|&j| b.candidates[j].loss).collect()).collect();
    let col = |f: &dyn Fn(&Candidate) -> f64| -> Vec<Vec<f64>> {
        blocks.iter().zip(&order).map(|(b, o)| o.iter().map(|&j| f(&b.candidates[j])).collect()).collect()
    };
    let mut dims = Vec::new();
    if let Some(m) = budget.max_macs {
        dims.push(Dim::new(m as f64 - budget.fixed_macs as f64, col(&|c| c.macs as f64), &loss));
    }
    if let Some(p) = budget.max_params {
        dims.push(Dim::new(p as f64 - budget.fixed_params as f64, col(&|c| c.params as f64), &loss));
    }
    if let Some(ms) = budget.max_ms {
        dims.push(Dim::new(ms - budget.fixed_ms, col(&|c| c.latency_ms), &loss));
    }
    // Without constraints the bound is the sum of per-block minima.
    let mut free = vec![0.0; blocks.len() + 1];
    for k in (0..blocks.len()).rev() {
        free[k] = free[k + 1] + loss[k][0];
    }
    if dims.iter().any(|d| d.limit < 0.0 || d.table[0][GRID].is_infinite()) {
        let min =
            |f: &dyn Fn(&Candidate) -> f64| blocks.iter().map(|b| b.candidates.iter().map(f).fold(f64::INFINITY, f64::min)).sum::<f64>();
        let mut parts = Vec::new();
        if let Some(m) = budget.max_macs {
            parts.push(format!("{:.0} MACs (budget {m})", min(&|c| c.macs as f64) + budget.fixed_macs as f64));
        }
        if let Some(p) = budget.max_params {
            parts.push(format!("{:.0} params (budget {p})", min(&|c| c.params as f64) + budget.fixed_params as f64));
        }
        if let Some(l) = budget.max_ms {
            parts.push(format!("{:.3} ms (budget {l})", min(&|c| c.latency_ms) + budget.fixed_ms));
        }
        bail!("no architecture fits the budget: the cheapest possible network has {}", parts.join(", "));
    }
    let mut search = Search {
        loss: &loss,
        dims: &dims,
        free: &free,
        top: top.max(1),
        best: Vec::new(),
        path: Vec::new(),
        stats: SearchStats { nodes: 0, grid: GRID },
    };
    let used = vec![0.0; dims.len()];
    search.dfs(0, 0.0, &used);
    if search.best.is_empty() {
        bail!("no architecture fits the budget");
    }
    let stats = std::mem::take(&mut search.stats);
    let out = search
        .best
        .into_iter()
        .map(|(l, p)| {
            let picks: Vec<usize> = p.iter().enumerate().map(|(k, &j)| order[k][j]).collect();
            let sum = |f: &dyn Fn(&Candidate) -> f64| picks.iter().enumerate().map(|(k, &j)| f(&blocks[k].candidates[j])).sum::<f64>();
            Selection {
                loss: l,
                macs: picks.iter().enumerate().map(|(k, &j)| blocks[k].candidates[j].macs).sum::<u64>() + budget.fixed_macs,
                params: picks.iter().enumerate().map(|(k, &j)| blocks[k].candidates[j].params).sum::<u64>() + budget.fixed_params,
                latency_ms: sum(&|c| c.latency_ms) + budget.fixed_ms,
                picks,
            }
        })
        .collect();
    Ok((out, stats))
}

struct Search<'a> {
    loss: &'a [Vec<f64>],
    dims: &'a [Dim],
    free: &'a [f64],
    top: usize,
    /// Best complete selections so far, sorted by loss (at most `top`).
    best: Vec<(f64, Vec<usize>)>,
    path: Vec<usize>,
    stats: SearchStats,
}

impl Search<'_> {
    fn cutoff(&self) -> f64 {
        if self.best.len() < self.top {
            f64::INFINITY
        } else {
            self.best[self.best.len() - 1].0
        }
    }

    fn bound(&self, k: usize, used: &[f64]) -> f64 {
        self.dims.iter().zip(used).map(|(d, &u)| d.bound(k, u)).fold(self.free[k], f64::max)
    }

    fn dfs(&mut self, k: usize, acc: f64, used: &[f64]) {
        self.stats.nodes += 1;
        if k == self.loss.len() {
            let pos = self.best.partition_point(|(l, _)| *l <= acc);
            self.best.insert(pos, (acc, self.path.clone()));
            self.best.truncate(self.top);
            return;
        }
        // Loss order: once even the unconstrained completion cannot beat the cutoff, stop.
        let free_rest = self.free[k + 1];
        let mut next = used.to_vec();
        for j in 0..self.loss[k].len() {
            let l = acc + self.loss[k][j];
            if l + free_rest >= self.cutoff() {
                break;
            }
            let mut fits = true;
            for (i, d) in self.dims.iter().enumerate() {
                next[i] = used[i] + d.cost[k][j];
                if next[i] > d.limit * (1.0 + 1e-12) {
                    fits = false;
                }
            }
            if !fits || l + self.bound(k + 1, &next) >= self.cutoff() {
                continue;
            }
            self.path.push(j);
            self.dfs(k + 1, l, &next);
            self.path.pop();
        }
    }
}
