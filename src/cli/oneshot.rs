//! `dnas search spos|cream`: flags into a `strategy::oneshot::search::OneShotSearch`, the
//! search run by the library, its record printed. The flags every strategy shares
//! ([`SearchArgs`]) live here too.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;

use super::eval::DataArgs;
use super::train::{set_threads, TrainArgs};
use super::Outcome;
use crate::exec::parse_device;
use crate::space::limits::PathBudget;
use crate::strategy::oneshot::learner::Matching;
use crate::strategy::oneshot::search::{run_oneshot, CreamSettings, OneShotSearch};
use crate::strategy::{SearchRecord, Strategy};
use crate::util::parse_count;

/// What every `dnas search` strategy is given: the run directory, the space and teacher, the
/// data, the training recipe and the cost limits.
#[derive(Args)]
pub struct SearchArgs {
    #[arg(long)]
    pub run: PathBuf,
    #[arg(long)]
    pub space: PathBuf,
    /// A teacher to resolve tensor cuts of the space (automatic cut indices need none; MF-KD
    /// distils from it).
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
    #[arg(long)]
    pub json: bool,
}

impl SearchArgs {
    pub fn limits(&self) -> Result<PathBudget> {
        let (max_macs, max_params) = crate::validate::budget::cost_limits(self.budget.as_deref(), self.max_macs, self.max_params)?;
        Ok(PathBudget { max_macs, max_params })
    }
}

/// How SPOS and Cream score an architecture with inherited weights.
#[derive(Args)]
pub struct HeldOutArgs {
    /// Held-out batches (of --eval-batch) every candidate is scored on.
    #[arg(long, default_value_t = 4)]
    pub eval_batches: usize,
    #[arg(long, default_value_t = 256)]
    pub eval_batch: usize,
}

/// `dnas search spos`.
#[derive(Args)]
pub struct SposArgs {
    #[command(flatten)]
    pub common: SearchArgs,
    #[command(flatten)]
    pub held: HeldOutArgs,
    /// Evolutionary search sizes.
    #[arg(long, default_value_t = 20)]
    pub population: usize,
    #[arg(long, default_value_t = 10)]
    pub generations: usize,
}

/// `dnas search cream`.
#[derive(Args)]
pub struct CreamArgs {
    #[command(flatten)]
    pub common: SearchArgs,
    #[command(flatten)]
    pub held: HeldOutArgs,
    /// Epochs of plain training before the board fills and distillation starts
    /// (default: the first sixth of training, as the reference's 20 of 120 epochs).
    #[arg(long)]
    pub cream_warmup_epochs: Option<f64>,
    /// Paths on the prioritized board.
    #[arg(long, default_value_t = 10)]
    pub board: usize,
    /// Top-1 margin over the worst board path for a path with more MACs.
    #[arg(long, default_value_t = 0.05)]
    pub board_margin: f64,
    /// How the teaching board path and its weight m are chosen — meta: the meta-network
    /// over softmax differences, learnt by the one-step unrolled rule; top1: the best, m = ½.
    #[arg(long, default_value = "meta")]
    pub matching: String,
    /// Steps between meta-network updates (reference 200).
    #[arg(long, default_value_t = 200)]
    pub meta_every: usize,
    /// The meta layer's learning rate (reference 1e-4).
    #[arg(long, default_value_t = 1e-4)]
    pub meta_lr: f64,
    /// Images per board slice (reference 4).
    #[arg(long, default_value_t = 4)]
    pub meta_slice: usize,
}

/// A one-shot search's settings from the flags common to every strategy.
fn oneshot_search(strategy: Strategy, c: &SearchArgs, held: &HeldOutArgs) -> Result<OneShotSearch> {
    set_threads(c.train.threads);
    Ok(OneShotSearch {
        strategy,
        run: c.run.clone(),
        space: c.space.clone(),
        teacher: c.teacher.clone(),
        data: c.data.spec(c.train.seed),
        workers: c.data.workers,
        train_subset: c.train.train_subset,
        batch: c.train.batch,
        train: c.train.config()?,
        label_smoothing: c.train.label_smoothing,
        seed: c.train.seed,
        limits: c.limits()?,
        cream: None,
        evolve: (0, 0),
        eval_batches: held.eval_batches,
        eval_batch: held.eval_batch,
        device: parse_device(&c.train.device)?,
        resume: c.train.resume,
        quiet: c.json,
    })
}

pub fn spos(a: SposArgs) -> Result<Outcome> {
    let s = OneShotSearch { evolve: (a.population, a.generations), ..oneshot_search(Strategy::Spos, &a.common, &a.held)? };
    print_result(&run_oneshot(&s)?, &a.common)
}

pub fn cream(a: CreamArgs) -> Result<Outcome> {
    let matching = match a.matching.as_str() {
        "meta" => Matching::Meta,
        "top1" => Matching::Top1,
        other => bail!("--matching '{other}' is not known (meta, top1)"),
    };
    let cream = CreamSettings {
        warmup_epochs: a.cream_warmup_epochs,
        board: a.board,
        margin: a.board_margin,
        matching,
        meta_every: a.meta_every,
        meta_lr: a.meta_lr,
        meta_slice: a.meta_slice,
    };
    let s = OneShotSearch { cream: Some(cream), ..oneshot_search(Strategy::Cream, &a.common, &a.held)? };
    print_result(&run_oneshot(&s)?, &a.common)
}

/// The search's record as JSON, or its pick, score and cost as lines.
pub fn print_result(rec: &SearchRecord, c: &SearchArgs) -> Result<Outcome> {
    let r = rec.result.as_ref().context("internal: the search finished without a result")?;
    if c.json {
        println!("{}", serde_json::to_string_pretty(rec)?);
        return Ok(Outcome::Ok);
    }
    println!("{} pick   {}", rec.header.strategy, r.key);
    println!("MACs {}, params {}; predicted {:.4} ({})", r.macs, r.params, r.score, r.score_kind);
    println!("training {:.0} s; search {:.1} s", r.train_seconds, r.search_seconds);
    println!("wrote {}", c.run.join(&r.arch).display());
    Ok(Outcome::Ok)
}
