//! `dnas retrain` (the searched child trained from scratch, optionally distilled from the
//! teacher's logits) and `dnas export` (architecture + weights → deployable ONNX).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;

use super::eval::DataArgs;
use super::train::{print_result, TrainArgs};
use super::Outcome;
use crate::exec::parse_device;
use crate::onnx::export::export_with_batch;
use crate::onnx::WriteOptions;
use crate::space::arch::{build_child, graph_cost, Arch};
use crate::train::checkpoint::read_tensors;
use crate::train::classify::{load_teacher, Distill, LogitKd};
use crate::train::job::{run_classifier, ClassifierJob};
use crate::train::Trainable;

#[derive(Args)]
pub struct RetrainArgs {
    /// Architecture JSON written by `dnas select`.
    #[arg(long)]
    arch: PathBuf,
    #[arg(short, long)]
    output: PathBuf,
    #[command(flatten)]
    data: DataArgs,
    #[command(flatten)]
    train: TrainArgs,
    /// Distil from this teacher's logits (ONNX with the same input as the child).
    #[arg(long)]
    kd_teacher: Option<PathBuf>,
    /// Softmax temperature of the distillation term.
    #[arg(long, default_value_t = 4.0)]
    kd_t: f64,
    /// Weight of the distillation term (1 − α goes to cross-entropy with the labels).
    #[arg(long, default_value_t = 0.5)]
    kd_alpha: f64,
    /// Skip the final evaluation through ONNX Runtime and tract.
    #[arg(long)]
    no_validate: bool,
    #[arg(long)]
    json: bool,
}

pub fn retrain(a: RetrainArgs) -> Result<Outcome> {
    let arch = Arch::load(&a.arch)?;
    let graph = build_child(&arch, a.train.seed)?;
    if !(0.0..=1.0).contains(&a.kd_alpha) {
        bail!("--kd-alpha must be in [0, 1], got {}", a.kd_alpha);
    }
    if a.kd_t <= 0.0 {
        bail!("--kd-t must be positive, got {}", a.kd_t);
    }
    let kd = match &a.kd_teacher {
        None => None,
        Some(t) => Some(Distill {
            teacher: load_teacher(t, arch.input, arch.classes, parse_device(&a.train.device)?)?,
            logits: Some(LogitKd { temperature: a.kd_t, alpha: a.kd_alpha }),
            features: None,
        }),
    };
    let kd_record = a.kd_teacher.as_ref().map(|t| serde_json::json!({"teacher": t, "temperature": a.kd_t, "alpha": a.kd_alpha}));
    let job = ClassifierJob {
        command: "retrain".into(),
        source: a.arch.clone(),
        graph,
        input: arch.input,
        classes: arch.classes,
        record: serde_json::json!({"arch": arch, "kd": kd_record}),
        output: a.output.clone(),
        settings: a.train.settings(&a.data, a.train.seed)?,
        kd,
        validate: !a.no_validate,
        final_held_out_only: false,
        quiet: a.json,
    };
    print_result("student", &run_classifier(job)?, a.json)
}

#[derive(Args)]
pub struct ExportArgs {
    /// Architecture JSON.
    #[arg(long)]
    arch: PathBuf,
    /// Trained state (`final.safetensors` of `dnas retrain`).
    #[arg(long)]
    weights: PathBuf,
    #[arg(short, long)]
    output: PathBuf,
    /// ONNX opset (11..=17; 17 is the default and what the mobile runtimes are checked with).
    #[arg(long, default_value_t = crate::onnx::DEFAULT_OPSET)]
    opset: i64,
    /// Fix the batch dimension (e.g. 1: NNAPI and CoreML want fixed shapes); default symbolic "N".
    #[arg(long)]
    batch: Option<usize>,
    #[arg(long)]
    json: bool,
}

pub fn export_cmd(a: ExportArgs) -> Result<Outcome> {
    if !(11..=17).contains(&a.opset) {
        bail!("--opset {} is not supported: dnas writes opsets 11 to 17", a.opset);
    }
    let arch = Arch::load(&a.arch)?;
    let mut module = Trainable::new(build_child(&arch, 0)?, tch::Device::Cpu)?;
    let weights = read_tensors(&a.weights)?;
    module
        .load_state(&weights)
        .with_context(|| format!("'{}' does not hold the weights of '{}'", a.weights.display(), a.arch.display()))?;
    let graph = module.to_graph()?;
    // Preprocessing and dataset come from the run that trained the weights: `run.json` beside
    // them (a `dnas retrain` directory) or `<weights stem>.run.json` (a shipped model).
    let mut meta = Vec::new();
    let dir = a.weights.parent().unwrap_or(Path::new("."));
    let stem = a.weights.file_stem().and_then(|s| s.to_str()).unwrap_or("weights");
    if let Some(run_json) = [dir.join("run.json"), dir.join(format!("{stem}.run.json"))].into_iter().find(|p| p.exists()) {
        let text = std::fs::read_to_string(&run_json).with_context(|| format!("cannot read '{}'", run_json.display()))?;
        let run: serde_json::Value = serde_json::from_str(&text).with_context(|| format!("'{}' is not valid JSON", run_json.display()))?;
        if let Some(p) = run.get("preprocessing") {
            meta.push(("dnas.preprocessing", p.to_string()));
        }
        if let Some(d) = run.pointer("/data/source").and_then(|d| d.as_str()) {
            meta.push(("dnas.dataset", d.to_string()));
        }
        meta.push(("dnas.train", text.clone()));
    }
    let opts = WriteOptions { opset: a.opset, ..WriteOptions::default() };
    if a.batch == Some(0) {
        bail!("--batch must be at least 1");
    }
    let bytes = export_with_batch(&graph, &a.output, &meta, &opts, a.batch)?;
    let (params, macs) = graph_cost(&graph)?;
    let written = crate::onnx::read_model(&bytes)?;
    let result = serde_json::json!({"model": a.output, "bytes": bytes.len(), "nodes": written.nodes.len(), "params": params, "macs": macs,
        "opset": a.opset, "arch": arch.name});
    if a.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        println!(
            "wrote {} ({} bytes, {} nodes, opset {}, {params} params, {macs} MACs)",
            a.output.display(),
            bytes.len(),
            written.nodes.len(),
            a.opset
        );
    }
    Ok(Outcome::Ok)
}
