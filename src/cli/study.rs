//! `dnas study truth|rank|pick`: search quality, measured (see `crate::study`).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};

use super::retrain::load_teacher;
use super::search::parse_count;
use super::train::set_threads;
use super::train::{fit_classifier, ClassifierJob, DataArgs, TrainArgs};
use super::Outcome;
use crate::exec::parse_device;
use crate::search::choose::choose;
use crate::search::metric::DnaMetric;
use crate::search::run::{resolve_with_teacher, sha256_hex, RunDir};
use crate::search::select::Budget as SelectBudget;
use crate::space::arch::{build_child_with_cuts, Arch};
use crate::space::point::{arch_key, PointCost};
use crate::space::SearchSpace;
use crate::study::pick::pick_report;
use crate::study::predict::{DnaPredictor, LowFiPredictor, OneShotPredictor, Predictor};
use crate::study::rank::rank;
use crate::study::sample::{random_within, truth_sample, Sampled, TruthSampling};
use crate::study::truth::{schedule, KdRecipe, PlanEntry, Recipe, Retrainer, StudyDir, StudyRecord, Trained, Truth};
use crate::train::classify::{Distill, FeatureDistill, LogitKd};
use crate::util::write_atomic;

#[derive(Subcommand)]
pub enum StudyCommand {
    /// Samples N architectures of a space (stratified over depths and MACs) and retrains each
    /// from scratch with one fixed recipe: the truth set (resumable, one architecture at a time).
    Truth(TruthArgs),
    /// Scores a search run's predictions against the truth set: Kendall τ, Spearman ρ,
    /// precision of the top quarter (bootstrap 95% intervals) next to the noise ceiling.
    Rank(RankArgs),
    /// The search's pick under a budget against K random architectures of the same budget,
    /// all retrained with the truth recipe.
    Pick(PickArgs),
    /// Trains the unfinished runs of a plan a study directory already holds (`plan-NAME.json`,
    /// written by truth, pick or an MF-KD search): one of several processes or hosts sharing the
    /// directory with `--shard i/n`.
    Run(RunArgs),
}

#[derive(Args)]
pub struct RunArgs {
    /// Study directory (holds study.json and the plan).
    #[arg(long)]
    dir: PathBuf,
    /// The plan's name: `plan-<NAME>.json` in the directory.
    #[arg(long)]
    plan: String,
    /// The teacher, when the study's recipe distils.
    #[arg(long)]
    teacher: Option<PathBuf>,
    /// Low-fidelity evaluations: held-out top-1 after the last epoch only, no test pass.
    #[arg(long)]
    cheap: bool,
    #[command(flatten)]
    runner: RunnerArgs,
}

pub fn run_cmd(a: RunArgs) -> Result<Outcome> {
    let study = StudyDir::open(&a.dir)?;
    let plan = study.load_plan(&a.plan)?;
    set_threads(a.runner.threads);
    let mut trainer = ClassifierRetrainer { runner: a.runner.clone(), teacher: a.teacher.clone(), cheap: a.cheap };
    let stats = study.run_schedule(&schedule(&plan), a.runner.shard, &mut trainer, &mut |_| Ok(()))?;
    println!(
        "plan '{}' shard {}/{}: trained {} runs, {} already finished",
        a.plan, a.runner.shard.0, a.runner.shard.1, stats.trained, stats.reused
    );
    Ok(Outcome::Ok)
}

pub fn run(c: StudyCommand) -> Result<Outcome> {
    match c {
        StudyCommand::Truth(a) => truth_cmd(a),
        StudyCommand::Rank(a) => rank_cmd(a),
        StudyCommand::Pick(a) => pick_cmd(a),
        StudyCommand::Run(a) => run_cmd(a),
    }
}

