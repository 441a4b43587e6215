//! The CI gate (`dnas validate`): a model's params and MACs from its imported graph, top-1
//! through ONNX Runtime and tract, latency per target (settings logged with every figure; with
//! the budget's reference timed against it, interleaved), the budget checked, and the report
//! (`dnas.validate` version 1) written atomically.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use serde::Serialize;

use super::accuracy::{ort_top1, tract_top1, Accuracy};
use super::budget::{Budget, Measured, Skipped, Violation};
use super::latency::{measure, measure_pair, LatencyConfig, LatencyRow, Target, Timing, DEFAULT_TARGETS};
use super::model_file::read_model_file;
use super::time_pair::measure_pair_in_child;
use crate::data::loader::LoaderConfig;
use crate::data::{open, DataSpec, Dataset, Loader, Subset};
use crate::util::write_atomic;

/// What the gate checks and how.
pub struct GateConfig {
    pub model: PathBuf,
    pub budget: Option<PathBuf>,
    /// The data top-1 is measured on, and its split (test, held-out, train).
    pub data: DataSpec,
    pub workers: usize,
    pub split: String,
    /// The first N images of the split only (smoke runs).
    pub max_images: Option<usize>,
    /// `false`: latency and cost only.
    pub accuracy: bool,
    /// Latency target labels (empty: the defaults); the budget's own are added.
    pub targets: Vec<String>,
    pub latency: LatencyConfig,
    pub timing: Timing,
    /// Where the report goes (default: `<model stem>.validate.json` in the current directory).
    pub report: Option<PathBuf>,
}

/// The budget's reference model as it was timed.
#[derive(Serialize)]
pub struct ReferenceInfo {
    pub model: PathBuf,
    pub params: u64,
    pub macs: u64,
    pub timing: Timing,
    pub latency: Vec<LatencyRow>,
}

#[derive(Serialize)]
pub struct BudgetRef {
    pub file: PathBuf,
    pub name: String,
}

/// The gate's report (`dnas.validate` version 1).
#[derive(Serialize)]
pub struct GateReport {
    pub format: String,
    pub version: u32,
    pub dnas_version: String,
    pub model: PathBuf,
    pub input_shape: Vec<usize>,
    pub params: u64,
    pub macs: u64,
    pub accuracy: Vec<Accuracy>,
    pub data: String,
    pub split: String,
    pub latency: Vec<LatencyRow>,
    pub reference: Option<ReferenceInfo>,
    pub budget: Option<BudgetRef>,
    pub violations: Vec<Violation>,
    pub skipped: Vec<Skipped>,
    pub pass: bool,
    /// Where the report was written.
    #[serde(skip)]
    pub path: PathBuf,
}

/// The split of `splits` called `name`.
pub fn split<'a>(s: &'a crate::data::Splits, name: &str) -> Result<&'a Subset> {
    Ok(match name {
        "test" => &s.test,
        "held-out" | "heldout" => &s.held_out,
        "train" => &s.train,
        other => bail!("unknown split '{other}' (test, held-out, train)"),
    })
}

