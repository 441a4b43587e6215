//! `dnas search dna`, and its stages `dnas train`, `dnas evaluate`, `dnas select`: the DNA search
//! over a run directory.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;

use super::train::set_threads;
use super::Outcome;
use crate::data::DataSpec;
use crate::exec::parse_device;
use crate::space::limits::PathBudget;
use crate::strategy::dna::choose::{choose, LatencyLut};
use crate::strategy::dna::evaluate::{evaluate, EvalOptions};
use crate::strategy::dna::metric::DnaMetric;
use crate::strategy::dna::record::record_pick;
use crate::strategy::dna::run::{RunDir, SupernetTrain};
use crate::strategy::dna::select::Budget;
use crate::strategy::dna::train::{train_blocks, BlockOutcome, TrainOptions};
use crate::util::{parse_count, write_atomic};

/// `dnas train`: the block supernets of a DNA run, all unfinished blocks or some.
#[derive(Args)]
pub struct SearchTrainArgs {
    #[command(flatten)]
    r: DnaRunArgs,
    /// Create (or check) the run directory and exit without training: what a scheduler does once
    /// before the per-block jobs start (`dnas submit slurm`).
    #[arg(long)]
    create_only: bool,
    /// Train only these blocks (repeatable); default: every unfinished block, together.
    #[arg(long)]
    block: Vec<usize>,
}

/// A DNA run directory and its supernet training settings (given when the run is created; a
/// later command that gives other ones is refused).
#[derive(Args)]
pub struct DnaRunArgs {
    /// The run directory (created on first use with --teacher and --space).
    #[arg(long)]
    run: PathBuf,
    /// Teacher ONNX (creating a run).
    #[arg(long)]
    teacher: Option<PathBuf>,
    /// Search space JSON (creating a run), e.g. models/spaces/fmnist_small.json.
    #[arg(long)]
    space: Option<PathBuf>,
    /// Data (creating a run): fmnist, idx:DIR, cifar10:DIR, cifar100:DIR, folder:DIR.
    #[arg(long)]
    data: Option<String>,
    /// Held-out samples carved from train (creating a run; default 5000).
    #[arg(long)]
    held_out: Option<usize>,
    #[arg(long)]
    size: Option<u32>,
    #[arg(long)]
    channels: Option<usize>,
    /// Epochs per block (default 5; DNA trains 20 on ImageNet).
    #[arg(long)]
    epochs: Option<usize>,
    /// Batch size (default 128).
    #[arg(long)]
    batch: Option<usize>,
    /// Train on the first N training samples.
    #[arg(long)]
    train_subset: Option<usize>,
    /// Stop after N steps (smoke runs).
    #[arg(long)]
    max_steps: Option<usize>,
    /// Seed of data order, initial weights and path sampling (default 0).
    #[arg(long)]
    seed: Option<u64>,
    /// Turn off crop+flip augmentation.
    #[arg(long)]
    no_augment: bool,
    /// Held-out batches of 256 for the loss printed after each epoch (default 2).
    #[arg(long)]
    probe_batches: Option<usize>,
    #[arg(long, default_value = "cpu", value_parser = crate::exec::device_arg)]
    device: String,
    /// libtorch threads (0 = all cores).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Data decoding threads.
    #[arg(long, default_value_t = 2)]
    workers: usize,
    #[arg(long)]
    json: bool,
}

impl DnaRunArgs {
    fn settings(&self) -> (DataSpec, u64, SupernetTrain) {
        let seed = self.seed.unwrap_or(0);
        let data = DataSpec {
            source: self.data.clone().unwrap_or_else(|| "fmnist".into()),
            held_out: self.held_out.unwrap_or(5000),
            seed,
            size: self.size,
            channels: self.channels,
        };
        let train = SupernetTrain {
            epochs: self.epochs.unwrap_or(5),
            batch: self.batch.unwrap_or(128),
            train_subset: self.train_subset,
            max_steps: self.max_steps,
            weight_decay: 1e-4,
            gamma: 0.9,
            augment: !self.no_augment,
            probe_batches: self.probe_batches.unwrap_or(2),
            ckpt_every: 200,
        };
        (data, seed, train)
    }