/// The truth recipe (defaults: the one chosen by the noise measurement in the README).
#[derive(Args, Clone)]
pub struct RecipeArgs {
    #[arg(long, default_value = "fmnist")]
    data: String,
    #[arg(long, default_value_t = 5000)]
    held_out: usize,
    /// Seed of the held-out carve: the same split for every architecture and seed.
    #[arg(long, default_value_t = 0)]
    data_seed: u64,
    #[arg(long)]
    train_subset: Option<usize>,
    #[arg(long, default_value_t = 4)]
    epochs: usize,
    #[arg(long, default_value_t = 128)]
    batch: usize,
    #[arg(long, default_value = "adamw")]
    optimizer: String,
    #[arg(long, default_value_t = 3e-3)]
    lr: f64,
    #[arg(long, default_value_t = 0.05)]
    weight_decay: f64,
    #[arg(long, default_value = "cosine")]
    schedule: String,
    #[arg(long, default_value_t = 0.5)]
    warmup_epochs: f64,
    /// Plain cross-entropy by default.
    #[arg(long, default_value_t = 0.0)]
    label_smoothing: f64,
    /// Distil from --teacher's logits (off: truth is plain cross-entropy).
    #[arg(long)]
    kd: bool,
    #[arg(long, default_value_t = 4.0)]
    kd_t: f64,
    #[arg(long, default_value_t = 0.5)]
    kd_alpha: f64,
}

impl RecipeArgs {
    fn recipe(&self) -> Recipe {
        Recipe {
            data: self.data.clone(),
            held_out: self.held_out,
            data_seed: self.data_seed,
            train_subset: self.train_subset,
            epochs: self.epochs,
            batch: self.batch,
            optimizer: self.optimizer.clone(),
            lr: self.lr,
            weight_decay: self.weight_decay,
            schedule: self.schedule.clone(),
            warmup_epochs: self.warmup_epochs,
            label_smoothing: self.label_smoothing,
            kd: self.kd.then_some(KdRecipe { temperature: self.kd_t, alpha: self.kd_alpha }),
            feature_kd: None,
        }
    }
}

/// Where and how the retrainings run.
#[derive(Args, Clone)]
pub struct RunnerArgs {
    #[arg(long, default_value = "cpu", value_parser = crate::exec::device_arg)]
    pub(super) device: String,
    /// libtorch threads per process (0 = all cores).
    #[arg(long, default_value_t = 0)]
    pub(super) threads: usize,
    #[arg(long, default_value_t = 2)]
    pub(super) workers: usize,
    /// This process trains the runs at positions i (mod n) of the schedule: `--shard 0/2` and
    /// `--shard 1/2` as two processes (one per GPU, or two on one) share the directory.
    #[arg(long, default_value = "0/1", value_parser = parse_shard)]
    pub(super) shard: (usize, usize),
    #[arg(long, default_value_t = 200)]
    pub(super) ckpt_every: usize,
    /// Plan only: write the plan and print it, train nothing.
    #[arg(long)]
    pub(super) plan_only: bool,
}

fn parse_shard(s: &str) -> std::result::Result<(usize, usize), String> {
    let (i, n) = s.split_once('/').ok_or_else(|| format!("'{s}' is not i/n (e.g. 0/2)"))?;
    let i: usize = i.parse().map_err(|_| format!("'{s}': shard index is not a number"))?;
    let n: usize = n.parse().map_err(|_| format!("'{s}': shard count is not a number"))?;
    if n == 0 || i >= n {
        return Err(format!("'{s}': need 0 ≤ i < n"));
    }
    Ok((i, n))
}

#[derive(Args)]
pub struct TruthArgs {
    #[arg(long)]
    space: PathBuf,
    #[arg(long)]
    teacher: PathBuf,
    #[arg(short, long)]
    output: PathBuf,
    /// Architectures in the truth set.
    #[arg(long, default_value_t = 24)]
    archs: usize,
    /// How many of them are retrained with a second seed (the noise floor).
    #[arg(long, default_value_t = 6)]
    repeat: usize,
    /// Sampling seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Training seed of every architecture (the repeats also use seed + 1).
    #[arg(long, default_value_t = 0)]
    train_seed: u64,
    /// MACs budgets whose boundaries get an architecture on each side (e.g. 7.07M).
    #[arg(long, value_parser = parse_count, value_delimiter = ',')]
    near_macs: Vec<u64>,
    /// Budget files whose max_macs count as --near-macs.
    #[arg(long)]
    near_budget: Vec<PathBuf>,
    /// Random op assignments per cell combination in the sampling pool.
    #[arg(long, default_value_t = 64)]
    pool_per_cells: usize,
    #[command(flatten)]
    recipe: RecipeArgs,
    #[command(flatten)]
    runner: RunnerArgs,
    #[arg(long)]
    json: bool,
}

