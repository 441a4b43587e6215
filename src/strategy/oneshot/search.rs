//! A one-shot search end to end (`dnas search spos|cream`): the supernet trained on the shared
//! loop under the limits, then the strategy's pick — SPOS: evolutionary search scored by
//! inherited-weight held-out top-1 after BN recalibration; Cream: every board path re-scored the
//! same way, the best within the limits — written as `arch.json`, with the run's `search.json`.
//!
//! ```text
//! search.json      the header (strategy, space, teacher hash, limits, seed, settings) and the result
//! oneshot.json     the strategy's settings (checked on resume)
//! space.json       the space (copied in)
//! train/           the shared trainer's run: checkpoints (with the board), train.jsonl, final.safetensors
//! board.json       Cream: the final board and every admission (step, top-1, MACs, path)
//! evolution.json   SPOS: every architecture the search scored, best first
//! arch.json        the pick
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use super::evolve::{evolve, EvolveConfig};
use super::learner::{CreamConfig, Matching, OneShotLearner};
use super::meta::MetaConfig;
use super::{inherited_top1, EvalData, OneShotNet, PathBudget};
use crate::data::loader::LoaderConfig;
use crate::data::{open, DataSpec, Dataset, Loader};
use crate::space::point::Point;
use crate::strategy::{begin, finish, resolve_space, space_id, teacher_sha256, SearchHeader, SearchRecord, SearchResult, Strategy};
use crate::train::{fit, TrainConfig};
use crate::util::{create_or_match, write_atomic};

/// Cream's own settings.
#[derive(Clone, Debug)]
pub struct CreamSettings {
    /// Epochs of plain training before the board fills (default: the first sixth of training).
    pub warmup_epochs: Option<f64>,
    pub board: usize,
    pub margin: f64,
    pub matching: Matching,
    pub meta_every: usize,
    pub meta_lr: f64,
    pub meta_slice: usize,
}

/// Everything a one-shot search needs.
#[derive(Clone, Debug)]
pub struct OneShotSearch {
    pub strategy: Strategy,
    pub run: PathBuf,
    pub space: PathBuf,
    pub teacher: Option<PathBuf>,
    pub data: DataSpec,
    pub workers: usize,
    pub train_subset: Option<usize>,
    pub batch: usize,
    pub train: TrainConfig,
    pub label_smoothing: f64,
    pub seed: u64,
    pub limits: PathBudget,
    /// Cream only.
    pub cream: Option<CreamSettings>,
    /// SPOS only: population and generations.
    pub evolve: (usize, usize),
    /// Held-out batches (of `eval_batch`) every scored architecture sees.
    pub eval_batches: usize,
    pub eval_batch: usize,
    pub device: tch::Device,
    pub resume: bool,
    pub quiet: bool,
}

/// Runs (or resumes) the search; returns the run's `search.json` with its result.
pub fn run_oneshot(s: &OneShotSearch) -> Result<SearchRecord> {
    let cream = match s.strategy {
        Strategy::Spos => false,
        Strategy::Cream => true,
        other => bail!("internal: {other} is not a one-shot strategy"),
    };
    let resolved = resolve_space(&s.space, s.teacher.as_deref())?;
    let splits = open(&s.data)?;
    if splits.train.shape() != resolved.space.input {
        bail!(
            "space '{}' expects input {:?} but --data {} gives {:?}",
            s.space.display(),
            resolved.space.input,
            s.data.source,
            splits.train.shape()
        );
    }
    let train_set = match s.train_subset {
        Some(n) => splits.train.clone().take(n),
        None => splits.train.clone(),
    };
    let loader = Loader::new(
        Arc::new(train_set),
        LoaderConfig { batch: s.batch, shuffle: true, augment: true, drop_last: true, seed: s.seed, workers: s.workers, prefetch: 4 },
    );
    let cream_cfg = match (&s.cream, cream) {
        (Some(c), true) => Some(cream_config(c, s, loader.batches_per_epoch())?),
        (None, true) => bail!("internal: a Cream search without its settings"),
        _ => None,
    };
    let record = json!({
        "format": "dnas.oneshot", "version": 1, "strategy": s.strategy,
        "space": space_id(&resolved),
        "data": s.data, "train_subset": s.train_subset, "batch": s.batch, "train": s.train,
        "label_smoothing": s.label_smoothing, "seed": s.seed, "budget": s.limits, "cream": cream_cfg,
    });
    std::fs::create_dir_all(&s.run).with_context(|| format!("cannot create '{}'", s.run.display()))?;
    create_or_match(&s.run.join("oneshot.json"), &record, "one-shot run")?;
    let teacher_sha = teacher_sha256(s.teacher.as_deref())?;
    let mut settings = record.clone();
    settings["evolve"] =
        json!({"population": s.evolve.0, "generations": s.evolve.1, "eval_batches": s.eval_batches, "eval_batch": s.eval_batch});
    begin(&s.run, &SearchHeader::new(s.strategy, space_id(&resolved), teacher_sha.clone(), s.limits, s.seed, settings))?;
    let space_text = std::fs::read(&s.space).with_context(|| format!("cannot read '{}'", s.space.display()))?;
    write_atomic(&s.run.join("space.json"), &space_text)?;

    let t0 = std::time::Instant::now();
    let net = OneShotNet::new(&resolved, s.limits, s.seed, s.device)?;
    let mut learner = OneShotLearner::new(net, resolved.space.input, s.label_smoothing, cream_cfg.clone());
    let train_dir = s.run.join("train");
    let resume = train_dir.join("ckpt").exists() || s.resume;
    let summary = fit(&mut learner, &loader, &s.train, &train_dir, resume, s.quiet, &mut |_, _| Ok(json!({})))?;
    let train_seconds = t0.elapsed().as_secs_f64();

    let t1 = std::time::Instant::now();
    let ev = EvalData::load(&s.data, s.eval_batches, s.eval_batch, s.device)?;
    let (pick, score, mut detail) = if cream {
        cream_pick(&s.run, &mut learner, &ev, s.limits, s.cream.as_ref().map_or(Matching::Top1, |c| c.matching))?
    } else {
        spos_pick(&s.run, &mut learner, &ev, s.seed, s.evolve)?
    };
    detail["train_steps"] = json!(summary.steps);
    let mut arch = resolved.arch(&pick, &format!("{}_{}", resolved.space.name, s.strategy), &teacher_sha)?;
    let (params, macs) = learner.net.cost(&pick);
    arch.predicted = crate::space::arch::Predicted {
        score,
        macs,
        params,
        latency_ms: None,
        score_kind: format!("{}: held-out top-1 with inherited one-shot weights", s.strategy),
        higher_is_better: Some(true),
    };
    arch.budget = json!({"max_macs": s.limits.max_macs, "max_params": s.limits.max_params, "strategy": s.strategy});
    write_atomic(&s.run.join("arch.json"), serde_json::to_string_pretty(&arch)?.as_bytes())?;
    finish(&s.run, SearchResult::of_arch(&arch, "arch.json", train_seconds, t1.elapsed().as_secs_f64(), detail))
}

