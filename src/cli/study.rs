//! `dnas study truth|rank|pick`: search quality, measured (see `crate::study`).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};

use super::train::set_threads;
use super::Outcome;
use crate::exec::parse_device;
use crate::space::limits::PathBudget;
use crate::space::point::{arch_key, PointCost};
use crate::space::SearchSpace;
use crate::strategy::dna::metric::DnaMetric;
use crate::strategy::dna::run::resolve_with_teacher;
use crate::strategy::{Pick, PickRequest, PredictorRequest, SearchRun, Strategy};
use crate::study::pick::pick_report;
use crate::study::plan::{entries, truth_plan, TruthPlan};
use crate::study::rank::rank;
use crate::study::retrain::{ClassifierRetrainer, Runner};
use crate::study::sample::random_within;
use crate::study::truth::{schedule, KdRecipe, PlanEntry, Recipe, Retrainer, StudyDir, StudyRecord, Truth};
use crate::util::parse_count;
use crate::util::sha256_hex;
use crate::util::write_atomic;

#[derive(Subcommand)]
pub enum StudyCommand {
    /// Samples N architectures of a space (stratified over depths and MACs) and retrains each
    /// from scratch with one fixed recipe: the truth set (resumable, one architecture at a time).
    Truth(Box<TruthArgs>),
    /// Scores a search run's predictions against the truth set: Kendall τ, Spearman ρ,
    /// precision of the top quarter (bootstrap 95% intervals) next to the noise ceiling.
    Rank(RankArgs),
    /// The search's pick under a budget against K random architectures of the same budget,
    /// all retrained with the truth recipe.
    Pick(PickArgs),
    /// A strategy's picks over several search seeds (one search run each), each retrained with
    /// the study's recipe and seeds, against the band set: mean with interval, band percentile,
    /// permutation p against the band, search cost and random search at equal compute.
    Picks(PicksArgs),
    /// Compares candidate truth recipes (one study directory each, the same band architectures
    /// and seeds): per recipe the seed and architecture stds, ICC(1), the reliability of a 2-seed
    /// mean and the seconds per run; picks the cheapest recipe whose 2-seed reliability reaches
    /// --target (`recipes.json` in --out).
    Recipes(RecipesArgs),
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
    let mut trainer = ClassifierRetrainer { runner: a.runner.runner(), teacher: a.teacher.clone(), cheap: a.cheap };
    let stats = study.run_schedule(&schedule(&plan), a.runner.shard, &mut trainer, &mut |_| Ok(()))?;
    println!(
        "plan '{}' shard {}/{}: trained {} runs, {} already finished",
        a.plan, a.runner.shard.0, a.runner.shard.1, stats.trained, stats.reused
    );
    Ok(Outcome::Ok)
}