/// The shared trainer as a [`Retrainer`]: `dnas retrain`'s loop without the ORT/tract pass.
pub(super) struct ClassifierRetrainer {
    pub(super) runner: RunnerArgs,
    pub(super) teacher: Option<PathBuf>,
    /// Low-fidelity evaluations: held-out top-1 after the last epoch only, no test-set pass.
    pub(super) cheap: bool,
}

impl Retrainer for ClassifierRetrainer {
    fn retrain(&mut self, arch: &Arch, seed: u64, dir: &Path, r: &Recipe) -> Result<Trained> {
        let data = DataArgs { data: r.data.clone(), held_out: r.held_out, size: None, channels: None, workers: self.runner.workers };
        let train = TrainArgs {
            epochs: r.epochs,
            batch: r.batch,
            optimizer: r.optimizer.clone(),
            lr: r.lr,
            weight_decay: r.weight_decay,
            schedule: r.schedule.clone(),
            warmup_epochs: r.warmup_epochs,
            label_smoothing: r.label_smoothing,
            ema: None,
            clip: None,
            ckpt_every: self.runner.ckpt_every,
            log_every: 20,
            max_steps: None,
            train_subset: r.train_subset,
            seed,
            device: self.runner.device.clone(),
            threads: self.runner.threads,
            resume: dir.join("ckpt").exists(),
        };
        let (graph, cuts) = build_child_with_cuts(arch, seed)?;
        let distils = r.kd.is_some() || r.feature_kd.is_some();
        let kd = match (distils, &self.teacher) {
            (true, Some(t)) => {
                let features = match &r.feature_kd {
                    Some(f) if f.teacher_cuts.len() != cuts.len() => bail!(
                        "the recipe's feature distillation names {} teacher cuts, '{}' has {} blocks",
                        f.teacher_cuts.len(),
                        arch.name,
                        cuts.len()
                    ),
                    Some(f) => Some(FeatureDistill {
                        kind: f.kind,
                        weight: f.weight,
                        pairs: cuts.iter().cloned().zip(f.teacher_cuts.iter().cloned()).collect(),
                    }),
                    None => None,
                };
                let logits = r.kd.as_ref().map(|k| LogitKd { temperature: k.temperature, alpha: k.alpha });
                Some(Distill { teacher: load_teacher(t, arch, &self.runner.device)?, logits, features })
            }
            (true, None) => bail!("the recipe distils but no teacher was given"),
            (false, _) => None,
        };
        let result = fit_classifier(ClassifierJob {
            command: "study",
            what: "truth",
            source: Path::new(&arch.name),
            graph,
            input: arch.input,
            classes: arch.classes,
            record: serde_json::json!({"arch": arch, "kd": r.kd, "feature_kd": r.feature_kd}),
            output: dir,
            data: &data,
            train: &train,
            data_seed: r.data_seed,
            kd,
            no_validate: true,
            final_held_out_only: self.cheap,
            json: false,
        })?;
        let t = &result["train"];
        let held = t["epoch_reports"].as_array().and_then(|v| v.last()).and_then(|e| e["eval"]["held_out_top1"].as_f64());
        Ok(Trained {
            test_top1: result["test_top1_tch"].as_f64(),
            held_out_top1: held,
            steps: t["steps"].as_u64().unwrap_or(0) as usize,
            seconds: t["seconds"].as_f64().unwrap_or(0.0),
        })
    }
    fn device(&self) -> String {
        self.runner.device.clone()
    }
    fn threads(&self) -> usize {
        if self.runner.threads == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            self.runner.threads
        }
    }
}

fn entries(
    study: &StudyDir,
    resolved: &crate::space::Resolved,
    sampled: &[Sampled],
    seeds: &dyn Fn(usize) -> Vec<u64>,
    prefix: &str,
) -> Result<Vec<PlanEntry>> {
    sampled
        .iter()
        .enumerate()
        .map(|(i, s)| {
            Ok(PlanEntry {
                key: s.key.clone(),
                why: s.why.clone(),
                params: s.params,
                macs: s.macs,
                seeds: seeds(i),
                arch: resolved.arch(&s.point, &format!("{prefix}{i:02}"), &study.record.teacher_sha256)?,
            })
        })
        .collect()
}

