//! `dnas evaluate`: every candidate path of every cell of every block, ranked on the same
//! held-out batches (DNA step 3).
//!
//! 1. BatchNorm recalibration. A layer's statistics depend on the layers before it, so every
//!    prefix gets its own: one training-mode pass (momentum 1: running stats = the batch's) over
//!    a fixed training batch, walking the prefix tree of each cell; the statistics of every tree
//!    node are kept (a few vectors each).
//! 2. Evaluation, streamed batch by batch: the teacher runs once per held-out batch; each cell's
//!    prefix tree is walked depth first with the node's statistics loaded, so a path's first k
//!    layers are computed once for all paths sharing them (a 4-layer cell with 6 ops: 1,554 layer
//!    evaluations instead of 5,184). Only one activation per depth is alive at a time.
//! 3. Per candidate: DNA's ranking metric mean|Y−Ŷ|/std(Y) and the MSE, with the child's params
//!    and MACs (BatchNorm folded) and the keys of its layers (for latency tables).

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use tch::{Device, Tensor as T};

use super::run::RunDir;
use crate::data::loader::LoaderConfig;
use crate::data::{open, Dataset, Loader};
use crate::space::arch::layer_cost;
use crate::space::{LayerOp, ResolvedCell};
use crate::supernet::teacher::TeacherFeatures;
use crate::supernet::{BlockNet, CellNet};
use crate::train::checkpoint::read_tensors;
use crate::train::classify::tensors;
use crate::util::write_atomic;

