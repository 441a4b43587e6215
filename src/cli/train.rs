//! `dnas train-teacher`: an EfficientNet-style teacher trained on the shared loop, exported as
//! ONNX and evaluated through ONNX Runtime; the training flags every training command shares.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::Args;

use super::eval::DataArgs;
use super::Outcome;
use crate::data::loader::LoaderConfig;
use crate::data::{open, Dataset, Loader};
use crate::exec::parse_device;
use crate::nets::{build, NetSpec};
use crate::onnx::export::export;
use crate::onnx::WriteOptions;
use crate::train::classify::{evaluate, Classifier};
use crate::train::optim::OptimConfig;
use crate::train::schedule::Decay;
use crate::train::{fit, TrainConfig, Trainable};
use crate::util::write_atomic;
use crate::validate::accuracy::{ort_top1, tract_top1};

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

pub fn set_threads(n: usize) {
    let n = if n == 0 { std::thread::available_parallelism().map_or(1, |n| n.get()) } else { n };
    tch::set_num_threads(n as i32);
}

pub fn train_teacher(a: TrainTeacherArgs) -> Result<Outcome> {
    let spec = NetSpec::load(&a.arch)?;
    let graph = build(&spec, a.train.seed)?;
    train_classifier(ClassifierJob {
        command: "train-teacher",
        what: "teacher",
        source: &a.arch,
        graph,
        input: spec.input,
        classes: spec.classes,
        record: serde_json::json!({"arch": spec}),
        output: &a.output,
        data: &a.data,
        train: &a.train,
        data_seed: a.train.seed,
        kd: None,
        no_validate: a.no_validate,
        final_held_out_only: false,
        json: a.json,
    })
}

/// A classifier to train on the shared loop, export as ONNX and evaluate: what `train-teacher`
/// and `retrain` have in common.
pub(super) struct ClassifierJob<'a> {
    pub command: &'static str,
    /// "teacher" or "student", for the printed table.
    pub what: &'static str,
    /// The file the graph came from (named in errors).
    pub source: &'a std::path::Path,
    pub graph: crate::ir::Graph,
    pub input: [usize; 3],
    pub classes: usize,
    /// Recorded in `run.json` and the ONNX metadata beside the data and training settings.
    pub record: serde_json::Value,
    pub output: &'a std::path::Path,
    pub data: &'a DataArgs,
    pub train: &'a TrainArgs,
    /// Seed of the held-out carve (the same for every run of a study; `train.seed` otherwise).
    pub data_seed: u64,
    pub kd: Option<crate::train::classify::Distill>,
    pub no_validate: bool,
    /// A cheap evaluation (MF-KD's low fidelity): the held-out split after the last epoch only,
    /// and no test-set pass (`test_top1_tch` is null).
    pub final_held_out_only: bool,
    pub json: bool,
}

/// Trains `job.graph` with cross-entropy (and KD when set) into `job.output`: `run.json`,
/// `train.jsonl`, checkpoints, `final.safetensors` (the trained state, which `dnas export`
/// reads), `model.onnx` (BatchNorm folded) and `result.json` (test top-1 through tch, ORT, tract).
pub(super) fn train_classifier(job: ClassifierJob) -> Result<Outcome> {
    let json = job.json;
    let what = job.what;
    let result = fit_classifier(job)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        let n = |k: &str| result[k].as_u64().unwrap_or(0);
        println!("{:<17} {}", what, result["model"].as_str().unwrap_or(""));
        println!("weights           {}", result["weights"].as_str().unwrap_or(""));
        println!("params            {}", n("params"));
        println!("MACs              {}", n("macs"));
        let t = &result["train"];
        println!(
            "steps             {} ({} epochs, {:.0} s, data wait {:.1} s)",
            t["steps"].as_u64().unwrap_or(0),
            t["epochs"].as_u64().unwrap_or(0),
            t["seconds"].as_f64().unwrap_or(0.0),
            t["data_wait_seconds"].as_f64().unwrap_or(0.0)
        );
        println!("test top-1 (tch)  {:.2}%", 100.0 * result["test_top1_tch"].as_f64().unwrap_or(0.0));
        if let Some(v) = result["test_top1_onnxruntime"].as_f64() {
            println!("test top-1 (ORT)  {:.2}%", 100.0 * v);
        }
        if let Some(v) = result["test_top1_tract"].as_f64() {
            println!("test top-1 (tract) {:.2}%", 100.0 * v);
        }
    }
    Ok(Outcome::Ok)
}