fn print_noise(t: &Truth) {
    let n = &t.noise;
    let pct = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{:.2} pt", 100.0 * v));
    let num = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{v:+.3}"));
    println!("truth: {}/{} runs finished; {} architectures with a value", t.finished_runs, t.planned_runs, t.finished().count());
    println!(
        "noise floor: {} pairs, seed-to-seed std {}, spread (max − min) {}, std between {}, std/spread {}; τ between seeds {} (ρ {})",
        n.pairs,
        pct(n.seed_std),
        pct(n.spread),
        pct(n.std_between),
        n.noise_to_spread.map_or("—".into(), |v| format!("{v:.2}")),
        num(n.tau_seeds),
        num(n.rho_seeds)
    );
}

fn open_space(space: &Path, teacher: &Path) -> Result<(crate::space::Resolved, String)> {
    let s = SearchSpace::load(space)?;
    let bytes = std::fs::read(teacher).with_context(|| format!("cannot read teacher '{}'", teacher.display()))?;
    let g = crate::onnx::read_model(&bytes).with_context(|| format!("'{}'", teacher.display()))?;
    let g = crate::teacher::layout::for_training(g, &format!("teacher '{}'", teacher.display()))?;
    let r = resolve_with_teacher(&s, &g).with_context(|| format!("space '{}' on teacher '{}'", space.display(), teacher.display()))?;
    Ok((r, sha256_hex(&bytes)))
}

pub fn truth_cmd(a: TruthArgs) -> Result<Outcome> {
    if a.repeat > a.archs {
        bail!("--repeat {} is more than --archs {}", a.repeat, a.archs);
    }
    let (resolved, sha) = open_space(&a.space, &a.teacher)?;
    let recipe = a.recipe.recipe();
    let study = StudyDir::create(
        &a.output,
        StudyRecord {
            format: "dnas.study".into(),
            version: 1,
            space: format!("{}@{}", resolved.space.name, resolved.space.version),
            teacher_sha256: sha,
            recipe,
        },
    )?;
    let mut near = a.near_macs.clone();
    for b in &a.near_budget {
        let budget = crate::validate::budget::Budget::load(b)?;
        near.extend(budget.max_macs);
    }
    near.sort();
    near.dedup();
    let sampling = TruthSampling { archs: a.archs, seed: a.seed, near_macs: near.clone(), pool_per_cells: a.pool_per_cells };
    let mut cost = PointCost::new(&resolved)?;
    let sampled = truth_sample(&resolved, &mut cost, &sampling)?;
    let (s0, s1, k) = (a.train_seed, a.train_seed + 1, a.repeat);
    let plan = entries(&study, &resolved, &sampled, &|i| if i < k { vec![s0, s1] } else { vec![s0] }, "truth_")?;
    let header = serde_json::json!({
        "format": "dnas.study.plan", "kind": "truth",
        "settings": {"archs": a.archs, "repeat": a.repeat, "seed": a.seed, "train_seed": a.train_seed, "near_macs": near, "pool_per_cells": a.pool_per_cells},
    });
    let plan = study.create_or_open_plan("truth", header, plan)?;
    let macs: Vec<u64> = plan.iter().map(|e| e.macs).collect();
    println!(
        "truth plan: {} architectures ({} with two seeds), MACs {}..{}, {} runs; recipe {}",
        plan.len(),
        k,
        macs.iter().min().unwrap_or(&0),
        macs.iter().max().unwrap_or(&0),
        plan.iter().map(|e| e.seeds.len()).sum::<usize>(),
        serde_json::to_string(&study.record.recipe)?
    );
    if a.runner.plan_only {
        for e in &plan {
            println!("  {:>9} MACs {:>7} params  seeds {:?}  {}  ({})", e.macs, e.params, e.seeds, e.key, e.why);
        }
        return Ok(Outcome::Ok);
    }
    let mut trainer = ClassifierRetrainer { runner: a.runner.clone(), teacher: Some(a.teacher.clone()), cheap: false };
    let sched = schedule(&plan);
    let stats = study.run_schedule(&sched, a.runner.shard, &mut trainer, &mut |s| Truth::load(s, "truth")?.write_snapshot(s))?;
    let t = Truth::load(&study, "truth")?;
    t.write_snapshot(&study)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&t)?);
    } else {
        println!("trained {} runs this time, {} already finished", stats.trained, stats.reused);
        print_noise(&t);
        println!("written: {}", study.root.join("truth.json").display());
    }
    Ok(Outcome::Ok)
}

