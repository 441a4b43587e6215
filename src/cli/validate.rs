//! `dnas validate MODEL.onnx --data … --budget B.json`: the CI gate. Params and MACs from the
//! imported graph, top-1 through ONNX Runtime and tract, latency per target (settings logged with
//! every figure), the budget checked; a JSON report; exit 0 pass, 1 budget violated, 2 error.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Args;

use super::eval::DataArgs;
use super::time_pair::measure_pair_in_child;
use super::Outcome;
use crate::data::loader::LoaderConfig;
use crate::data::{open, Dataset, Loader};
use crate::util::write_atomic;
use crate::validate::accuracy::{ort_top1, tract_top1};
use crate::validate::budget::{Budget, Measured};
use crate::validate::latency::{measure, measure_pair, LatencyConfig, Target, Timing, DEFAULT_TARGETS};
use crate::validate::model_file::read_model_file;

#[derive(Args)]
pub struct ValidateArgs {
    model: PathBuf,
    /// Budget file (schemas/budget.schema.json); without one, everything is measured and reported.
    #[arg(long)]
    budget: Option<PathBuf>,
    #[command(flatten)]
    data: DataArgs,
    /// Split for top-1: test, held-out or train.
    #[arg(long, default_value = "test")]
    split: String,
    /// Top-1 on the first N images of the split only (smoke runs); default: all.
    #[arg(long)]
    max_images: Option<usize>,
    /// Skip the accuracy pass (latency and cost only).
    #[arg(long)]
    no_accuracy: bool,
    /// Latency targets (comma separated); default: ort-cpu-1t, ort-cpu-4t, ort-xnnpack-1t, ort-cuda, tract,
    /// plus any the budget names.
    #[arg(long, value_delimiter = ',')]
    targets: Vec<String>,
    #[arg(long, default_value_t = 10)]
    warmup: usize,
    #[arg(long, default_value_t = 50)]
    runs: usize,
    /// How the model and the budget's reference share the clock: interleaved (run against run,
    /// the default: a noisy machine moves both) or sequential (all of one, then the other).
    #[arg(long, value_enum, default_value = "interleaved")]
    timing: Timing,
    /// JSON report path (default: <model stem>.validate.json in the current directory).
    #[arg(long)]
    report: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

/// Whether a target is ONNX Runtime with its provider in the loaded library (an unavailable one
/// is reported by the in-process path without starting a process).
fn ort_target_available(t: Target) -> Result<bool> {
    match t {
        Target::Ort { provider, .. } => provider.available(),
        Target::Tract => Ok(false),
    }
}

pub fn validate(a: ValidateArgs) -> Result<Outcome> {
    let (bytes, graph, shape) = read_model_file(&a.model)?;
    let budget = a.budget.as_ref().map(|p| Budget::load(p)).transpose()?;
    let (params, macs) = crate::space::arch::graph_cost(&graph).with_context(|| format!("'{}'", a.model.display()))?;

    let mut labels: Vec<String> =
        if a.targets.is_empty() { DEFAULT_TARGETS.iter().map(|s| s.to_string()).collect() } else { a.targets.clone() };
    for t in budget.as_ref().map(|b| b.targets()).unwrap_or_default() {
        if !labels.contains(&t) {
            labels.push(t);
        }
    }
    let targets: Vec<Target> = labels.iter().map(|l| Target::parse(l)).collect::<Result<_>>()?;
    let cfg = LatencyConfig { warmup: a.warmup, runs: a.runs };

    let mut top1: Vec<(String, f64)> = Vec::new();
    let mut accuracy = Vec::new();
    if !a.no_accuracy {
        let splits = open(&a.data.spec(0))?;
        let mut set = super::eval::split(&splits, &a.split)?.clone();
        if let Some(n) = a.max_images {
            set = set.take(n);
        }
        if set.shape().as_slice() != &shape[1..] {
            anyhow::bail!("'{}' takes input {:?} but --data {} gives {:?}", a.model.display(), &shape[1..], a.data.data, set.shape());
        }
        let loader = Loader::new(Arc::new(set), LoaderConfig { workers: a.data.workers, ..LoaderConfig::eval(256) });
        for r in [
            ort_top1(&bytes, &loader, 0).with_context(|| format!("'{}' through ONNX Runtime", a.model.display()))?,
            tract_top1(&bytes, &loader).with_context(|| format!("'{}' through tract", a.model.display()))?,
        ] {
            top1.push((r.runtime.clone(), r.top1));
            accuracy.push(r);
        }
    }

    // The reference (when the budget names one) is timed with the model, run against run, so a
    // load that comes and goes on the machine moves both and not their ratio.
    let reference = match budget.as_ref().and_then(|b| b.reference_path()) {
        Some(rp) => {
            let (rb, rg, rshape) = read_model_file(&rp).context("the budget's reference model")?;
            let (rparams, rmacs) = crate::space::arch::graph_cost(&rg).with_context(|| format!("reference '{}'", rp.display()))?;
            Some((rp, rb, rshape, rparams, rmacs))
        }
        None => None,
    };
    let mut latency = Vec::new();
    let mut reference_rows = Vec::new();
    for t in &targets {
        let what = || format!("timing '{}' on {}", a.model.display(), t.label());
        match &reference {
            Some((rp, rb, rshape, ..)) => {
                // ONNX Runtime targets interleaved: in a child process whose two sessions share one
                // thread pool (see time_pair.rs); tract and sequential timing: here.
                let in_child = a.timing == Timing::Interleaved && ort_target_available(*t)?;
                let (m, r) = if in_child {
                    let exe = std::env::current_exe().context("cannot find the dnas executable to start its timing process")?;
                    measure_pair_in_child(&exe, &a.model, rp, *t, cfg)
                } else {
                    measure_pair((&bytes, &shape), (rb, rshape), *t, cfg, a.timing)
                }
                .with_context(|| format!("{} with its reference '{}'", what(), rp.display()))?;
                latency.push(m);
                reference_rows.push(r);
            }
            None => latency.push(measure(&bytes, &shape, *t, cfg).with_context(what)?),
        }
    }
    let reference_info = match &reference {
        Some((rp, _, _, rparams, rmacs)) => {
            serde_json::json!({"model": rp, "params": rparams, "macs": rmacs, "timing": a.timing, "latency": reference_rows})
        }
        None => serde_json::Value::Null,
    };

    let (violations, skipped) = match &budget {
        Some(b) => b.check(&Measured {
            params,
            macs,
            top1: if a.no_accuracy { None } else { Some(&top1) },
            latency: &latency,
            reference: &reference_rows,
        }),
        None => (Vec::new(), Vec::new()),
    };
    let pass = violations.is_empty();
    let report = serde_json::json!({
        "format": "dnas.validate", "version": 1, "dnas_version": env!("CARGO_PKG_VERSION"),
        "model": a.model, "input_shape": shape, "params": params, "macs": macs,
        "accuracy": accuracy, "data": a.data.data, "split": a.split,
        "latency": latency, "reference": reference_info,
        "budget": budget.as_ref().map(|b| serde_json::json!({"file": b.path, "name": b.name})),
        "violations": violations, "skipped": skipped, "pass": pass,
    });
    let report_path = a
        .report
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{}.validate.json", a.model.file_stem().and_then(|s| s.to_str()).unwrap_or("model"))));
    write_atomic(&report_path, serde_json::to_string_pretty(&report)?.as_bytes())?;

    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{}  params {params}  MACs {macs}  input {:?}", a.model.display(), shape);
        for r in &accuracy {
            println!("top-1 {:<12} {:>7.2}%  ({}/{} on {} {})", r.runtime, 100.0 * r.top1, r.correct, r.total, a.data.data, a.split);
        }
        println!("{:<16} {:>9} {:>9} {:>9}  {:<8} {:<6} settings", "latency (ms)", "p50", "p90", "p99", "ref p50", "ratio");
        for r in &latency {
            let refp = reference_rows.iter().find(|x| x.target == r.target).and_then(|x| x.p50_ms);
            let f = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.3}"));
            let ratio = r.paired_ratio.map(|q| q.p50).or_else(|| Some(r.p50_ms? / refp?));
            if r.available {
                println!(
                    "{:<16} {:>9} {:>9} {:>9}  {:<8} {:<6} {} {} thread(s), {}, batch {}, {} warm-up + {} timed runs",
                    r.target,
                    f(r.p50_ms),
                    f(r.p90_ms),
                    f(r.p99_ms),
                    f(refp),
                    ratio.map_or("-".to_string(), |v| format!("{v:.2}×")),
                    r.provider,
                    r.threads,
                    r.optimization,
                    r.batch,
                    r.warmup,
                    r.runs
                );
            } else {
                println!(
                    "{:<16} {:>9} {:>9} {:>9}  {:<8} {:<6} {}",
                    r.target,
                    "-",
                    "-",
                    "-",
                    "-",
                    "-",
                    r.note.as_deref().unwrap_or("unavailable")
                );
            }
        }
        if let Some((rp, ..)) = &reference {
            let how = match a.timing {
                Timing::Interleaved => {
                    "interleaved run against run (ABBA; ORT targets in a process of their own, one thread pool for both models); ratio = median of the per-round ratios"
                }
                Timing::Sequential => "sequentially (all the model's runs, then all the reference's); ratio = of the p50s",
            };
            println!("ref: '{}', timed {how}", rp.display());
        }
        for s in &skipped {
            println!(
                "skipped  {}:{} {}: {}",
                budget.as_ref().map(|b| b.path.display().to_string()).unwrap_or_default(),
                s.line,
                s.field,
                s.reason
            );
        }
        for v in &violations {
            println!("VIOLATED {}", v.message);
        }
        match &budget {
            Some(b) if pass => println!("PASS: budget '{}' ({}) met", b.name, b.path.display()),
            Some(b) => println!("FAIL: {} line(s) of budget '{}' violated", violations.len(), b.name),
            None => println!("(no --budget: nothing checked)"),
        }
        println!("report: {}", report_path.display());
    }
    Ok(if pass { Outcome::Ok } else { Outcome::CheckFailed })
}

