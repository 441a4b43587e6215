//! `dnas search --strategy spos|cream`: one-shot supernet training (`crate::oneshot`), then the
//! strategy's pick — SPOS: evolutionary search scored by inherited-weight held-out top-1 after BN
//! recalibration; Cream: the best path of the prioritized board — written as `arch.json`, the
//! same file `dnas retrain`, `export`, `validate`, `report` and `study` read.
//!
//! ```text
//! oneshot.json     strategy, space, data, seed, training and budget settings (no timestamps)
//! space.json       the space (copied in)
//! train/           the shared trainer's run: checkpoints (with the board), train.jsonl, final.safetensors
//! board.json       Cream: the final board and every admission (step, top-1, MACs, path)
//! evolution.json   SPOS: every architecture the search scored, best first
//! arch.json        the pick
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::Args;

use super::search::parse_count;
use super::train::{set_threads, DataArgs, TrainArgs};
use super::Outcome;
use crate::data::loader::LoaderConfig;
use crate::data::{open, Dataset, Loader};
use crate::exec::parse_device;
use crate::oneshot::evolve::{evolve, EvolveConfig};
use crate::oneshot::learner::{CreamConfig, Matching, OneShotLearner};
use crate::oneshot::meta::MetaConfig;
use crate::oneshot::{inherited_top1, EvalData, OneShotNet, PathBudget};
use crate::space::point::Point;
use crate::space::{resolve_standalone, Resolved, SearchSpace};
use crate::train::fit;
use crate::util::{create_or_match, write_atomic};

#[derive(Args)]
pub struct OneShotArgs {
    /// spos (uniform one-shot + evolutionary search), cream (prioritized paths + distillation)
    /// or mfkd (low-fidelity training with KD + Gaussian-process search).
    #[arg(long)]
    pub strategy: String,
    #[arg(long)]
    pub run: PathBuf,
    #[arg(long)]
    pub space: PathBuf,
    /// A teacher to resolve tensor cuts of the space (automatic cut indices need none).
    #[arg(long)]
    pub teacher: Option<PathBuf>,
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub train: TrainArgs,
    /// Budget file (its max_macs / max_params): sampled paths and the pick stay within it.
    #[arg(long)]
    pub budget: Option<PathBuf>,
    #[arg(long, value_parser = parse_count)]
    pub max_macs: Option<u64>,
    #[arg(long, value_parser = parse_count)]
    pub max_params: Option<u64>,
    /// Cream: epochs of plain training before the board fills and distillation starts
    /// (default: the first sixth of training, as the reference's 20 of 120 epochs).
    #[arg(long)]
    pub cream_warmup_epochs: Option<f64>,
    /// Cream: paths on the prioritized board.
    #[arg(long, default_value_t = 10)]
    pub board: usize,
    /// Cream: top-1 margin over the worst board path for a path with more MACs.
    #[arg(long, default_value_t = 0.05)]
    pub board_margin: f64,
    /// Cream: how the teaching board path and its weight m are chosen — meta: the meta-network
    /// over softmax differences, learnt by the one-step unrolled rule; top1: the best, m = 1.
    #[arg(long, default_value = "meta")]
    pub matching: String,
    /// Cream (meta): steps between meta-network updates (reference 200).
    #[arg(long, default_value_t = 200)]
    pub meta_every: usize,
    /// Cream (meta): the meta layer's learning rate (reference 1e-4).
    #[arg(long, default_value_t = 1e-4)]
    pub meta_lr: f64,
    /// Cream (meta): images per board slice (reference 4).
    #[arg(long, default_value_t = 4)]
    pub meta_slice: usize,
    /// MF-KD: low-fidelity images, as a fraction of the high fidelity's (--train-subset, or
    /// the whole training split). 0.2 of the demo's 8000 images is the paper's 3% of 55000.
    #[arg(long, default_value_t = 0.2)]
    pub lowfi_fraction: f64,
    /// MF-KD: epochs at the low fidelity (the high fidelity trains --epochs).
    #[arg(long, default_value_t = 3)]
    pub lowfi_epochs: usize,
    /// MF-KD: distillation in every evaluation — hinton (soft targets from the teacher) or none.
    #[arg(long, default_value = "hinton")]
    pub kd: String,
    /// MF-KD: KD temperature and weight α (loss = (1 − α)·CE + α·T²·KL; the reference code: 32 and 1).
    #[arg(long, default_value_t = 32.0)]
    pub kd_temperature: f64,
    #[arg(long, default_value_t = 1.0)]
    pub kd_alpha: f64,
    /// MF-KD: feature-level distillation at the teacher's cut points, added to the loss — at
    /// (attention transfer), nst (neuron-selectivity transfer) or none.
    #[arg(long, default_value = "none")]
    pub feature_kd: String,
    /// MF-KD: its weight (default: the method's own, AT β = 1000, NST λ = 50).
    #[arg(long)]
    pub feature_kd_weight: Option<f64>,
    /// MF-KD: evaluations of one batch (the random start, a UCB round, the promotions) trained
    /// at once by this many `dnas study run` processes on the run directory (1 = in this process).
    #[arg(long, default_value_t = 1)]
    pub procs: usize,
    /// MF-KD: random architectures evaluated first, low-fidelity evaluations in all, proposals
    /// per surrogate round, promotions to the high fidelity, UCB β, candidate pool size.
    #[arg(long, default_value_t = 5)]
    pub init: usize,
    #[arg(long, default_value_t = 10)]
    pub evals: usize,
    #[arg(long, default_value_t = 2)]
    pub per_round: usize,
    #[arg(long, default_value_t = 2)]
    pub promote: usize,
    #[arg(long, default_value_t = 0.5)]
    pub beta: f64,
    #[arg(long, default_value_t = 500)]
    pub pool: usize,
    /// SPOS: evolutionary search sizes.
    #[arg(long, default_value_t = 20)]
    pub population: usize,
    #[arg(long, default_value_t = 10)]
    pub generations: usize,
    /// Held-out batches (of --eval-batch) every SPOS candidate and study architecture is scored on.
    #[arg(long, default_value_t = 4)]
    pub eval_batches: usize,
    #[arg(long, default_value_t = 256)]
    pub eval_batch: usize,
    #[arg(long)]
    pub json: bool,
}