#[derive(Args)]
pub struct RankArgs {
    /// Study directory (dnas study truth -o DIR).
    #[arg(long)]
    truth: PathBuf,
    /// Search run whose predictions are scored: a DNA run (dnas train + evaluate: its rankings)
    /// or a one-shot run (dnas search --strategy spos|cream: inherited-weight held-out top-1).
    #[arg(long)]
    run: PathBuf,
    /// One-shot runs: a teacher to resolve tensor cuts of the space.
    #[arg(long)]
    teacher: Option<PathBuf>,
    /// One-shot runs: held-out batches each architecture is scored on.
    #[arg(long, default_value_t = 4)]
    eval_batches: usize,
    #[arg(long, default_value_t = 256)]
    eval_batch: usize,
    #[arg(long, default_value = "cpu", value_parser = crate::exec::device_arg)]
    device: String,
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// DNA block metric: score (mean|Y−Ŷ|/std, the default of select), mse, mse-var, cell-z, or all.
    #[arg(long, default_value = "all")]
    metric: String,
    /// MF-KD runs: which low-fidelity predictors, comma-separated — kd (Hinton, as the run),
    /// ce (no distillation), at / nst (cross-entropy + attention / neuron-selectivity transfer at
    /// the teacher's cuts), kd+at / kd+nst; both = kd,ce. Each trains every truth architecture
    /// once at the run's low fidelity.
    #[arg(long, default_value = "both")]
    lowfi: String,
    /// Name of the report (default: the run directory's name).
    #[arg(long)]
    name: Option<String>,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long)]
    json: bool,
}

fn run_name(run: &Path, name: &Option<String>) -> String {
    name.clone().unwrap_or_else(|| run.file_name().and_then(|s| s.to_str()).unwrap_or("run").to_string())
}

pub fn rank_cmd(a: RankArgs) -> Result<Outcome> {
    let study = StudyDir::open(&a.truth)?;
    let truth = Truth::load(&study, "truth")?;
    let name = run_name(&a.run, &a.name);
    let mut predictors: Vec<(String, Box<dyn Predictor>)> = Vec::new();
    if super::mfkd::is_mfkd_run(&a.run) {
        set_threads(a.threads);
        let resolved = crate::cli::oneshot::resolve_space(&a.run.join("space.json"), a.teacher.as_deref())?;
        for (label, lowfi) in super::mfkd::lowfi_dirs(&a.run, &a.lowfi, &study, &resolved)? {
            let runner =
                RunnerArgs { device: a.device.clone(), threads: a.threads, workers: 2, shard: (0, 1), ckpt_every: 200, plan_only: false };
            let trainer = ClassifierRetrainer { runner, teacher: a.teacher.clone(), cheap: true };
            predictors.push((
                label.clone(),
                Box::new(LowFiPredictor { label: format!("mfkd:{label}"), dir: lowfi, trainer: Box::new(trainer), seed: 0 }),
            ));
        }
    } else if a.run.join("oneshot.json").exists() {
        let rec = crate::util::read_json(&a.run.join("oneshot.json"))?;
        if rec["space"].as_str() != Some(study.record.space.as_str()) {
            bail!("the run searched space {} but the truth set is of {}", rec["space"], study.record.space);
        }
        let space = crate::cli::oneshot::resolve_space(&a.run.join("space.json"), a.teacher.as_deref())?;
        set_threads(a.threads);
        let p = OneShotPredictor::from_run(&a.run, space, a.eval_batches, a.eval_batch, parse_device(&a.device)?)?;
        predictors.push(("inherited".into(), Box::new(p)));
    } else {
        let run = RunDir::open(&a.run)?;
        if run.record.space != study.record.space {
            bail!("the run searched space {} but the truth set is of {}", run.record.space, study.record.space);
        }
        let metrics: Vec<DnaMetric> = if a.metric == "all" { DnaMetric::ALL.to_vec() } else { vec![DnaMetric::parse(&a.metric)?] };
        for m in metrics {
            predictors.push((m.label().into(), Box::new(DnaPredictor::from_run("dna", &run, m)?)));
        }
    }
    let mut reports = Vec::new();
    for (label, mut p) in predictors {
        let r = rank(&truth, p.as_mut(), &a.run.display().to_string(), a.seed)?;
        let file = study.root.join("rank").join(format!("{name}.{label}.json"));
        write_atomic(&file, serde_json::to_string_pretty(&r)?.as_bytes())?;
        reports.push(r);
    }
    let diffs = crate::study::rank::differences(&reports, a.seed)?;
    if !diffs.is_empty() {
        let file = study.root.join("rank").join("differences").join(format!("{name}.json"));
        write_atomic(&file, serde_json::to_string_pretty(&diffs)?.as_bytes())?;
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
        return Ok(Outcome::Ok);
    }
    print_noise(&truth);
    println!("{:<16} {:>4} {:>24} {:>24} {:>24}", "predictor", "n", "Kendall τ [95%]", "Spearman ρ [95%]", "prec. top 1/4 [95%]");
    for r in &reports {
        println!(
            "{:<16} {:>4} {:>24} {:>24} {:>24}",
            r.predictor,
            r.archs,
            r.kendall_tau.to_string(),
            r.spearman_rho.to_string(),
            r.precision_top_quarter.to_string()
        );
    }
    if let Some(m) = reports.first().and_then(|r| r.macs_tau) {
        println!("{:<16} {:>4} {:>24}", "MACs (baseline)", reports[0].archs, format!("{m:+.3}"));
    }
    if !diffs.is_empty() {
        println!("differences, paired bootstrap over the same architectures:");
        for d in &diffs {
            println!("  {:<34} Δτ {:>24}   Δρ {:>24}", format!("{} − {}", d.a, d.b), d.kendall_tau.to_string(), d.spearman_rho.to_string());
        }
    }
    println!("reports written to {}", study.root.join("rank").display());
    Ok(Outcome::Ok)
}