fn cream_config(c: &CreamSettings, s: &OneShotSearch, batches_per_epoch: usize) -> Result<CreamConfig> {
    if c.matching == Matching::Meta && (c.meta_slice == 0 || 2 * c.meta_slice > s.batch) {
        bail!("--meta-slice {} needs 1 ≤ 2·slice ≤ --batch {} (the unrolled update uses two slices of a batch)", c.meta_slice, s.batch);
    }
    Ok(CreamConfig {
        warmup_steps: (c.warmup_epochs.unwrap_or(s.train.epochs as f64 / 6.0) * batches_per_epoch as f64).round() as usize,
        board_size: c.board,
        margin: c.margin,
        matching: c.matching,
        meta: (c.matching == Matching::Meta).then_some(MetaConfig {
            slice: c.meta_slice,
            every: c.meta_every,
            lr: c.meta_lr,
            inner_lr: s.train.lr,
        }),
    })
}

/// Cream's pick: every board entry re-scored on held-out batches (BN recalibrated); the best
/// within the limits — not the entry that led on one training batch. Writes `board.json`.
fn cream_pick(
    run: &Path,
    learner: &mut OneShotLearner,
    ev: &EvalData,
    limits: PathBudget,
    matching: Matching,
) -> Result<(Point, f64, Value)> {
    write_atomic(
        &run.join("board.json"),
        serde_json::to_string_pretty(&json!({"board": learner.board, "history": learner.history,
            "distilled_steps": learner.distilled_steps, "matching": matching, "meta": learner.meta_log}))?
        .as_bytes(),
    )?;
    if learner.board.entries.is_empty() {
        bail!("the board is empty: train past --cream-warmup-epochs");
    }
    let board = learner.board.clone();
    let costs: HashMap<String, (u64, u64)> = board.entries.iter().map(|e| (e.key.clone(), learner.net.cost(&e.path))).collect();
    let net = &mut learner.net;
    let (i, held_scores) = board
        .pick_held_out(
            |e| costs.get(&e.key).is_some_and(|&(p, m)| limits.fits(p, m)),
            |e| inherited_top1(net, &e.path, &ev.recal, &ev.held),
        )?
        .context("no board entry fits the budget")?;
    let best = &board.entries[i];
    let rescored: Vec<Value> = board
        .entries
        .iter()
        .zip(&held_scores)
        .map(|(e, s)| json!({"key": e.key, "macs": e.macs, "top1_train_batch": e.top1, "held_out_top1_inherited": s}))
        .collect();
    let detail = json!({"board_top1_train_batch": best.top1, "held_out_top1_inherited": held_scores[i],
        "board": board.entries.len(), "pick_rule": "held-out best within the budget", "rescored": rescored});
    let score = held_scores[i].context("internal: the picked board entry was not scored")?;
    Ok((best.path.clone(), score, detail))
}

/// SPOS's pick: the evolutionary search's best. Writes `evolution.json`.
fn spos_pick(
    run: &Path,
    learner: &mut OneShotLearner,
    ev: &EvalData,
    seed: u64,
    (population, generations): (usize, usize),
) -> Result<(Point, f64, Value)> {
    let ecfg = EvolveConfig { population, generations, seed, ..EvolveConfig::default() };
    let scored = evolve(&mut learner.net, &ecfg, &mut |net, p| inherited_top1(net, p, &ev.recal, &ev.held))?;
    write_atomic(&run.join("evolution.json"), serde_json::to_string_pretty(&json!({"config": ecfg, "scored": scored}))?.as_bytes())?;
    let best = scored.first().context("the evolutionary search scored nothing")?;
    Ok((best.point.clone(), best.score, json!({"held_out_top1_inherited": best.score, "scored": scored.len()})))
}
