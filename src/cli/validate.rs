//! `dnas validate MODEL.onnx --data … --budget B.json`: the CI gate (`validate::gate`) — flags
//! in, the report printed; exit 0 pass, 1 budget violated, 2 error. And `dnas latency-lut`.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use super::eval::DataArgs;
use super::Outcome;
use crate::validate::gate::{run_gate, GateConfig, GateReport};
use crate::validate::latency::{LatencyConfig, Timing};
#[cfg(feature = "torch")]
use crate::{util::write_atomic, validate::latency::Target};

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

pub fn validate(a: ValidateArgs) -> Result<Outcome> {
    let cfg = GateConfig {
        model: a.model.clone(),
        budget: a.budget.clone(),
        data: a.data.spec(0),
        workers: a.data.workers,
        split: a.split.clone(),
        max_images: a.max_images,
        accuracy: !a.no_accuracy,
        targets: a.targets.clone(),
        latency: LatencyConfig { warmup: a.warmup, runs: a.runs },
        timing: a.timing,
        report: a.report.clone(),
    };
    let r = run_gate(&cfg)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        print_report(&r);
    }
    Ok(if r.pass { Outcome::Ok } else { Outcome::CheckFailed })
}

fn print_report(r: &GateReport) {
    println!("{}  params {}  MACs {}  input {:?}", r.model.display(), r.params, r.macs, r.input_shape);
    for x in &r.accuracy {
        println!("top-1 {:<12} {:>7.2}%  ({}/{} on {} {})", x.runtime, 100.0 * x.top1, x.correct, x.total, r.data, r.split);
    }
    print_latency(r);
    let budget_file = r.budget.as_ref().map(|b| b.file.display().to_string()).unwrap_or_default();
    for s in &r.skipped {
        println!("skipped  {budget_file}:{} {}: {}", s.line, s.field, s.reason);
    }
    for v in &r.violations {
        println!("VIOLATED {}", v.message);
    }
    match &r.budget {
        Some(b) if r.pass => println!("PASS: budget '{}' ({}) met", b.name, b.file.display()),
        Some(b) => println!("FAIL: {} line(s) of budget '{}' violated", r.violations.len(), b.name),
        None => println!("(no --budget: nothing checked)"),
    }
    println!("report: {}", r.path.display());
}

/// One line per target: percentiles, the reference's p50 and the ratio, and the settings.
fn print_latency(r: &GateReport) {
    println!("{:<16} {:>9} {:>9} {:>9}  {:<8} {:<6} settings", "latency (ms)", "p50", "p90", "p99", "ref p50", "ratio");
    let rows = r.reference.as_ref().map(|x| x.latency.as_slice()).unwrap_or_default();
    for l in &r.latency {
        if !l.available {
            println!(
                "{:<16} {:>9} {:>9} {:>9}  {:<8} {:<6} {}",
                l.target,
                "-",
                "-",
                "-",
                "-",
                "-",
                l.note.as_deref().unwrap_or("unavailable")
            );
            continue;
        }
        let refp = rows.iter().find(|x| x.target == l.target).and_then(|x| x.p50_ms);
        let f = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.3}"));
        let ratio = l.paired_ratio.map(|q| q.p50).or_else(|| Some(l.p50_ms? / refp?)).map_or("-".to_string(), |v| format!("{v:.2}×"));
        let settings = format!(
            "{} {} thread(s), {}, batch {}, {} warm-up + {} timed runs",
            l.provider, l.threads, l.optimization, l.batch, l.warmup, l.runs
        );
        println!("{:<16} {:>9} {:>9} {:>9}  {:<8} {:<6} {settings}", l.target, f(l.p50_ms), f(l.p90_ms), f(l.p99_ms), f(refp), ratio);
    }
    if let Some(x) = &r.reference {
        let how = match x.timing {
            Timing::Interleaved => {
                "interleaved run against run (ABBA; ORT targets in a process of their own, one thread pool for both models); ratio = median of the per-round ratios"
            }
            Timing::Sequential => "sequentially (all the model's runs, then all the reference's); ratio = of the p50s",
        };
        println!("ref: '{}', timed {how}", x.model.display());
    }
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
