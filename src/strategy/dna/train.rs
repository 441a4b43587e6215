//! `dnas train`: trains the block supernets of a run on the shared loop. All unfinished blocks
//! train together by default (one teacher forward per batch); `--block I` trains only block I, so
//! blocks can run as separate processes, on separate devices or hosts, into one run directory.
//! A block that finished (`blocks/<i>/done.json`) is never retrained; an interrupted block
//! resumes from its last checkpoint (`blocks/<i>/ckpt/`), whatever it was trained with.

use std::sync::Arc;

use anyhow::{bail, Result};
use serde::Serialize;
use tch::Device;

use super::block_checkpoints::{group_by_step, BlockSlot, PerBlock};
use super::run::RunDir;
use crate::data::loader::LoaderConfig;
use crate::data::{open, Dataset, Loader};
use crate::ir::Graph;
use crate::space::Resolved;
use crate::supernet::learner::SupernetLearner;
use crate::supernet::teacher::TeacherFeatures;
use crate::supernet::BlockNet;
use crate::train::checkpoint::write_tensors;
use crate::train::optim::OptimConfig;
use crate::train::schedule::Decay;
use crate::train::{fit_with_store, FitSummary, Learner, TrainConfig};
use crate::util::write_atomic;

pub struct TrainOptions {
    /// Blocks to train (`None` = all unfinished).
    pub blocks: Option<Vec<usize>>,
    pub device: Device,
    pub workers: usize,
    pub quiet: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct BlockOutcome {
    pub block: usize,
    pub name: String,
    /// Held-out MSE (a few fixed paths per cell) before training and after each epoch.
    pub held_out_mse: Vec<f64>,
    pub skipped: bool,
    pub steps: usize,
    pub seconds: f64,
}

/// Trains the selected blocks of `run`; returns one outcome per selected block.
pub fn train_blocks(run: &RunDir, opts: &TrainOptions) -> Result<Vec<BlockOutcome>> {
    let teacher = run.teacher()?;
    let space = run.resolve(&teacher)?;
    let n = space.blocks.len();
    let selected = opts.blocks.clone().unwrap_or_else(|| (0..n).collect());
    for &b in &selected {
        if b >= n {
            bail!("--block {b}: the space '{}' has {n} blocks (0..{})", run.record.space, n - 1);
        }
    }
    let mut outcomes = Vec::new();
    let mut todo = Vec::new();
    for &b in &selected {
        if run.is_done(b) {
            let done: serde_json::Value = serde_json::from_slice(&std::fs::read(run.done_path(b))?)?;
            if !opts.quiet {
                eprintln!("block {b} ('{}') is already trained; skipping", space.blocks[b].name);
            }
            outcomes.push(BlockOutcome {
                block: b,
                name: space.blocks[b].name.clone(),
                held_out_mse: serde_json::from_value(done["held_out_mse"].clone()).unwrap_or_default(),
                skipped: true,
                steps: done["steps"].as_u64().unwrap_or(0) as usize,
                seconds: done["seconds"].as_f64().unwrap_or(0.0),
            });
        } else if !todo.contains(&b) {
            todo.push(b);
        }
    }
    // One trainer per block across every process and host sharing the run directory: a block
    // someone else holds is refused by name; a lock a dead job left is taken over (and said so).
    let mut _locks = Vec::new();
    for &b in &todo {
        let what = format!("block {b} ('{}') of run '{}'", space.blocks[b].name, run.root.display());
        let lock = crate::util::lock::try_lock(&run.block_dir(b).join("train.lock"), &what)?;
        if let (Some(prev), false) = (&lock.previous, opts.quiet) {
            eprintln!("block {b}: taking over from {prev}, which no longer holds it (its checkpoint resumes)");
        }
        _locks.push(lock);
    }
    if todo.iter().any(|&b| run.is_done(b)) {
        bail!("a block of {todo:?} was finished by another process while this one started; run again to skip it");
    }
    if todo.is_empty() {
        return Ok(outcomes);
    }
    // Checkpoints are per block: blocks standing at the same step train as one group (one
    // teacher forward per batch); blocks at different steps (e.g. one requeued alone after a
    // group was interrupted) as separate groups, each from its own checkpoint.
    let slots: Vec<BlockSlot> =
        todo.iter().map(|&b| BlockSlot { index: b, name: space.blocks[b].name.clone(), dir: run.block_dir(b) }).collect();
    for (_, group) in group_by_step(&slots)? {
        outcomes.extend(train_group(run, &teacher, &space, &group, opts)?);
    }
    outcomes.sort_by_key(|o| o.block);
    Ok(outcomes)
}

/// Trains one group of blocks whose checkpoints (if any) stand at the same step.
fn train_group(run: &RunDir, teacher: &Graph, space: &Resolved, group: &[BlockSlot], opts: &TrainOptions) -> Result<Vec<BlockOutcome>> {
    let todo: Vec<usize> = group.iter().map(|b| b.index).collect();
    let mut outcomes = Vec::new();
    let rec = &run.record;
    let t = &rec.train;
    let splits = open(&rec.data)?;
    let mut train_set = splits.train.clone();
    if let Some(k) = t.train_subset {
        train_set = train_set.take(k);
    }
    if splits.train.shape() != space.space.input {
        bail!("the space expects input {:?} but the data gives {:?}", space.space.input, splits.train.shape());
    }
    let blocks: Vec<BlockNet> =
        todo.iter().map(|&b| BlockNet::new(&space.blocks[b], space.space.se, rec.seed, opts.device)).collect::<Result<_>>()?;
    let taps: Vec<String> = blocks.iter().flat_map(|b| [b.block.teacher_in.clone(), b.block.teacher_out.clone()]).collect();
    let teacher = TeacherFeatures::new(teacher, &taps, opts.device)?;
    let mut learner = SupernetLearner { teacher, blocks, input_chw: space.space.input, window: (Vec::new(), 0) };
    let loader = Loader::new(
        Arc::new(train_set),
        LoaderConfig {
            batch: t.batch,
            shuffle: true,
            augment: t.augment,
            drop_last: true,
            seed: rec.seed,
            workers: opts.workers,
            prefetch: 4,
        },
    );
    let held = Loader::new(Arc::new(splits.held_out.clone()), LoaderConfig { workers: opts.workers, ..LoaderConfig::eval(256) });
    let probe = |l: &SupernetLearner| -> Result<Vec<f64>> {
        if held.dataset().is_empty() || t.probe_batches == 0 {
            return Ok(vec![f64::NAN; l.blocks.len()]);
        }
        l.probe(&held, t.probe_batches, 4)
    };
    let before = probe(&learner)?;
    if !opts.quiet {
        let names: Vec<String> = todo.iter().map(|&b| format!("{b} ('{}')", space.blocks[b].name)).collect();
        let params: usize = learner.parameters().iter().map(|(_, p, _)| p.numel()).sum();
        eprintln!(
            "training block{} {} on {:?}: {} supernet parameters, {} steps of batch {}",
            if todo.len() > 1 { "s" } else { "" },
            names.join(", "),
            opts.device,
            params,
            t.max_steps.map_or(loader.batches_per_epoch() * t.epochs, |m| m.min(loader.batches_per_epoch() * t.epochs)),
            t.batch
        );
    }
    let cfg = TrainConfig {
        epochs: t.epochs,
        // Each block's own rate comes in through `lr_scales`.
        lr: 1.0,
        weight_decay: t.weight_decay,
        optim: OptimConfig::Adamw { beta1: 0.9, beta2: 0.999, eps: 1e-8 },
        decay: Decay::Exp { gamma: t.gamma },
        warmup_epochs: 0.0,
        ema: None,
        clip: None,
        ckpt_every: t.ckpt_every,
        log_every: 20,
        max_steps: t.max_steps,
    };
    let mut history: Vec<Vec<f64>> = before.iter().map(|&v| vec![v]).collect();
    let names: Vec<String> = todo.iter().map(|&b| space.blocks[b].name.clone()).collect();
    let store = PerBlock { blocks: group.to_vec() };
    let summary: FitSummary =
        fit_with_store(&mut learner, &loader, &cfg, &run.group_dir(&todo), &store, true, opts.quiet, &mut |l, _epoch| {
            let v = probe(l)?;
            let map: serde_json::Map<String, serde_json::Value> =
                names.iter().zip(&v).map(|(k, x)| (k.clone(), serde_json::json!(x))).collect();
            Ok(serde_json::json!({ "held_out_mse": map }))
        })?;
    // Rebuild the history from the epoch reports (a resumed run has the earlier epochs there too).
    for rep in &summary.epoch_reports {
        for (k, name) in names.iter().enumerate() {
            if let Some(v) = rep["eval"]["held_out_mse"][name].as_f64() {
                history[k].push(v);
            }
        }
    }
    for (k, b) in learner.blocks.iter().enumerate() {
        let i = b.block.index;
        write_tensors(&run.weights_path(i), &b.state())?;
        let done = serde_json::json!({
            "block": i, "name": b.block.name, "held_out_mse": history[k], "steps": summary.steps,
            "seconds": summary.seconds, "trained_with": todo, "teacher_in": b.block.teacher_in, "teacher_out": b.block.teacher_out,
        });
        write_atomic(&run.done_path(i), serde_json::to_string_pretty(&done)?.as_bytes())?;
        outcomes.push(BlockOutcome {
            block: i,
            name: b.block.name.clone(),
            held_out_mse: history[k].clone(),
            skipped: false,
            steps: summary.steps,
            seconds: summary.seconds,
        });
    }
    Ok(outcomes)
}