    /// Settings given on this command line that differ from the run's.
    fn conflicts(&self, run: &RunDir) -> Vec<String> {
        let r = &run.record;
        let mut out = Vec::new();
        let mut diff = |flag: &str, given: Option<String>, have: String| {
            if let Some(g) = given {
                if g != have {
                    out.push(format!("--{flag} {g} (the run has {have})"));
                }
            }
        };
        diff("data", self.data.clone(), r.data.source.clone());
        diff("held-out", self.held_out.map(|v| v.to_string()), r.data.held_out.to_string());
        diff("epochs", self.epochs.map(|v| v.to_string()), r.train.epochs.to_string());
        diff("batch", self.batch.map(|v| v.to_string()), r.train.batch.to_string());
        diff("train-subset", self.train_subset.map(|v| v.to_string()), r.train.train_subset.map_or("none".into(), |v| v.to_string()));
        diff("max-steps", self.max_steps.map(|v| v.to_string()), r.train.max_steps.map_or("none".into(), |v| v.to_string()));
        diff("seed", self.seed.map(|v| v.to_string()), r.seed.to_string());
        diff("probe-batches", self.probe_batches.map(|v| v.to_string()), r.train.probe_batches.to_string());
        if self.no_augment && r.train.augment {
            out.push("--no-augment (the run augments)".into());
        }
        out
    }
}

impl DnaRunArgs {
    /// Creates the run (with --teacher and --space) or opens it, refusing other settings.
    fn open_or_create(&self) -> Result<RunDir> {
        match (&self.teacher, &self.space) {
            (Some(t), Some(s)) => {
                let (data, seed, train) = self.settings();
                RunDir::create(&self.run, t, s, data, seed, train)
            }
            (None, None) => {
                let run = RunDir::open(&self.run)?;
                let c = self.conflicts(&run);
                if !c.is_empty() {
                    bail!("'{}' was created with other settings: {}; use another --run directory", self.run.display(), c.join(", "));
                }
                Ok(run)
            }
            _ => bail!("creating a run needs both --teacher and --space"),
        }
    }

    /// Trains `blocks` (all unfinished when empty).
    fn train(&self, run: &RunDir, blocks: &[usize]) -> Result<Vec<BlockOutcome>> {
        set_threads(self.threads);
        let device = parse_device(&self.device)?;
        let blocks = if blocks.is_empty() { None } else { Some(blocks.to_vec()) };
        train_blocks(run, &TrainOptions { blocks, device, workers: self.workers, quiet: self.json })
    }
}

fn print_blocks(outcomes: &[BlockOutcome]) {
    println!("{:<6} {:<14} {:>14} {:>14} {:>8} {:>9}", "block", "name", "held-out MSE", "after", "steps", "seconds");
    for o in outcomes {
        let (first, last) = (o.held_out_mse.first().copied().unwrap_or(f64::NAN), o.held_out_mse.last().copied().unwrap_or(f64::NAN));
        let skipped = if o.skipped { "  (already trained)" } else { "" };
        println!("{:<6} {:<14} {:>14.5} {:>14.5} {:>8} {:>9.0}{skipped}", o.block, o.name, first, last, o.steps, o.seconds);
    }
}

pub fn train(a: SearchTrainArgs) -> Result<Outcome> {
    let run = a.r.open_or_create()?;
    if a.create_only {
        eprintln!("run '{}' ready ({} blocks)", a.r.run.display(), run.space()?.blocks.len());
        return Ok(Outcome::Ok);
    }
    let outcomes = a.r.train(&run, &a.block)?;
    if a.r.json {
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({"run": a.r.run, "blocks": outcomes}))?);
    } else {
        print_blocks(&outcomes);
    }
    Ok(Outcome::Ok)
}

/// `dnas search dna`: the three DNA stages in one command — the block supernets trained, every
/// candidate ranked, the architecture selected exactly under the limits (what `dnas train`,
/// `dnas evaluate` and `dnas select` do one at a time, for a cluster or by hand).
#[derive(Args)]
pub struct DnaSearchArgs {
    #[command(flatten)]
    r: DnaRunArgs,
    /// Ranking: held-out batches (of --rank-batch) every candidate is scored on, and the
    /// training images of the one BatchNorm recalibration batch (dnas evaluate's --batches,
    /// --batch, --recal-batch).
    #[arg(long, default_value_t = 8)]
    rank_batches: usize,
    #[arg(long, default_value_t = 256)]
    rank_batch: usize,
    #[arg(long, default_value_t = 256)]
    recal_batch: usize,
    /// Budget file (its max_macs / max_params) the architecture is selected under.
    #[arg(long)]
    budget: Option<PathBuf>,
    #[arg(long, value_parser = parse_count)]
    max_macs: Option<u64>,
    #[arg(long, value_parser = parse_count)]
    max_params: Option<u64>,
    /// Block loss added up (score, cell-z, mse, mse-var; see dnas select).
    #[arg(long, default_value = "score")]
    metric: String,
}