/// Resolves a space with the teacher when given, else on its own (automatic cut indices only).
pub fn resolve_space(space: &Path, teacher: Option<&Path>) -> Result<Resolved> {
    let s = SearchSpace::load(space)?;
    match teacher {
        Some(t) => {
            let g = crate::teacher::layout::for_training(crate::onnx::read_file(t)?, &format!("teacher '{}'", t.display()))?;
            crate::search::run::resolve_with_teacher(&s, &g)
                .with_context(|| format!("space '{}' on teacher '{}'", space.display(), t.display()))
        }
        None => resolve_standalone(&s).with_context(|| format!("space '{}' (give --teacher for tensor cuts)", space.display())),
    }
}

/// The data's image shape must be the space's input.
pub fn check_input(a: &OneShotArgs, resolved: &Resolved, data_shape: [usize; 3]) -> Result<()> {
    if data_shape != resolved.space.input {
        bail!("space '{}' expects input {:?} but --data {} gives {:?}", a.space.display(), resolved.space.input, a.data.data, data_shape);
    }
    Ok(())
}

pub fn search(a: OneShotArgs) -> Result<Outcome> {
    let cream = match a.strategy.as_str() {
        "spos" => false,
        "cream" => true,
        "mfkd" => bail!("--strategy mfkd is dispatched to the MF-KD search before this point"),
        "dna" => bail!("--strategy dna runs as dnas train → dnas evaluate → dnas select (or dnas demo)"),
        other => bail!("unknown --strategy '{other}' (spos, cream, mfkd; dna through train/evaluate/select)"),
    };
    set_threads(a.train.threads);
    let device = parse_device(&a.train.device)?;
    let resolved = resolve_space(&a.space, a.teacher.as_deref())?;
    let (max_macs, max_params) = cost_limits(a.budget.as_deref(), a.max_macs, a.max_params)?;
    let budget = PathBudget { max_macs, max_params };
    let splits = open(&a.data.spec(a.train.seed))?;
    let mut train_set = splits.train.clone();
    if let Some(n) = a.train.train_subset {
        train_set = train_set.take(n);
    }
    check_input(&a, &resolved, splits.train.shape())?;
    let loader = Loader::new(
        Arc::new(train_set),
        LoaderConfig {
            batch: a.train.batch,
            shuffle: true,
            augment: true,
            drop_last: true,
            seed: a.train.seed,
            workers: a.data.workers,
            prefetch: 4,
        },
    );
    let cfg = a.train.config()?;
    let matching = match a.matching.as_str() {
        "meta" => Matching::Meta,
        "top1" => Matching::Top1,
        other => bail!("--matching '{other}' is not known (meta, top1)"),
    };
    if matching == Matching::Meta && (a.meta_slice == 0 || 2 * a.meta_slice > a.train.batch) {
        bail!(
            "--meta-slice {} needs 1 ≤ 2·slice ≤ --batch {} (the unrolled update uses two slices of a batch)",
            a.meta_slice,
            a.train.batch
        );
    }
    let cream_cfg = cream.then(|| CreamConfig {
        warmup_steps: (a.cream_warmup_epochs.unwrap_or(a.train.epochs as f64 / 6.0) * loader.batches_per_epoch() as f64).round() as usize,
        board_size: a.board,
        margin: a.board_margin,
        matching,
        meta: (matching == Matching::Meta).then_some(MetaConfig {
            slice: a.meta_slice,
            every: a.meta_every,
            lr: a.meta_lr,
            inner_lr: a.train.lr,
        }),
    });
    let record = serde_json::json!({
        "format": "dnas.oneshot", "version": 1, "strategy": a.strategy,
        "space": format!("{}@{}", resolved.space.name, resolved.space.version),
        "data": a.data.spec(a.train.seed), "train_subset": a.train.train_subset, "batch": a.train.batch, "train": cfg,
        "label_smoothing": a.train.label_smoothing, "seed": a.train.seed, "budget": budget, "cream": cream_cfg,
    });
    std::fs::create_dir_all(&a.run).with_context(|| format!("cannot create '{}'", a.run.display()))?;
    create_or_match(&a.run.join("oneshot.json"), &record, "one-shot run")?;
    let space_text = std::fs::read(&a.space).with_context(|| format!("cannot read '{}'", a.space.display()))?;
    write_atomic(&a.run.join("space.json"), &space_text)?;

    let t0 = std::time::Instant::now();
    let net = OneShotNet::new(&resolved, budget, a.train.seed, device)?;
    let mut learner = OneShotLearner::new(net, resolved.space.input, a.train.label_smoothing, cream_cfg.clone());
    let train_dir = a.run.join("train");
    let resume = train_dir.join("ckpt").exists();
    let summary = fit(&mut learner, &loader, &cfg, &train_dir, resume || a.train.resume, a.json, &mut |_, _| Ok(serde_json::json!({})))?;
    let train_seconds = t0.elapsed().as_secs_f64();

    let t1 = std::time::Instant::now();
    let ev = EvalData::load(&a.data.spec(a.train.seed), a.eval_batches, a.eval_batch, device)?;
    let (pick, extra): (Point, serde_json::Value) = if cream {
        write_atomic(
            &a.run.join("board.json"),
            serde_json::to_string_pretty(&serde_json::json!({"board": learner.board, "history": learner.history,
                "distilled_steps": learner.distilled_steps, "matching": matching, "meta": learner.meta_log}))?
            .as_bytes(),
        )?;
        if learner.board.entries.is_empty() {
            bail!("the board is empty: train past --cream-warmup-epochs");
        }
        // Every board entry re-scored on held-out batches (BN recalibrated); the best within
        // the budget is the pick — not the entry that led on one training batch.
        let board = learner.board.clone();
        let costs: std::collections::HashMap<String, (u64, u64)> =
            board.entries.iter().map(|e| (e.key.clone(), learner.net.cost(&e.path))).collect();
        let net = &mut learner.net;
        let (i, held_scores) = board
            .pick_held_out(
                |e| costs.get(&e.key).is_some_and(|&(p, m)| budget.fits(p, m)),
                |e| inherited_top1(net, &e.path, &ev.recal, &ev.held),
            )?
            .context("no board entry fits the budget")?;
        let best = &board.entries[i];
        let rescored: Vec<serde_json::Value> = board
            .entries
            .iter()
            .zip(&held_scores)
            .map(|(e, s)| serde_json::json!({"key": e.key, "macs": e.macs, "top1_train_batch": e.top1, "held_out_top1_inherited": s}))
            .collect();
        (
            best.path.clone(),
            serde_json::json!({"board_top1_train_batch": best.top1, "held_out_top1_inherited": held_scores[i],
                "board": board.entries.len(), "pick_rule": "held-out best within the budget", "rescored": rescored}),
        )
    } else {
        let ecfg = EvolveConfig { population: a.population, generations: a.generations, seed: a.train.seed, ..EvolveConfig::default() };
        let scored = evolve(&mut learner.net, &ecfg, &mut |net, p| inherited_top1(net, p, &ev.recal, &ev.held))?;
        write_atomic(
            &a.run.join("evolution.json"),
            serde_json::to_string_pretty(&serde_json::json!({"config": ecfg, "scored": scored}))?.as_bytes(),
        )?;
        let best = scored.first().context("the evolutionary search scored nothing")?;
        (best.point.clone(), serde_json::json!({"held_out_top1_inherited": best.score, "scored": scored.len()}))
    };
    // The teacher (when one resolved the space's cuts) is named by its hash, as DNA's picks are.
    let teacher_sha = match &a.teacher {
        Some(t) => crate::search::run::sha256_hex(&std::fs::read(t).with_context(|| format!("cannot read teacher '{}'", t.display()))?),
        None => String::new(),
    };
    let mut arch = resolved.arch(&pick, &format!("{}_{}", resolved.space.name, a.strategy), &teacher_sha)?;
    let (params, macs) = learner.net.cost(&pick);
    arch.predicted = crate::space::arch::Predicted {
        score: extra["held_out_top1_inherited"].as_f64().unwrap_or(0.0),
        macs,
        params,
        latency_ms: None,
        score_kind: format!("{}: held-out top-1 with inherited one-shot weights", a.strategy),
        higher_is_better: Some(true),
    };
    arch.budget = serde_json::json!({"max_macs": max_macs, "max_params": max_params, "strategy": a.strategy});
    write_atomic(&a.run.join("arch.json"), serde_json::to_string_pretty(&arch)?.as_bytes())?;
    let search_seconds = t1.elapsed().as_secs_f64();
    let out = serde_json::json!({"strategy": a.strategy, "arch": a.run.join("arch.json"), "key": resolved.key(&pick), "macs": macs, "params": params,
        "train_steps": summary.steps, "train_seconds": train_seconds, "search_seconds": search_seconds, "detail": extra});
    write_atomic(&a.run.join("search.json"), serde_json::to_string_pretty(&out)?.as_bytes())?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!("{} pick   {}", a.strategy, resolved.key(&pick));
        println!(
            "MACs {macs}, params {params}; inherited held-out top-1 {:.2}%",
            100.0 * out["detail"]["held_out_top1_inherited"].as_f64().unwrap_or(0.0)
        );
        println!("one-shot training {} steps, {train_seconds:.0} s; search {search_seconds:.1} s", summary.steps);
        println!("wrote {}", a.run.join("arch.json").display());
    }
    Ok(Outcome::Ok)
}

/// MACs and params limits: the flags, else the budget file's `max_macs` / `max_params`.
pub fn cost_limits(budget: Option<&Path>, max_macs: Option<u64>, max_params: Option<u64>) -> Result<(Option<u64>, Option<u64>)> {
    match budget {
        Some(b) => {
            let budget = crate::validate::budget::Budget::load(b)?;
            Ok((max_macs.or(budget.max_macs), max_params.or(budget.max_params)))
        }
        None => Ok((max_macs, max_params)),
    }
}