#[cfg(feature = "torch")]
#[derive(Args)]
pub struct LatencyLutArgs {
    /// A search run (its space and teacher copy), or --space with --teacher.
    #[arg(long)]
    run: Option<PathBuf>,
    #[arg(long)]
    space: Option<PathBuf>,
    #[arg(long)]
    teacher: Option<PathBuf>,
    /// Latency target: ort-cpu-<N>t, ort-xnnpack-<N>t, ort-cuda or tract.
    #[arg(long, default_value = "ort-cpu-1t")]
    target: String,
    #[arg(long, default_value_t = 10)]
    warmup: usize,
    #[arg(long, default_value_t = 50)]
    runs: usize,
    #[arg(short, long)]
    output: PathBuf,
    #[arg(long)]
    json: bool,
}

#[cfg(feature = "torch")]
pub fn latency_lut(a: LatencyLutArgs) -> Result<Outcome> {
    let (space, teacher) = match (&a.run, &a.space, &a.teacher) {
        (Some(run), None, None) => {
            let r = crate::strategy::dna::run::RunDir::open(run)?;
            (r.space()?, r.teacher()?)
        }
        (None, Some(s), Some(t)) => (crate::space::SearchSpace::load(s)?, crate::onnx::read_file(t)?),
        _ => anyhow::bail!("give either --run DIR or both --space and --teacher"),
    };
    let resolved = crate::strategy::dna::run::resolve_with_teacher(&space, &teacher)?;
    let target = Target::parse(&a.target)?;
    let cfg = LatencyConfig { warmup: a.warmup, runs: a.runs };
    let t0 = std::time::Instant::now();
    let pb = if a.json { indicatif::ProgressBar::hidden() } else { indicatif::ProgressBar::new(0) };
    let lut = crate::strategy::dna::lut::build_lut(&resolved, target, cfg, &mut |done, total| {
        pb.set_length(total as u64);
        pb.set_position(done as u64)
    })?;
    pb.finish_and_clear();
    write_atomic(&a.output, serde_json::to_string_pretty(&lut)?.as_bytes())?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&lut)?);
    } else {
        println!(
            "{} layer entries + fixed part {:.3} ms on {} ({} warm-up + {} runs, p50) in {:.1} s → {}",
            lut.entries.len(),
            lut.fixed_ms,
            lut.provider,
            a.warmup,
            a.runs,
            t0.elapsed().as_secs_f64(),
            a.output.display()
        );
    }
    Ok(Outcome::Ok)
}