pub fn run(c: StudyCommand) -> Result<Outcome> {
    match c {
        StudyCommand::Truth(a) => truth_cmd(*a),
        StudyCommand::Rank(a) => rank_cmd(a),
        StudyCommand::Pick(a) => pick_cmd(a),
        StudyCommand::Picks(a) => picks_cmd(a),
        StudyCommand::Recipes(a) => recipes_cmd(a),
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

impl RunnerArgs {
    pub(super) fn runner(&self) -> Runner {
        Runner { device: self.device.clone(), threads: self.threads, workers: self.workers, ckpt_every: self.ckpt_every }
    }
}

fn parse_band(s: &str) -> std::result::Result<(f64, f64), String> {
    let (lo, hi) = s.split_once(',').ok_or_else(|| format!("'{s}' is not LO,HI (e.g. 0.8,1.0)"))?;
    let lo: f64 = lo.trim().parse().map_err(|_| format!("'{s}': LO is not a number"))?;
    let hi: f64 = hi.trim().parse().map_err(|_| format!("'{s}': HI is not a number"))?;
    if !(0.0..=hi).contains(&lo) || hi <= 0.0 {
        return Err(format!("'{s}': need 0 ≤ LO ≤ HI, HI > 0"));
    }
    Ok((lo, hi))
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
    /// Which set: `space` (stratified over the whole MACs range, plan `space`) or `band`
    /// (uniform over architectures with --band of --budget's MACs and within its params, plan
    /// `band`: the MACs-matched set where selection decides).
    #[arg(long, default_value = "space", value_parser = ["space", "band"])]
    set: String,
    /// The band as fractions of the budget's max_macs.
    #[arg(long, default_value = "0.8,1.0", value_parser = parse_band)]
    band: (f64, f64),
    /// Budget file of the band (its max_macs and max_params).
    #[arg(long)]
    budget: Option<PathBuf>,
    /// Training seeds of every architecture (overrides --train-seed/--repeat), e.g. 0,1,2.
    #[arg(long, value_delimiter = ',')]
    seeds: Vec<u64>,
    #[command(flatten)]
    recipe: RecipeArgs,
    #[command(flatten)]
    runner: RunnerArgs,
    #[arg(long)]
    json: bool,
}

fn print_reliability(set: &str, t: &Truth) {
    println!(
        "truth set '{set}': {}/{} runs finished; {} architectures with a value",
        t.finished_runs,
        t.planned_runs,
        t.finished().count()
    );
    match &t.reliability {
        Some(r) => println!(
            "  std within an architecture (seed) {:.2} pt, between architectures {:.2} pt; ICC(1) {:.2}, reliability of the {:.1}-seed mean {:.2}; τ ceiling {:.2}",
            100.0 * r.within_std,
            100.0 * r.between_std,
            r.icc1,
            r.n0,
            r.icc_mean,
            r.tau_ceiling
        ),
        None => println!("  reliability: not yet measurable (needs 2 finished architectures, one with 2 seeds)"),
    }
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
    let (resolved, sha) = open_space(&a.space, &a.teacher)?;
    let record = StudyRecord {
        format: "dnas.study".into(),
        version: 1,
        space: format!("{}@{}", resolved.space.name, resolved.space.version),
        teacher_sha256: sha,
        recipe: a.recipe.recipe(),
    };
    let study = StudyDir::create(&a.output, record)?;
    let mut near_macs = a.near_macs.clone();
    for b in &a.near_budget {
        near_macs.extend(crate::validate::budget::Budget::load(b)?.max_macs);
    }
    near_macs.sort();
    near_macs.dedup();
    let p = TruthPlan {
        set: a.set.clone(),
        archs: a.archs,
        seed: a.seed,
        seeds: a.seeds.clone(),
        repeat: a.repeat,
        train_seed: a.train_seed,
        budget: a.budget.clone(),
        band: a.band,
        near_macs,
        pool_per_cells: a.pool_per_cells,
    };
    let (plan_name, plan) = truth_plan(&study, &resolved, &p)?;
    let plan_name = plan_name.as_str();
    let macs: Vec<u64> = plan.iter().map(|e| e.macs).collect();
    println!(
        "truth plan '{plan_name}': {} architectures ({} with two or more seeds), MACs {}..{}, {} runs; recipe {}",
        plan.len(),
        plan.iter().filter(|e| e.seeds.len() > 1).count(),
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
    let mut trainer = ClassifierRetrainer { runner: a.runner.runner(), teacher: Some(a.teacher.clone()), cheap: false };
    let sched = schedule(&plan);
    let stats = study.run_schedule(&sched, a.runner.shard, &mut trainer, &mut |s| Truth::load(s, plan_name)?.write_snapshot(s))?;
    let t = Truth::load(&study, plan_name)?;
    t.write_snapshot(&study)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&t)?);
    } else {
        println!("trained {} runs this time, {} already finished", stats.trained, stats.reused);
        print_reliability(plan_name, &t);
    }
    Ok(Outcome::Ok)
}

