//! `dnas train-teacher`: an EfficientNet-style teacher trained on the shared loop, exported as
//! ONNX and evaluated through ONNX Runtime; the training flags every training command shares.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use super::eval::DataArgs;
use super::Outcome;
use crate::exec::parse_device;
use crate::nets::{build, NetSpec};
use crate::train::job::{run_classifier, ClassifierJob, TrainResult, TrainSettings};
use crate::train::optim::OptimConfig;
use crate::train::schedule::Decay;
pub use crate::train::set_threads;
use crate::train::TrainConfig;

#[derive(Args, Clone)]
pub struct TrainArgs {
    #[arg(long, default_value_t = 12)]
    pub epochs: usize,
    #[arg(long, default_value_t = 128)]
    pub batch: usize,
    /// sgd, adamw or rmsprop.
    #[arg(long, default_value = "adamw")]
    pub optimizer: String,
    #[arg(long, default_value_t = 3e-3)]
    pub lr: f64,
    #[arg(long, default_value_t = 0.05)]
    pub weight_decay: f64,
    /// cosine, step or exp.
    #[arg(long, default_value = "cosine")]
    pub schedule: String,
    #[arg(long, default_value_t = 0.5)]
    pub warmup_epochs: f64,
    #[arg(long, default_value_t = 0.1)]
    pub label_smoothing: f64,
    /// EMA decay of the weights (e.g. 0.999).
    #[arg(long)]
    pub ema: Option<f64>,
    /// Clip the global gradient norm.
    #[arg(long)]
    pub clip: Option<f64>,
    #[arg(long, default_value_t = 200)]
    pub ckpt_every: usize,
    #[arg(long, default_value_t = 20)]
    pub log_every: usize,
    /// Stop after this many steps (smoke runs).
    #[arg(long)]
    pub max_steps: Option<usize>,
    /// Train on the first N training samples only.
    #[arg(long)]
    pub train_subset: Option<usize>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[arg(long, default_value = "cpu", value_parser = crate::exec::device_arg)]
    pub device: String,
    /// libtorch threads (0 = all cores).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Continue the run in the output directory from its last checkpoint.
    #[arg(long)]
    pub resume: bool,
}

impl TrainArgs {
    pub fn config(&self) -> Result<TrainConfig> {
        Ok(TrainConfig {
            epochs: self.epochs,
            lr: self.lr,
            weight_decay: self.weight_decay,
            optim: OptimConfig::parse(&self.optimizer)?,
            decay: Decay::parse(&self.schedule)?,
            warmup_epochs: self.warmup_epochs,
            ema: self.ema,
            clip: self.clip,
            ckpt_every: self.ckpt_every,
            log_every: self.log_every,
            max_steps: self.max_steps,
        })
    }
}

#[derive(Args)]
pub struct TrainTeacherArgs {
    /// Architecture JSON (e.g. models/archs/fmnist_teacher.json).
    #[arg(long)]
    arch: PathBuf,
    #[arg(short, long)]
    output: PathBuf,
    #[command(flatten)]
    data: DataArgs,
    #[command(flatten)]
    train: TrainArgs,
    /// Skip the final evaluation through ONNX Runtime and tract.
    #[arg(long)]
    no_validate: bool,
    #[arg(long)]
    json: bool,
}

impl TrainArgs {
    /// The training settings of these flags on `data` (held-out split carved with `data_seed`).
    pub fn settings(&self, data: &DataArgs, data_seed: u64) -> Result<TrainSettings> {
        set_threads(self.threads);
        Ok(TrainSettings {
            data: data.spec(data_seed),
            workers: data.workers,
            train: self.config()?,
            batch: self.batch,
            seed: self.seed,
            train_subset: self.train_subset,
            label_smoothing: self.label_smoothing,
            device: parse_device(&self.device)?,
            resume: self.resume,
        })
    }
}

pub fn train_teacher(a: TrainTeacherArgs) -> Result<Outcome> {
    let spec = NetSpec::load(&a.arch)?;
    let graph = build(&spec, a.train.seed)?;
    let job = ClassifierJob {
        command: "train-teacher".into(),
        source: a.arch.clone(),
        graph,
        input: spec.input,
        classes: spec.classes,
        record: serde_json::json!({"arch": spec}),
        output: a.output.clone(),
        settings: a.train.settings(&a.data, a.train.seed)?,
        kd: None,
        validate: !a.no_validate,
        final_held_out_only: false,
        quiet: a.json,
    };
    print_result("teacher", &run_classifier(job)?, a.json)
}

/// A training's result as JSON, or its model, cost, steps and top-1 as lines.
pub(super) fn print_result(what: &str, r: &TrainResult, json: bool) -> Result<Outcome> {
    if json {
        println!("{}", serde_json::to_string_pretty(r)?);
        return Ok(Outcome::Ok);
    }
    println!("{:<17} {}", what, r.model.display());
    println!("weights           {}", r.weights.display());
    println!("params            {}", r.params);
    println!("MACs              {}", r.macs);
    let t = &r.train;
    println!("steps             {} ({} epochs, {:.0} s, data wait {:.1} s)", t.steps, t.epochs, t.seconds, t.data_wait_seconds);
    println!("test top-1 (tch)  {:.2}%", 100.0 * r.test_top1_tch.unwrap_or(0.0));
    if let Some(v) = r.test_top1_onnxruntime {
        println!("test top-1 (ORT)  {:.2}%", 100.0 * v);
    }
    if let Some(v) = r.test_top1_tract {
        println!("test top-1 (tract) {:.2}%", 100.0 * v);
    }
    Ok(Outcome::Ok)
}