pub struct EvalOptions {
    pub blocks: Option<Vec<usize>>,
    /// Held-out batches every candidate is scored on (DNA: ~19).
    pub batches: usize,
    pub batch: usize,
    /// Size of the fixed training batch used for BN recalibration.
    pub recal_batch: usize,
    pub device: Device,
    pub workers: usize,
    pub quiet: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RankedCandidate {
    pub id: String,
    pub cell: usize,
    pub ops: Vec<LayerOp>,
    /// mean|Y−Ŷ| / std(Y).
    pub score: f64,
    pub mse: f64,
    pub params: u64,
    pub macs: u64,
    /// Per layer: the key latency tables use (`LayerShape::key`).
    pub units: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BlockRanking {
    pub block: usize,
    pub name: String,
    pub teacher_out: String,
    pub metric: String,
    pub std_y: f64,
    pub images: usize,
    pub batches: usize,
    /// Layer evaluations done on the held-out batches, and what evaluating every path from its
    /// first layer would take.
    pub layer_evals: u64,
    pub naive_layer_evals: u64,
    pub recal_layer_evals: u64,
    pub seconds: f64,
    /// Best first.
    pub candidates: Vec<RankedCandidate>,
}

/// Walks the prefix tree of `cell` depth first from input `x`. `visit(prefix, h)` computes the
/// last layer of `prefix` on `h` (called once per tree node); `leaf(path_index, y)` receives each
/// full path's output (path index in mixed radix, first layer most significant).
pub fn walk_prefixes(
    cell: &ResolvedCell,
    x: &T,
    visit: &mut dyn FnMut(&[usize], &T) -> Result<T>,
    leaf: &mut dyn FnMut(usize, &T) -> Result<()>,
) -> Result<()> {
    fn rec(
        cell: &ResolvedCell,
        prefix: &mut Vec<usize>,
        index: usize,
        h: &T,
        visit: &mut dyn FnMut(&[usize], &T) -> Result<T>,
        leaf: &mut dyn FnMut(usize, &T) -> Result<()>,
    ) -> Result<()> {
        let d = prefix.len();
        for o in 0..cell.layers[d].ops.len() {
            prefix.push(o);
            let y = visit(prefix, h)?;
            let i = index * cell.layers[d].ops.len() + o;
            if d + 1 == cell.layers.len() {
                leaf(i, &y)?;
            } else {
                rec(cell, prefix, i, &y, visit, leaf)?;
            }
            prefix.pop();
        }
        Ok(())
    }
    rec(cell, &mut Vec::new(), 0, x, visit, leaf)
}

/// Layer evaluations of one pass over `cell`: (prefix-shared, naive). Skips are free in both.
pub fn eval_counts(cell: &ResolvedCell) -> (u64, u64) {
    let (mut shared, mut prefixes) = (0u64, 1u64);
    for l in &cell.layers {
        let real = l.ops.iter().filter(|o| !o.is_skip()).count() as u64;
        shared += prefixes * real;
        prefixes *= l.ops.len() as u64;
    }
    let mut naive = 0u64;
    for i in 0..cell.paths() {
        naive += cell.path_ops(&cell.path(i)).iter().filter(|o| !o.is_skip()).count() as u64;
    }
    (shared, naive)
}

type Stats = HashMap<Vec<usize>, Vec<(String, T)>>;

/// Recalibrates every prefix of `net` on `x`; returns the BN statistics per tree node.
fn recalibrate(net: &mut CellNet, x: &T, evals: &mut u64) -> Result<Stats> {
    let _g = tch::no_grad_guard();
    let mut stats = Stats::new();
    let cell = net.cell.clone();
    let units = &mut net.units;
    walk_prefixes(
        &cell,
        x,
        &mut |prefix, h| {
            let (l, o) = (prefix.len() - 1, prefix[prefix.len() - 1]);
            let Some(m) = units[l][o].as_mut() else { return Ok(h.shallow_clone()) };
            m.bn_momentum = 1.0;
            let y = m.forward(h, true)?;
            stats.insert(prefix.to_vec(), m.buffers().into_iter().map(|(k, t)| (k, t.copy())).collect());
            *evals += 1;
            Ok(y)
        },
        &mut |_, _| Ok(()),
    )?;
    Ok(stats)
}

/// Per-path accumulators over the held-out batches.
struct Acc {
    abs: Vec<f64>,
    sq: Vec<f64>,
}

/// Scores every path of `net` on one batch (`x` → target `y`), accumulating into `acc`.
fn score_batch(net: &mut CellNet, stats: &Stats, x: &T, y: &T, acc: &mut Acc, evals: &mut u64) -> Result<()> {
    let _g = tch::no_grad_guard();
    let cell = net.cell.clone();
    let units = &mut net.units;
    walk_prefixes(
        &cell,
        x,
        &mut |prefix, h| {
            let (l, o) = (prefix.len() - 1, prefix[prefix.len() - 1]);
            let Some(m) = units[l][o].as_mut() else { return Ok(h.shallow_clone()) };
            m.load_buffers(stats.get(prefix).context("missing recalibration statistics")?)?;
            *evals += 1;
            m.forward(h, false)
        },
        &mut |i, out| {
            let d = (out - y).f_to_kind(tch::Kind::Double)?;
            acc.abs[i] += d.f_abs()?.f_sum(tch::Kind::Double)?.f_double_value(&[])?;
            acc.sq[i] += d.f_square()?.f_sum(tch::Kind::Double)?.f_double_value(&[])?;
            Ok(())
        },
    )
}

/// Ranks every candidate of the selected blocks of `run`; writes `eval/block-<i>.json`.
pub fn evaluate(run: &RunDir, opts: &EvalOptions) -> Result<Vec<BlockRanking>> {
    let t0 = std::time::Instant::now();
    let teacher_graph = run.teacher()?;
    let space = run.resolve(&teacher_graph)?;
    let n = space.blocks.len();
    let selected = opts.blocks.clone().unwrap_or_else(|| (0..n).collect());
    let mut nets = Vec::new();
    for &b in &selected {
        if b >= n {
            bail!("--block {b}: the space '{}' has {n} blocks (0..{})", run.record.space, n - 1);
        }
        if !run.is_done(b) {
            bail!(
                "block {b} ('{}') has not finished training: run dnas train --run {} --block {b}",
                space.blocks[b].name,
                run.root.display()
            );
        }
        let mut net = BlockNet::new(&space.blocks[b], space.space.se, run.record.seed, opts.device)?;
        net.load_state(&read_tensors(&run.weights_path(b))?).with_context(|| format!("'{}'", run.weights_path(b).display()))?;
        nets.push(net);
    }
    let taps: Vec<String> = nets.iter().flat_map(|b| [b.block.teacher_in.clone(), b.block.teacher_out.clone()]).collect();
    let teacher = TeacherFeatures::new(&teacher_graph, &taps, opts.device)?;
    let splits = open(&run.record.data)?;
    let chw = space.space.input;
    if splits.held_out.is_empty() {
        bail!("the run's data has no held-out split (held_out = 0); evaluation needs one");
    }
    // 1. Recalibration on a fixed training batch (seeded order, no augmentation).
    let recal_loader = Loader::new(
        Arc::new(splits.train.clone()),
        LoaderConfig {
            batch: opts.recal_batch,
            shuffle: true,
            augment: false,
            drop_last: false,
            seed: run.record.seed,
            workers: opts.workers,
            prefetch: 1,
        },
    );
    let recal = recal_loader.epoch(0, 0).next().context("the training split is empty")?;
    let (rx, _) = tensors(&recal, chw, opts.device)?;
    let rf = teacher.features(&rx)?;
    let mut recal_evals = vec![0u64; nets.len()];
    let mut stats: Vec<Vec<Stats>> = Vec::new();
    for (k, net) in nets.iter_mut().enumerate() {
        let x = rf.get(&net.block.teacher_in).context("teacher cut missing")?;
        let mut per_cell = Vec::new();
        for c in net.cells.iter_mut() {
            per_cell.push(recalibrate(c, x, &mut recal_evals[k])?);
        }
        stats.push(per_cell);
    }
    drop(rf);
    // 2. Held-out batches, streamed.
    let held = Loader::new(Arc::new(splits.held_out.clone()), LoaderConfig { workers: opts.workers, ..LoaderConfig::eval(opts.batch) });
    let batches = opts.batches.min(held.batches_per_epoch()).max(1);
    let mut accs: Vec<Vec<Acc>> = nets
        .iter()
        .map(|b| b.cells.iter().map(|c| Acc { abs: vec![0.0; c.cell.paths()], sq: vec![0.0; c.cell.paths()] }).collect())
        .collect();
    let mut ystats = vec![(0.0f64, 0.0f64, 0usize); nets.len()];
    let mut evals = vec![0u64; nets.len()];
    let mut images = 0;
    let pb = if opts.quiet { indicatif::ProgressBar::hidden() } else { indicatif::ProgressBar::new(batches as u64) };
    pb.set_style(
        indicatif::ProgressStyle::with_template("evaluating {bar:30} {pos}/{len} batches  ETA {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    for batch in held.epoch(0, 0).take(batches) {
        let (x, _) = tensors(&batch, chw, opts.device)?;
        let f = teacher.features(&x)?;
        images += batch.n;
        for (k, net) in nets.iter_mut().enumerate() {
            let bx = f.get(&net.block.teacher_in).context("teacher cut missing")?;
            let by = f.get(&net.block.teacher_out).context("teacher cut missing")?;
            let yd = by.f_to_kind(tch::Kind::Double)?;
            ystats[k].0 += yd.f_sum(tch::Kind::Double)?.f_double_value(&[])?;
            ystats[k].1 += yd.f_square()?.f_sum(tch::Kind::Double)?.f_double_value(&[])?;
            ystats[k].2 += by.numel();
            for (c, cell) in net.cells.iter_mut().enumerate() {
                score_batch(cell, &stats[k][c], bx, by, &mut accs[k][c], &mut evals[k])?;
            }
        }
        pb.inc(1);
    }
    pb.finish_and_clear();
    // 3. Rankings.
    let mut cost_cache = HashMap::new();
    let mut out = Vec::new();
    for (k, net) in nets.iter().enumerate() {
        let (sum, sumsq, count) = ystats[k];
        let mean = sum / count as f64;
        let std_y = (sumsq / count as f64 - mean * mean).max(0.0).sqrt().max(1e-12);
        let mut candidates = Vec::new();
        let mut naive = 0;
        for (c, cell) in net.cells.iter().enumerate() {
            naive += eval_counts(&cell.cell).1 * batches as u64;
            for i in 0..cell.cell.paths() {
                let path = cell.cell.path(i);
                let ops = cell.cell.path_ops(&path);
                let (mut params, mut macs, mut units) = (0, 0, Vec::new());
                for (op, slot) in ops.iter().zip(&cell.cell.layers) {
                    let (p, m) = layer_cost(*op, &slot.child, space.space.se, &mut cost_cache)?;
                    params += p;
                    macs += m;
                    units.push(slot.child.key(*op));
                }
                candidates.push(RankedCandidate {
                    id: cell.cell.path_id(&path),
                    cell: c,
                    ops,
                    score: accs[k][c].abs[i] / count as f64 / std_y,
                    mse: accs[k][c].sq[i] / count as f64,
                    params,
                    macs,
                    units,
                });
            }
        }
        candidates.sort_by(|a, b| a.score.total_cmp(&b.score).then_with(|| a.id.cmp(&b.id)));
        let ranking = BlockRanking {
            block: net.block.index,
            name: net.block.name.clone(),
            teacher_out: net.block.teacher_out.clone(),
            metric: "mean|Y-Yhat|/std(Y)".into(),
            std_y,
            images,
            batches,
            layer_evals: evals[k],
            naive_layer_evals: naive,
            recal_layer_evals: recal_evals[k],
            seconds: t0.elapsed().as_secs_f64(),
            candidates,
        };
        write_atomic(&run.eval_path(net.block.index), serde_json::to_string_pretty(&ranking)?.as_bytes())?;
        out.push(ranking);
    }
    Ok(out)
}