#[derive(Args)]
pub struct RankArgs {
    /// Study directory (dnas study truth -o DIR).
    #[arg(long)]
    truth: PathBuf,
    /// Search run whose predictions are scored: a DNA run (dnas train + evaluate: its rankings)
    /// or a one-shot run (dnas search spos|cream: inherited-weight held-out top-1).
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
    /// Which half of the band set to score: `select` (where defaults are chosen), `report`
    /// (where they are reported) or `all`. The halves are fixed by --split-seed.
    #[arg(long, default_value = "all", value_parser = ["all", "select", "report"])]
    half: String,
    #[arg(long, default_value_t = 0)]
    split_seed: u64,
    #[arg(long)]
    json: bool,
}

/// The band set restricted to one half of its fixed split (`all`: unchanged).
fn band_half(sets: &mut [(String, Truth)], half: &str, split_seed: u64) {
    if half == "all" {
        return;
    }
    for (name, t) in sets.iter_mut() {
        if name == "band" {
            let keys: Vec<String> = t.archs.iter().map(|a| a.key.clone()).collect();
            let (select, report) = crate::study::sample::split_halves(&keys, split_seed);
            let keep = if half == "select" { select } else { report };
            t.archs.retain(|a| keep.contains(&a.key));
            let groups: Vec<Vec<f64>> = t.archs.iter().map(|a| a.top1.values().copied().collect()).collect();
            t.reliability = crate::study::reliability::reliability(&groups);
            *name = format!("band-{half}");
        }
    }
}

fn run_name(run: &Path, name: &Option<String>) -> String {
    name.clone().unwrap_or_else(|| run.file_name().and_then(|s| s.to_str()).unwrap_or("run").to_string())
}