#[derive(Args)]
pub struct PickArgs {
    /// Study directory whose recipe retrains the pick and the random architectures.
    #[arg(long)]
    truth: PathBuf,
    /// Search run the pick comes from: a DNA run (selected here from its rankings under the
    /// budget) or a one-shot run of `dnas search --strategy spos|cream` (its `arch.json`, which
    /// must have been searched under the same budget).
    #[arg(long)]
    run: PathBuf,
    /// DNA: the block loss selection adds up (cell-z, as `dnas select`; score, mse, mse-var).
    /// The comparison is named `<run>-<metric>`.
    #[arg(long, default_value = "cell-z")]
    metric: String,
    /// One-shot runs: the teacher that resolves the space's tensor cuts (and teaches a --kd recipe).
    #[arg(long)]
    teacher: Option<PathBuf>,
    /// Budget file (its max_macs / max_params constrain both the pick and the random ones).
    #[arg(long)]
    budget: Option<PathBuf>,
    #[arg(long, value_parser = parse_count)]
    max_macs: Option<u64>,
    #[arg(long, value_parser = parse_count)]
    max_params: Option<u64>,
    /// Random architectures within the budget.
    #[arg(long, default_value_t = 10)]
    random: usize,
    /// Seed of the random draws (the same seed and budget give the same ones for every run).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Training seed.
    #[arg(long, default_value_t = 0)]
    train_seed: u64,
    /// Name of the comparison (default: the run directory's name).
    #[arg(long)]
    name: Option<String>,
    #[command(flatten)]
    runner: RunnerArgs,
    #[arg(long)]
    json: bool,
}

/// The pick of a one-shot run (`arch.json`), its space resolved on the study's teacher; the run
/// must have searched under the pick's budget, or the comparison would not be fair.
fn oneshot_pick(
    run: &Path,
    study: &StudyDir,
    teacher: Option<&Path>,
    max_macs: Option<u64>,
    max_params: Option<u64>,
) -> Result<(Arch, crate::space::Resolved)> {
    let file = run.join("arch.json");
    if !file.exists() {
        bail!("'{}' has no pick: run dnas search --strategy … --run {} first", file.display(), run.display());
    }
    let arch: Arch =
        serde_json::from_value(crate::util::read_json(&file)?).with_context(|| format!("'{}' is not an architecture", file.display()))?;
    let searched = (arch.budget["max_macs"].as_u64(), arch.budget["max_params"].as_u64());
    if searched != (max_macs, max_params) {
        let show = |v: Option<u64>| v.map_or("none".to_string(), |v| v.to_string());
        bail!(
            "'{}' was searched under max_macs {} / max_params {}, not the pick's {} / {}: search again under that budget",
            run.display(),
            show(searched.0),
            show(searched.1),
            show(max_macs),
            show(max_params)
        );
    }
    let resolved = crate::cli::oneshot::resolve_space(&run.join("space.json"), teacher)?;
    let space = format!("{}@{}", resolved.space.name, resolved.space.version);
    if space != study.record.space {
        bail!("the run searched space {space} but the study is of {}", study.record.space);
    }
    Ok((arch, resolved))
}