/// Runs the gate: measures, checks the budget, writes the report. A violated budget is a
/// report with `pass: false`, not an error.
pub fn run_gate(c: &GateConfig) -> Result<GateReport> {
    let (bytes, graph, shape) = read_model_file(&c.model)?;
    let budget = c.budget.as_ref().map(|p| Budget::load(p)).transpose()?;
    let (params, macs) = crate::space::arch::graph_cost(&graph).with_context(|| format!("'{}'", c.model.display()))?;
    let targets = targets(&c.targets, budget.as_ref())?;
    let accuracy = if c.accuracy { top1(c, &bytes, &shape)? } else { Vec::new() };
    let reference = match budget.as_ref().and_then(|b| b.reference_path()) {
        Some(rp) => {
            let (rb, rg, rshape) = read_model_file(&rp).context("the budget's reference model")?;
            let (rparams, rmacs) = crate::space::arch::graph_cost(&rg).with_context(|| format!("reference '{}'", rp.display()))?;
            Some((ReferenceInfo { model: rp, params: rparams, macs: rmacs, timing: c.timing, latency: Vec::new() }, rb, rshape))
        }
        None => None,
    };
    let mut latency = Vec::new();
    let mut reference_rows = Vec::new();
    for t in &targets {
        match &reference {
            Some((info, rb, rshape)) => {
                let (m, r) = time_with_reference(c, (&bytes, &shape), (&info.model, rb, rshape), *t)?;
                latency.push(m);
                reference_rows.push(r);
            }
            None => latency.push(measure(&bytes, &shape, *t, c.latency).with_context(|| timing_what(c, *t))?),
        }
    }
    let top1s: Vec<(String, f64)> = accuracy.iter().map(|r| (r.runtime.clone(), r.top1)).collect();
    let (violations, skipped) = match &budget {
        Some(b) => b.check(&Measured { params, macs, top1: c.accuracy.then_some(&top1s), latency: &latency, reference: &reference_rows }),
        None => (Vec::new(), Vec::new()),
    };
    let path = c.report.clone().unwrap_or_else(|| default_report_path(&c.model));
    let report = GateReport {
        format: "dnas.validate".into(),
        version: 1,
        dnas_version: env!("CARGO_PKG_VERSION").into(),
        model: c.model.clone(),
        input_shape: shape,
        params,
        macs,
        accuracy,
        data: c.data.source.clone(),
        split: c.split.clone(),
        latency,
        reference: reference.map(|(info, ..)| ReferenceInfo { latency: reference_rows, ..info }),
        budget: budget.as_ref().map(|b| BudgetRef { file: b.path.clone(), name: b.name.clone() }),
        pass: violations.is_empty(),
        violations,
        skipped,
        path,
    };
    write_atomic(&report.path, serde_json::to_string_pretty(&report)?.as_bytes())?;
    Ok(report)
}

fn default_report_path(model: &Path) -> PathBuf {
    PathBuf::from(format!("{}.validate.json", model.file_stem().and_then(|s| s.to_str()).unwrap_or("model")))
}

/// The targets asked for (or the defaults), then any the budget names.
fn targets(asked: &[String], budget: Option<&Budget>) -> Result<Vec<Target>> {
    let mut labels: Vec<String> = if asked.is_empty() { DEFAULT_TARGETS.iter().map(|s| s.to_string()).collect() } else { asked.to_vec() };
    for t in budget.map(|b| b.targets()).unwrap_or_default() {
        if !labels.contains(&t) {
            labels.push(t);
        }
    }
    labels.iter().map(|l| Target::parse(l)).collect()
}

/// Top-1 through ONNX Runtime and tract on the configured split.
fn top1(c: &GateConfig, bytes: &[u8], shape: &[usize]) -> Result<Vec<Accuracy>> {
    let splits = open(&c.data)?;
    let mut set = split(&splits, &c.split)?.clone();
    if let Some(n) = c.max_images {
        set = set.take(n);
    }
    if set.shape().as_slice() != &shape[1..] {
        bail!("'{}' takes input {:?} but --data {} gives {:?}", c.model.display(), &shape[1..], c.data.source, set.shape());
    }
    let loader = Loader::new(Arc::new(set), LoaderConfig { workers: c.workers, ..LoaderConfig::eval(256) });
    Ok(vec![
        ort_top1(bytes, &loader, 0).with_context(|| format!("'{}' through ONNX Runtime", c.model.display()))?,
        tract_top1(bytes, &loader).with_context(|| format!("'{}' through tract", c.model.display()))?,
    ])
}

fn timing_what(c: &GateConfig, t: Target) -> String {
    format!("timing '{}' on {}", c.model.display(), t.label())
}

/// The model and the budget's reference timed together, run against run, so a load that comes
/// and goes on the machine moves both and not their ratio: ONNX Runtime targets interleaved in a
/// child process whose two sessions share one thread pool (`time_pair`); tract and sequential
/// timing in this process.
fn time_with_reference(
    c: &GateConfig,
    model: (&[u8], &[usize]),
    (rp, rb, rshape): (&Path, &[u8], &[usize]),
    t: Target,
) -> Result<(LatencyRow, LatencyRow)> {
    let ort_available = match t {
        Target::Ort { provider, .. } => provider.available()?,
        Target::Tract => false,
    };
    if c.timing == Timing::Interleaved && ort_available {
        let exe = std::env::current_exe().context("cannot find the dnas executable to start its timing process")?;
        measure_pair_in_child(&exe, &c.model, rp, t, c.latency)
    } else {
        measure_pair(model, (rb, rshape), t, c.latency, c.timing)
    }
    .with_context(|| format!("{} with its reference '{}'", timing_what(c, t), rp.display()))
}