pub fn search_dna(a: DnaSearchArgs) -> Result<Outcome> {
    let (max_macs, max_params) = crate::validate::budget::cost_limits(a.budget.as_deref(), a.max_macs, a.max_params)?;
    let run = a.r.open_or_create()?;
    let outcomes = a.r.train(&run, &[])?;
    if !a.r.json {
        print_blocks(&outcomes);
    }
    let ranking = RankingArgs { batches: a.rank_batches, batch: a.rank_batch, recal_batch: a.recal_batch };
    let opts = ranking.options(None, &a.r.device, a.r.workers, a.r.json)?;
    evaluate(&run, &opts)?;
    let budget = Budget { max_macs, max_params, ..Default::default() };
    let metric = DnaMetric::parse(&a.metric)?;
    let t0 = std::time::Instant::now();
    let choice = choose(&run, budget, None, 1, metric)?;
    let arch = choice.archs.first().context("no architecture fits the budget")?;
    write_atomic(&run.root.join("arch.json"), serde_json::to_string_pretty(arch)?.as_bytes())?;
    let rec = record_pick(&run, arch, PathBudget { max_macs, max_params }, metric, t0.elapsed().as_secs_f64())?;
    let r = rec.result.as_ref().context("internal: no result recorded")?;
    if a.r.json {
        println!("{}", serde_json::to_string_pretty(&rec)?);
    } else {
        println!("dna pick   {}", r.key);
        println!("MACs {}, params {}; predicted {:.4} ({})", r.macs, r.params, r.score, r.score_kind);
        println!("training {:.0} s; ranking and selection {:.1} s", r.train_seconds, r.search_seconds);
        println!("wrote {}", run.root.join("arch.json").display());
    }
    Ok(Outcome::Ok)
}

/// How DNA ranks every candidate of a block on held-out data.
#[derive(Args)]
pub struct RankingArgs {
    /// Held-out batches every candidate is scored on.
    #[arg(long, default_value_t = 8)]
    batches: usize,
    #[arg(long, default_value_t = 256)]
    batch: usize,
    /// Training images for BatchNorm recalibration (one fixed batch).
    #[arg(long, default_value_t = 256)]
    recal_batch: usize,
}

impl RankingArgs {
    fn options(&self, blocks: Option<Vec<usize>>, device: &str, workers: usize, quiet: bool) -> Result<EvalOptions> {
        Ok(EvalOptions {
            blocks,
            batches: self.batches,
            batch: self.batch,
            recal_batch: self.recal_batch,
            device: parse_device(device)?,
            workers,
            quiet,
        })
    }
}

#[derive(Args)]
pub struct EvaluateArgs {
    #[arg(long)]
    run: PathBuf,
    /// Evaluate only these blocks (repeatable).
    #[arg(long)]
    block: Vec<usize>,
    #[command(flatten)]
    ranking: RankingArgs,
    #[arg(long, default_value = "cpu", value_parser = crate::exec::device_arg)]
    device: String,
    #[arg(long, default_value_t = 0)]
    threads: usize,
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Candidates listed per block.
    #[arg(long, default_value_t = 3)]
    show: usize,
    #[arg(long)]
    json: bool,
}

pub fn evaluate_cmd(a: EvaluateArgs) -> Result<Outcome> {
    set_threads(a.threads);
    let run = RunDir::open(&a.run)?;
    let opts = a.ranking.options((!a.block.is_empty()).then(|| a.block.clone()), &a.device, a.workers, a.json)?;
    let rankings = evaluate(&run, &opts)?;
    if a.json {
        let summary: Vec<serde_json::Value> = rankings
            .iter()
            .map(|r| {
                serde_json::json!({"block": r.block, "name": r.name, "candidates": r.candidates.len(), "layer_evals": r.layer_evals,
                "naive_layer_evals": r.naive_layer_evals, "best": r.candidates.first(), "file": run.eval_path(r.block)})
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&summary)?);
        return Ok(Outcome::Ok);
    }
    println!("{:<6} {:<12} {:>10} {:>12} {:>12} {:>7} {:>8}", "block", "name", "candidates", "layer evals", "naive", "ratio", "images");
    for r in &rankings {
        println!(
            "{:<6} {:<12} {:>10} {:>12} {:>12} {:>7.3} {:>8}",
            r.block,
            r.name,
            r.candidates.len(),
            r.layer_evals,
            r.naive_layer_evals,
            r.layer_evals as f64 / r.naive_layer_evals.max(1) as f64,
            r.images
        );
    }
    for r in &rankings {
        println!("\nblock {} ('{}'): best of {} by {}", r.block, r.name, r.candidates.len(), r.metric);
        println!("  {:<40} {:>8} {:>10} {:>10} {:>10}", "candidate", "score", "MSE", "params", "MACs");
        let n = r.candidates.len();
        let shown: Vec<usize> = (0..a.show.min(n)).chain(n.saturating_sub(1).max(a.show.min(n))..n).collect();
        for (k, &i) in shown.iter().enumerate() {
            if k > 0 && i > shown[k - 1] + 1 {
                println!("  …");
            }
            let c = &r.candidates[i];
            println!("  {:<40} {:>8.4} {:>10.5} {:>10} {:>10}", c.id, c.score, c.mse, c.params, c.macs);
        }
    }
    println!("\nrankings written to {}", run.root.join("eval").display());
    Ok(Outcome::Ok)
}