pub fn pick_cmd(a: PickArgs) -> Result<Outcome> {
    let study = StudyDir::open(&a.truth)?;
    let (max_macs, max_params) = super::oneshot::cost_limits(a.budget.as_deref(), a.max_macs, a.max_params)?;
    if max_macs.is_none() && max_params.is_none() {
        bail!("give --budget, --max-macs or --max-params: the pick and the random architectures share that budget");
    }
    let (picked, resolved, teacher) = if a.run.join("oneshot.json").exists() || super::mfkd::is_mfkd_run(&a.run) {
        let (arch, resolved) = oneshot_pick(&a.run, &study, a.teacher.as_deref(), max_macs, max_params)?;
        (arch, resolved, a.teacher.clone())
    } else {
        let run = RunDir::open(&a.run)?;
        if run.record.space != study.record.space {
            bail!("the run searched space {} but the study is of {}", run.record.space, study.record.space);
        }
        let teacher = run.root.join("teacher.onnx");
        let (resolved, _) = open_space(&run.root.join("space.json"), &teacher)?;
        let metric = DnaMetric::parse(&a.metric)?;
        let choice = choose(&run, SelectBudget { max_macs, max_params, ..Default::default() }, None, 1, metric)?;
        (choice.archs.into_iter().next().context("no architecture fits the budget")?, resolved, Some(teacher))
    };
    let mut cost = PointCost::new(&resolved)?;
    let random = random_within(&resolved, &mut cost, a.random, a.seed, max_macs, max_params)?;
    let dna = a.run.join("run.json").exists();
    let name = match &a.name {
        None if dna => format!("{}-{}", run_name(&a.run, &None), a.metric),
        _ => run_name(&a.run, &a.name),
    };
    let seeds = vec![a.train_seed];
    let mut plan = vec![PlanEntry {
        key: arch_key(&picked),
        why: format!("pick of {}", a.run.display()),
        params: picked.predicted.params,
        macs: picked.predicted.macs,
        seeds: seeds.clone(),
        arch: picked,
    }];
    plan.extend(entries(&study, &resolved, &random, &|_| seeds.clone(), "random_")?);
    let budget_json = serde_json::json!({"max_macs": max_macs, "max_params": max_params});
    let header = serde_json::json!({"format": "dnas.study.plan", "kind": "pick", "source": a.run, "budget": budget_json,
        "settings": {"random": a.random, "seed": a.seed, "train_seed": a.train_seed, "metric": dna.then_some(&a.metric)}});
    let plan = study.create_or_open_plan(&format!("pick-{name}"), header, plan)?;
    println!("pick {} ({} MACs) vs {} random architectures within {budget_json}", plan[0].key, plan[0].macs, a.random);
    if !a.runner.plan_only {
        let mut trainer = ClassifierRetrainer { runner: a.runner.clone(), teacher, cheap: false };
        let sched = schedule(&plan);
        study.run_schedule(&sched, a.runner.shard, &mut trainer, &mut |_| Ok(()))?;
    } else {
        return Ok(Outcome::Ok);
    }
    let r = pick_report(&study, &name, &a.run.display().to_string(), budget_json)?;
    write_atomic(&study.root.join("pick").join(format!("{name}.json")), serde_json::to_string_pretty(&r)?.as_bytes())?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        println!("pick      {:.2}%  {}", 100.0 * r.pick.top1, r.pick.key);
        println!("random    mean {:.2}%  best {:.2}%  ({} architectures)", 100.0 * r.random_mean, 100.0 * r.random_best, r.random.len());
        println!("the pick beats {} of {} random architectures (percentile {:.0}%)", r.beats, r.random.len(), 100.0 * r.percentile);
    }
    Ok(Outcome::Ok)
}
