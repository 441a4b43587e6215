//! `dnas search mfkd`: flags into a `strategy::mfkd::run::MfkdSearch`, the search run by the
//! library (`strategy::mfkd`: every candidate trained alone at a low fidelity with distillation
//! from the teacher, a Gaussian-process surrogate proposing the next ones by UCB, the best
//! promoted to the high fidelity), its record printed.

use anyhow::{bail, Result};
use clap::Args;

use super::oneshot::{print_result, SearchArgs};
use super::Outcome;
use crate::strategy::mfkd::run::{run_mfkd, MfkdSearch};
use crate::strategy::mfkd::MfkdConfig;
use crate::study::retrain::Runner;
use crate::study::truth::{KdRecipe, Recipe};

/// `dnas search mfkd`.
#[derive(Args)]
pub struct MfkdArgs {
    #[command(flatten)]
    pub common: SearchArgs,
    /// Low-fidelity images, as a fraction of the high fidelity's (--train-subset, or the whole
    /// training split). 0.2 of the demo's 8000 images is the paper's 3% of 55000.
    #[arg(long, default_value_t = 0.2)]
    pub lowfi_fraction: f64,
    /// Epochs at the low fidelity (the high fidelity trains --epochs).
    #[arg(long, default_value_t = 3)]
    pub lowfi_epochs: usize,
    /// Distillation in every evaluation — hinton (soft targets from the teacher) or none.
    #[arg(long, default_value = "hinton")]
    pub kd: String,
    /// KD temperature and weight α (loss = (1 − α)·CE + α·T²·KL; the reference code: 32 and 1).
    #[arg(long, default_value_t = 32.0)]
    pub kd_temperature: f64,
    #[arg(long, default_value_t = 1.0)]
    pub kd_alpha: f64,
    /// Feature-level distillation at the teacher's cut points, added to the loss — at
    /// (attention transfer), nst (neuron-selectivity transfer) or none.
    #[arg(long, default_value = "none")]
    pub feature_kd: String,
    /// Its weight (default: the method's own, AT β = 1000, NST λ = 50).
    #[arg(long)]
    pub feature_kd_weight: Option<f64>,
    /// Evaluations of one batch (the random start, a UCB round, the promotions) trained at once
    /// by this many `dnas study run` processes on the run directory (1 = in this process).
    #[arg(long, default_value_t = 1)]
    pub procs: usize,
    /// Random architectures evaluated first, low-fidelity evaluations in all, proposals per
    /// surrogate round, promotions to the high fidelity, UCB β, candidate pool size.
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
}

pub fn search_cmd(m: MfkdArgs) -> Result<Outcome> {
    let a = &m.common;
    crate::train::set_threads(a.train.threads);
    let kd = match m.kd.as_str() {
        "hinton" => Some(KdRecipe { temperature: m.kd_temperature, alpha: m.kd_alpha }),
        "none" => None,
        other => bail!("--kd '{other}' is not known (hinton, none)"),
    };
    let t = &a.train;
    let high = Recipe {
        data: a.data.data.clone(),
        held_out: a.data.held_out,
        data_seed: t.seed,
        train_subset: t.train_subset,
        epochs: t.epochs,
        batch: t.batch,
        optimizer: t.optimizer.clone(),
        lr: t.lr,
        weight_decay: t.weight_decay,
        schedule: t.schedule.clone(),
        warmup_epochs: t.warmup_epochs,
        label_smoothing: t.label_smoothing,
        kd,
        feature_kd: None,
    };
    let search = MfkdConfig {
        init: m.init,
        evals: m.evals,
        per_round: m.per_round,
        promote: m.promote,
        beta: m.beta,
        pool: m.pool,
        noise: 0.1,
        seed: t.seed,
    };
    let s = MfkdSearch {
        run: a.run.clone(),
        space: a.space.clone(),
        teacher: a.teacher.clone(),
        limits: a.limits()?,
        high,
        lowfi_fraction: m.lowfi_fraction,
        lowfi_epochs: m.lowfi_epochs,
        feature_kd: m.feature_kd.clone(),
        feature_kd_weight: m.feature_kd_weight,
        search,
        runner: Runner { device: t.device.clone(), threads: t.threads, workers: a.data.workers, ckpt_every: t.ckpt_every },
        procs: m.procs,
    };
    print_result(&run_mfkd(&s)?, a)
}