/// The work of [`train_classifier`] without the printing: returns what `result.json` holds.
pub(super) fn fit_classifier(job: ClassifierJob) -> Result<serde_json::Value> {
    let t0 = std::time::Instant::now();
    let (a_train, a_data) = (job.train, job.data);
    set_threads(a_train.threads);
    let device = parse_device(&a_train.device)?;
    let data_spec = a_data.spec(job.data_seed);
    let splits = open(&data_spec)?;
    let mut train_set = splits.train.clone();
    if let Some(n) = a_train.train_subset {
        train_set = train_set.take(n);
    }
    if splits.train.shape() != job.input {
        bail!("'{}' expects input {:?} but --data {} gives {:?}", job.source.display(), job.input, a_data.data, splits.train.shape());
    }
    if splits.train.num_classes() > job.classes {
        bail!("'{}' has {} classes but the data has {}", job.source.display(), job.classes, splits.train.num_classes());
    }
    let cfg = a_train.config()?;
    let run = job.output;
    std::fs::create_dir_all(run).with_context(|| format!("cannot create '{}'", run.display()))?;
    let mut record = serde_json::json!({"command": job.command, "data": data_spec, "train": cfg, "batch": a_train.batch,
        "seed": a_train.seed, "train_subset": a_train.train_subset, "dnas_version": env!("CARGO_PKG_VERSION"),
        "preprocessing": splits.train.preprocessing()});
    if let (Some(r), Some(extra)) = (record.as_object_mut(), job.record.as_object()) {
        r.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    if !a_train.resume || !run.join("run.json").exists() {
        write_atomic(&run.join("run.json"), serde_json::to_string_pretty(&record)?.as_bytes())?;
    }
    let mut learner = Classifier { module: Trainable::new(job.graph, device)?, label_smoothing: a_train.label_smoothing, kd: job.kd };
    let loader = Loader::new(
        Arc::new(train_set),
        LoaderConfig {
            batch: a_train.batch,
            shuffle: true,
            augment: true,
            drop_last: true,
            seed: a_train.seed,
            workers: a_data.workers,
            prefetch: 4,
        },
    );
    let held = Loader::new(Arc::new(splits.held_out.clone()), LoaderConfig::eval(256));
    let quiet = job.json;
    let (epochs, cheap) = (cfg.epochs, job.final_held_out_only);
    let summary = fit(&mut learner, &loader, &cfg, run, a_train.resume, quiet, &mut |l, epoch| {
        if held.dataset().is_empty() || (cheap && epoch + 1 < epochs) {
            return Ok(serde_json::json!({}));
        }
        let r = evaluate(&l.module, &held)?;
        Ok(serde_json::json!({"held_out_top1": r.top1, "held_out_loss": r.loss}))
    })?;
    let test_loader = Loader::new(Arc::new(splits.test.clone()), LoaderConfig::eval(256));
    let tch_test = if cheap { None } else { Some(evaluate(&learner.module, &test_loader)?.top1) };
    let graph = learner.module.to_graph()?;
    let meta = [
        ("dnas.preprocessing", splits.train.preprocessing().to_string()),
        ("dnas.dataset", a_data.data.clone()),
        ("dnas.train", serde_json::to_string(&record)?),
    ];
    let model_path = run.join("model.onnx");
    let bytes = export(&graph, &model_path, &meta, &WriteOptions::default())?;
    // As exported: BatchNorm folded.
    let (params, macs) = crate::space::arch::graph_cost(&graph)?;
    let mut result = serde_json::json!({
        "model": model_path, "weights": run.join("final.safetensors"), "params": params, "macs": macs, "train": summary,
        "test_top1_tch": tch_test, "wall_seconds": t0.elapsed().as_secs_f64(),
    });
    if !job.no_validate {
        let ort = ort_top1(&bytes, &test_loader, 0)?;
        result["test_top1_onnxruntime"] = serde_json::json!(ort.top1);
        let tr = tract_top1(&bytes, &test_loader)?;
        result["test_top1_tract"] = serde_json::json!(tr.top1);
    }
    write_atomic(&run.join("result.json"), serde_json::to_string_pretty(&result)?.as_bytes())?;
    Ok(result)
}