#[derive(Args)]
pub struct SelectArgs {
    #[arg(long)]
    run: PathBuf,
    /// MAC budget of the whole network at batch 1 (e.g. 7000000, 7M, 0.4G).
    #[arg(long, value_parser = parse_count)]
    max_macs: Option<u64>,
    /// Parameter budget (e.g. 500k, 4.5M).
    #[arg(long, value_parser = parse_count)]
    max_params: Option<u64>,
    /// Latency table (dnas latency-lut) for --max-ms.
    #[arg(long)]
    latency_lut: Option<PathBuf>,
    #[arg(long)]
    max_ms: Option<f64>,
    /// Also write the next best architectures (arch-2.json, …).
    #[arg(long, default_value_t = 1)]
    top: usize,
    /// Block loss added up: score (DNA's, as the paper: mean|Y−Ŷ|/std; the default until
    /// another metric wins on the held-out half of the band truth, docs/study.md), cell-z (score
    /// standardised within each cell), mse or mse-var.
    #[arg(long, default_value = "score")]
    metric: String,
    /// Output architecture JSON (default RUN/arch.json).
    #[arg(short, long)]
    output: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

pub fn select_cmd(a: SelectArgs) -> Result<Outcome> {
    let run = RunDir::open(&a.run)?;
    let lut = a.latency_lut.as_deref().map(LatencyLut::load).transpose()?;
    if a.top == 0 {
        bail!("--top must be ≥ 1");
    }
    let budget = Budget { max_macs: a.max_macs, max_params: a.max_params, max_ms: a.max_ms, ..Default::default() };
    let t0 = std::time::Instant::now();
    let choice = choose(&run, budget, lut.as_ref(), a.top, DnaMetric::parse(&a.metric)?)?;
    let secs = t0.elapsed().as_secs_f64();
    let base = a.output.clone().unwrap_or_else(|| run.root.join("arch.json"));
    let mut files = Vec::new();
    for (k, arch) in choice.archs.iter().enumerate() {
        let path = if k == 0 { base.clone() } else { base.with_file_name(format!("arch-{}.json", k + 1)) };
        write_atomic(&path, serde_json::to_string_pretty(arch)?.as_bytes())?;
        files.push(path);
    }
    // The run's own pick (its arch.json, selected on MACs and params): search.json says so.
    let own = run.root.join("arch.json");
    let is_own = std::fs::canonicalize(&base).ok().zip(std::fs::canonicalize(&own).ok()).is_some_and(|(x, y)| x == y);
    if let (true, None, Some(first)) = (is_own, a.max_ms, choice.archs.first()) {
        let limits = PathBudget { max_macs: a.max_macs, max_params: a.max_params };
        record_pick(&run, first, limits, DnaMetric::parse(&a.metric)?, secs)?;
    }
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({"files": files, "archs": choice.archs, "search_nodes": choice.stats.nodes,
                "seconds": secs, "candidates_per_block": choice.candidates_per_block}))?
        );
        return Ok(Outcome::Ok);
    }
    let total: f64 = choice.candidates_per_block.iter().map(|&c| c as f64).product();
    println!(
        "{} blocks, {:?} candidates each ({:.3e} architectures); exact search: {} nodes, {:.3} s",
        choice.candidates_per_block.len(),
        choice.candidates_per_block,
        total,
        choice.stats.nodes,
        secs
    );
    for (k, (arch, path)) in choice.archs.iter().zip(&files).enumerate() {
        let p = &arch.predicted;
        let lat = p.latency_ms.map_or(String::new(), |l| format!(", {l:.3} ms"));
        println!("\n#{}  score {:.4}  MACs {}  params {}{lat}  → {}", k + 1, p.score, p.macs, p.params, path.display());
        for b in &arch.blocks {
            let ops: Vec<String> = b.layers.iter().map(|o| o.to_string()).collect();
            println!("  {:<12} {:>4} ch  s{}  {:<48} score {:.4}", b.name, b.out, b.stride, ops.join(" "), b.score);
        }
    }
    Ok(Outcome::Ok)
}
