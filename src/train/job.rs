//! The classifier training job every training command shares — `train-teacher`, `retrain`, the
//! study's retrainer and MF-KD's evaluations: a graph trained with cross-entropy (and
//! distillation when set) on the shared loop, exported as ONNX with BatchNorm folded and
//! evaluated. Typed in ([`ClassifierJob`]) and out ([`TrainResult`], `result.json`).
//!
//! ```text
//! run.json           the command, data, training settings, preprocessing and the job's own record
//! train.jsonl, ckpt/ the trainer's run (resumable); final.safetensors the trained state
//! model.onnx         the deployable export (BatchNorm folded)
//! result.json        TrainResult: cost, the training summary, test top-1 through tch, ORT, tract
//! ```

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::classify::{evaluate, Classifier, Distill};
use super::{fit, FitSummary, TrainConfig, Trainable};
use crate::data::loader::LoaderConfig;
use crate::data::{open, DataSpec, Dataset, Loader};
use crate::ir::Graph;
use crate::onnx::export::export;
use crate::onnx::WriteOptions;
use crate::util::write_atomic;
use crate::validate::accuracy::{ort_top1, tract_top1};

/// How to train: the one shape of training settings every command converts its flags or recipe
/// into.
#[derive(Clone, Debug)]
pub struct TrainSettings {
    /// The data; its seed carves the held-out split (the same for every run of a study).
    pub data: DataSpec,
    /// Data decoding threads.
    pub workers: usize,
    pub train: TrainConfig,
    pub batch: usize,
    /// Seed of data order, augmentation and initial weights.
    pub seed: u64,
    pub train_subset: Option<usize>,
    pub label_smoothing: f64,
    pub device: tch::Device,
    /// Continue from the output directory's last checkpoint.
    pub resume: bool,
}

/// One classifier to train.
pub struct ClassifierJob {
    /// The command recorded in `run.json` (`train-teacher`, `retrain`, `study`).
    pub command: String,
    /// The file the graph came from (named in errors).
    pub source: PathBuf,
    pub graph: Graph,
    pub input: [usize; 3],
    pub classes: usize,
    /// Recorded in `run.json` and the ONNX metadata beside the data and training settings.
    pub record: Value,
    pub output: PathBuf,
    pub settings: TrainSettings,
    pub kd: Option<Distill>,
    /// The test split through ONNX Runtime and tract after export.
    pub validate: bool,
    /// A cheap evaluation (MF-KD's low fidelity, the study's): the held-out split after the last
    /// epoch only, and no test-set pass (`test_top1_tch` is `None`).
    pub final_held_out_only: bool,
    /// No progress output.
    pub quiet: bool,
}

/// `result.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainResult {
    pub model: PathBuf,
    pub weights: PathBuf,
    /// As exported (BatchNorm folded).
    pub params: u64,
    pub macs: u64,
    pub train: FitSummary,
    pub test_top1_tch: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_top1_onnxruntime: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_top1_tract: Option<f64>,
    pub wall_seconds: f64,
}

impl TrainResult {
    /// Held-out top-1 after the last epoch that measured it.
    pub fn held_out_top1(&self) -> Option<f64> {
        self.train.epoch_reports.iter().rev().find_map(|e| e["eval"]["held_out_top1"].as_f64())
    }
}

/// Trains, exports and evaluates `job` into `job.output`; writes and returns `result.json`.
pub fn run_classifier(job: ClassifierJob) -> Result<TrainResult> {
    let t0 = std::time::Instant::now();
    let st = job.settings.clone();
    let splits = open(&st.data)?;
    check_data(&job, splits.train.shape(), splits.train.num_classes())?;
    let train_set = match st.train_subset {
        Some(n) => splits.train.clone().take(n),
        None => splits.train.clone(),
    };
    let run = job.output.as_path();
    std::fs::create_dir_all(run).with_context(|| format!("cannot create '{}'", run.display()))?;
    let record = run_record(&job, splits.train.preprocessing());
    if !st.resume || !run.join("run.json").exists() {
        write_atomic(&run.join("run.json"), serde_json::to_string_pretty(&record)?.as_bytes())?;
    }
    let mut learner = Classifier { module: Trainable::new(job.graph, st.device)?, label_smoothing: st.label_smoothing, kd: job.kd };
    let loader = Loader::new(
        Arc::new(train_set),
        LoaderConfig { batch: st.batch, shuffle: true, augment: true, drop_last: true, seed: st.seed, workers: st.workers, prefetch: 4 },
    );
    let held = Loader::new(Arc::new(splits.held_out.clone()), LoaderConfig::eval(256));
    let (epochs, cheap) = (st.train.epochs, job.final_held_out_only);
    let summary = fit(&mut learner, &loader, &st.train, run, st.resume, job.quiet, &mut |l, epoch| {
        if held.dataset().is_empty() || (cheap && epoch + 1 < epochs) {
            return Ok(json!({}));
        }
        let r = evaluate(&l.module, &held)?;
        Ok(json!({"held_out_top1": r.top1, "held_out_loss": r.loss}))
    })?;
    let test_loader = Loader::new(Arc::new(splits.test.clone()), LoaderConfig::eval(256));
    let test_top1_tch = if cheap { None } else { Some(evaluate(&learner.module, &test_loader)?.top1) };
    let graph = learner.module.to_graph()?;
    let meta = [
        ("dnas.preprocessing", splits.train.preprocessing().to_string()),
        ("dnas.dataset", st.data.source.clone()),
        ("dnas.train", serde_json::to_string(&record)?),
    ];
    let model = run.join("model.onnx");
    let bytes = export(&graph, &model, &meta, &WriteOptions::default())?;
    let (params, macs) = crate::space::arch::graph_cost(&graph)?;
    let (test_top1_onnxruntime, test_top1_tract) = if job.validate {
        (Some(ort_top1(&bytes, &test_loader, 0)?.top1), Some(tract_top1(&bytes, &test_loader)?.top1))
    } else {
        (None, None)
    };
    let result = TrainResult {
        model,
        weights: run.join("final.safetensors"),
        params,
        macs,
        train: summary,
        test_top1_tch,
        test_top1_onnxruntime,
        test_top1_tract,
        wall_seconds: t0.elapsed().as_secs_f64(),
    };
    write_atomic(&run.join("result.json"), serde_json::to_string_pretty(&result)?.as_bytes())?;
    Ok(result)
}

/// The data must fit the graph: its image shape, at most its classes.
fn check_data(job: &ClassifierJob, shape: [usize; 3], classes: usize) -> Result<()> {
    if shape != job.input {
        bail!("'{}' expects input {:?} but --data {} gives {:?}", job.source.display(), job.input, job.settings.data.source, shape);
    }
    if classes > job.classes {
        bail!("'{}' has {} classes but the data has {classes}", job.source.display(), job.classes);
    }
    Ok(())
}

/// `run.json`: the command, data and training settings, and the job's own record.
fn run_record(job: &ClassifierJob, preprocessing: impl Serialize) -> Value {
    let st = &job.settings;
    let mut record = json!({"command": job.command, "data": st.data, "train": st.train, "batch": st.batch,
        "seed": st.seed, "train_subset": st.train_subset, "dnas_version": env!("CARGO_PKG_VERSION"),
        "preprocessing": preprocessing});
    if let (Some(r), Some(extra)) = (record.as_object_mut(), job.record.as_object()) {
        r.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    record
}