pub fn rank_cmd(a: RankArgs) -> Result<Outcome> {
    let study = StudyDir::open(&a.truth)?;
    let mut sets = Truth::load_sets(&study)?;
    band_half(&mut sets, &a.half, a.split_seed);
    let name = match a.half.as_str() {
        "all" => run_name(&a.run, &a.name),
        h => format!("{}.{h}", run_name(&a.run, &a.name)),
    };
    set_threads(a.threads);
    let runner = Runner { device: a.device.clone(), threads: a.threads, workers: 2, ckpt_every: 200 };
    let lowfi_trainer =
        || -> Box<dyn Retrainer> { Box::new(ClassifierRetrainer { runner: runner.clone(), teacher: a.teacher.clone(), cheap: true }) };
    let predictors = SearchRun::open(&a.run)?.predictors(&PredictorRequest {
        study: &study,
        metric: &a.metric,
        teacher: a.teacher.as_deref(),
        device: parse_device(&a.device)?,
        eval_batches: a.eval_batches,
        eval_batch: a.eval_batch,
        lowfi: &a.lowfi,
        lowfi_trainer: &lowfi_trainer,
    })?;
    let set_refs: Vec<(&str, &Truth)> = sets.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let mut reports = Vec::new();
    for (label, mut p) in predictors {
        let r = rank(&set_refs, p.as_mut(), &a.run.display().to_string(), a.seed)?;
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
    for (set, t) in &sets {
        print_reliability(set, t);
    }
    print_rank_table(&reports);
    if !diffs.is_empty() {
        println!("differences, paired bootstrap over the same architectures:");
        for d in &diffs {
            println!(
                "  {:<34} {:<6} Δτ {:>24}   Δρ {:>24}",
                format!("{} − {}", d.a, d.b),
                d.set,
                d.kendall_tau.to_string(),
                d.spearman_rho.to_string()
            );
        }
    }
    println!("reports written to {}", study.root.join("rank").display());
    Ok(Outcome::Ok)
}

/// Per predictor and set: n (skipped), τ and ρ with nested-bootstrap intervals, MACs' own τ, the
/// truth's reliability and τ ceiling; then the partial τ given MACs over the sets pooled.
fn print_rank_table(reports: &[crate::study::rank::RankReport]) {
    println!(
        "{:<16} {:<6} {:>8} {:>24} {:>24} {:>8} {:>6} {:>7} {:>7}",
        "predictor", "set", "n (skip)", "Kendall τ [95%]", "Spearman ρ [95%]", "τ MACs", "rel.", "ceiling", "τ corr."
    );
    for r in reports {
        for s in &r.sets {
            let opt = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{v:+.2}"));
            println!(
                "{:<16} {:<6} {:>8} {:>24} {:>24} {:>8} {:>6} {:>7} {:>7}",
                r.predictor,
                s.set,
                format!("{} ({})", s.archs, s.skipped.len()),
                s.kendall_tau.to_string(),
                s.spearman_rho.to_string(),
                opt(s.macs_tau),
                s.reliability.map_or("—".into(), |x| format!("{:.2}", x.icc_mean)),
                s.reliability.map_or("—".into(), |x| format!("{:.2}", x.tau_ceiling)),
                opt(s.tau_corrected)
            );
        }
        if let Some(p) = &r.partial_tau_macs {
            println!("{:<16} {:<6} {:>8} {:>24}   (partial τ given MACs, sets pooled)", r.predictor, "all", r.pooled_archs, p.to_string());
        }
        if r.sets.iter().any(|s| !s.skipped.is_empty()) {
            println!("{:<16} scored on {}", "", r.scored_on);
        }
    }
}

/// How a search run's pick is taken (`study pick`, `study picks`): the DNA metric, the teacher
/// a one-shot or MF-KD run's space is resolved on, and the budget the pick was searched under.
#[derive(Args)]
pub struct PickFrom {
    /// DNA: the block loss selection adds up (score, as `dnas select`; cell-z, mse, mse-var).
    #[arg(long, default_value = "score")]
    metric: String,
    /// One-shot and MF-KD runs: the teacher that resolves the space's tensor cuts (and teaches a
    /// distilling recipe).
    #[arg(long)]
    teacher: Option<PathBuf>,
    /// Budget file (its max_macs / max_params): the pick's budget, and that of the random ones.
    #[arg(long)]
    budget: Option<PathBuf>,
    #[arg(long, value_parser = parse_count)]
    max_macs: Option<u64>,
    #[arg(long, value_parser = parse_count)]
    max_params: Option<u64>,
}

#[derive(Args)]
pub struct PickArgs {
    /// Study directory whose recipe retrains the pick and the random architectures.
    #[arg(long)]
    truth: PathBuf,
    /// Search run the pick comes from: a DNA run (selected here from its rankings under the
    /// budget) or a one-shot run of `dnas search spos|cream` (its `arch.json`, which
    /// must have been searched under the same budget).
    #[arg(long)]
    run: PathBuf,
    #[command(flatten)]
    from: PickFrom,
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

/// The pick of any search run under the limits (see `SearchRun::pick`), from a run of the
/// study's space.
fn pick_of_run(run: &Path, study: &StudyDir, from: &PickFrom, limits: PathBudget) -> Result<Pick> {
    let run = SearchRun::open(run)?;
    run.check_space(&study.record.space)?;
    run.pick(&PickRequest { limits, metric: DnaMetric::parse(&from.metric)?, teacher: from.teacher.as_deref() })
}

#[derive(Args)]
pub struct PicksArgs {
    /// Study directory with a band set (dnas study truth --set band).
    #[arg(long)]
    truth: PathBuf,
    /// The search runs, one per search seed (repeat the flag or separate with commas).
    #[arg(long = "run", value_delimiter = ',', required = true)]
    runs: Vec<PathBuf>,
    /// Name of the comparison (the strategy and its settings, e.g. dna-score).
    #[arg(long)]
    name: String,
    #[command(flatten)]
    from: PickFrom,
    /// Retraining seeds of every pick (the band set's).
    #[arg(long, value_delimiter = ',', default_value = "0,1")]
    seeds: Vec<u64>,
    #[command(flatten)]
    runner: RunnerArgs,
    #[arg(long)]
    json: bool,
}

pub fn picks_cmd(a: PicksArgs) -> Result<Outcome> {
    let study = StudyDir::open(&a.truth)?;
    if !study.plan_path("band").exists() {
        bail!("'{}' has no band set: run dnas study truth --set band -o {} first", a.truth.display(), a.truth.display());
    }
    let (max_macs, max_params) = crate::validate::budget::cost_limits(a.from.budget.as_deref(), a.from.max_macs, a.from.max_params)?;
    if max_macs.is_none() && max_params.is_none() {
        bail!("give --budget, --max-macs or --max-params: the picks were searched under it");
    }
    let limits = PathBudget { max_macs, max_params };
    let mut plan = Vec::new();
    let mut teacher = a.from.teacher.clone();
    for run in &a.runs {
        let Pick { arch, teacher: t, .. } =
            pick_of_run(run, &study, &a.from, limits).with_context(|| format!("the pick of '{}'", run.display()))?;
        teacher = teacher.or(t);
        plan.push(PlanEntry {
            key: arch_key(&arch),
            why: format!("pick of {}", run.display()),
            params: arch.predicted.params,
            macs: arch.predicted.macs,
            seeds: a.seeds.clone(),
            arch,
        });
    }
    let budget_json = serde_json::json!({"max_macs": max_macs, "max_params": max_params});
    let header = serde_json::json!({"format": "dnas.study.plan", "version": 2, "kind": "picks", "runs": a.runs, "budget": budget_json,
        "settings": {"metric": &a.from.metric, "seeds": &a.seeds}});
    let plan = study.create_or_open_plan(&format!("picks-{}", a.name), header, plan)?;
    if a.runner.plan_only {
        for e in &plan {
            println!("  {:>9} MACs {:>7} params  {}  ({})", e.macs, e.params, e.key, e.why);
        }
        return Ok(Outcome::Ok);
    }
    let mut trainer = ClassifierRetrainer { runner: a.runner.runner(), teacher, cheap: false };
    study.run_schedule(&schedule(&plan), a.runner.shard, &mut trainer, &mut |_| Ok(()))?;
    let runs: Vec<(String, Option<f64>)> =
        a.runs.iter().map(|r| (r.display().to_string(), SearchRun::open(r).ok().and_then(|x| x.search_seconds()))).collect();
    let r = crate::study::picks::collect(&study, &a.name, budget_json, &plan, &runs)?;
    write_atomic(&study.root.join("picks").join(format!("{}.json", a.name)), serde_json::to_string_pretty(&r)?.as_bytes())?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        print_picks(&r);
    }
    Ok(Outcome::Ok)
}

fn print_picks(r: &crate::study::picks::PicksReport) {
    for p in &r.picks {
        println!("  {:.2}%  band percentile {:>3.0}%  {}  ({})", 100.0 * p.top1, 100.0 * p.band_percentile, p.key, p.run);
    }
    let iv = r.interval.map_or("—".to_string(), |(lo, hi)| format!("[{:.2}, {:.2}]", 100.0 * lo, 100.0 * hi));
    println!(
        "{}: mean pick {:.2}% {iv} over {} search seeds; band mean {:.2}% (std {:.2}, {} architectures); mean band percentile {:.0}%; p vs band {:.3}",
        r.name,
        100.0 * r.mean,
        r.picks.len(),
        100.0 * r.band.mean,
        100.0 * r.band.std,
        r.band.archs,
        100.0 * r.band_percentile_mean,
        r.p_vs_band
    );
    if let Some(rs) = &r.random_search {
        println!(
            "random search at equal compute ({} trainings): {:.2}% expected (single outcomes {:.2}..{:.2})",
            rs.trainings,
            100.0 * rs.mean,
            100.0 * rs.lo,
            100.0 * rs.hi
        );
    }
}

#[derive(Args)]
pub struct RecipesArgs {
    /// Study directories, one per candidate recipe (repeat or separate with commas).
    #[arg(long = "dir", value_delimiter = ',', required = true)]
    dirs: Vec<PathBuf>,
    /// The plan the recipes were measured on.
    #[arg(long, default_value = "band")]
    plan: String,
    /// Reliability of the truth value (the mean of --seeds seeds) a recipe must reach.
    #[arg(long, default_value_t = 0.8)]
    target: f64,
    /// Seeds per architecture the truth will use.
    #[arg(long, default_value_t = 2)]
    seeds: usize,
    /// Where recipes.json is written (default: the first directory's parent).
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn recipes_cmd(a: RecipesArgs) -> Result<Outcome> {
    let out = a.out.clone().unwrap_or_else(|| a.dirs[0].parent().map(Path::to_path_buf).unwrap_or_default()).join("recipes.json");
    let doc = crate::study::recipes::compare(&a.dirs, &a.plan, a.target, a.seeds, &out)?;
    let (rows, decision) = (doc["recipes"].as_array().cloned().unwrap_or_default(), &doc["decision"]);
    println!(
        "{:<40} {:>9} {:>8} {:>10} {:>11} {:>7} {:>9}",
        "recipe (study directory)",
        "runs",
        "s/run",
        "seed std",
        "arch std",
        "ICC(1)",
        format!("rel. {}-seed", a.seeds)
    );
    for r in &rows {
        let rel = &r["reliability"];
        let f = |v: &serde_json::Value, scale: f64, d: usize| v.as_f64().map_or("—".to_string(), |x| format!("{:.*}", d, scale * x));
        println!(
            "{:<40} {:>9} {:>8} {:>10} {:>11} {:>7} {:>9}",
            Path::new(r["dir"].as_str().unwrap_or("")).file_name().and_then(|s| s.to_str()).unwrap_or(""),
            format!("{}/{}", r["runs"], r["planned"]),
            f(&r["seconds_per_run"], 1.0, 0),
            f(&rel["within_std"], 100.0, 2),
            f(&rel["between_std"], 100.0, 2),
            f(&rel["icc1"], 1.0, 2),
            f(&r["reliability_of_mean"], 1.0, 2)
        );
    }
    println!("decision: {} — {}", decision["chosen"], decision["why"].as_str().unwrap_or(""));
    println!("written: {}", out.display());
    Ok(Outcome::Ok)
}

pub fn pick_cmd(a: PickArgs) -> Result<Outcome> {
    let study = StudyDir::open(&a.truth)?;
    let (max_macs, max_params) = crate::validate::budget::cost_limits(a.from.budget.as_deref(), a.from.max_macs, a.from.max_params)?;
    if max_macs.is_none() && max_params.is_none() {
        bail!("give --budget, --max-macs or --max-params: the pick and the random architectures share that budget");
    }
    let Pick { arch: picked, resolved, teacher } = pick_of_run(&a.run, &study, &a.from, PathBudget { max_macs, max_params })?;
    let mut cost = PointCost::new(&resolved)?;
    let random = random_within(&resolved, &mut cost, a.random, a.seed, max_macs, max_params)?;
    let dna = SearchRun::open(&a.run)?.strategy() == Strategy::Dna;
    let name = match &a.name {
        None if dna => format!("{}-{}", run_name(&a.run, &None), a.from.metric),
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
        "settings": {"random": a.random, "seed": a.seed, "train_seed": a.train_seed, "metric": dna.then_some(&a.from.metric)}});
    let plan = study.create_or_open_plan(&format!("pick-{name}"), header, plan)?;
    println!("pick {} ({} MACs) vs {} random architectures within {budget_json}", plan[0].key, plan[0].macs, a.random);
    if !a.runner.plan_only {
        let mut trainer = ClassifierRetrainer { runner: a.runner.runner(), teacher, cheap: false };
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
