//! `dnas search mfkd`: MF-KD (`crate::strategy::mfkd`) — every candidate trained alone at a low
//! fidelity with distillation from the teacher, a Gaussian-process surrogate proposing the next
//! ones by UCB, the best promoted to the high fidelity. Run directory:
//!
//! ```text
//! mfkd.json        settings (a rerun with other settings is refused, naming the field)
//! space.json       the space searched
//! fidelity-0/      low fidelity: a study directory (study.json = its recipe; runs/<id>/record.json)
//! fidelity-1/      high fidelity: the same, with the larger recipe
//! history.json     every evaluation in order: fidelity, score, seconds, the surrogate's prediction
//! arch.json        the pick (the best at the highest fidelity)
//! search.json      the header (strategy, space, teacher hash, limits, seed, settings) and the result
//! ```
//!
//! Each evaluation is a run of the shared trainer with its own checkpoints, so a killed search
//! resumes inside the evaluation it was in, and never redoes a finished one.

use anyhow::{bail, Context, Result};

use clap::Args;

use super::oneshot::{print_result, SearchArgs};
use super::study::{ClassifierRetrainer, RunnerArgs};
use super::train::set_threads;
use super::Outcome;
use crate::data::{open, Dataset};
use crate::space::point::PointCost;
use crate::space::Resolved;
use crate::strategy::mfkd::lowfi::feature_recipe;
use crate::strategy::mfkd::{search, Evaluation, Evaluator, MfkdConfig, Scored};
use crate::strategy::oneshot::PathBudget;
use crate::strategy::{begin, finish, resolve_space, SearchHeader, SearchResult, Strategy};
use crate::study::sample::Sampled;
use crate::study::truth::{KdRecipe, PlanEntry, Recipe, Retrainer, StudyDir, StudyRecord};
use crate::util::sha256_hex;
use crate::util::{create_or_match, write_atomic};

/// Trains (or reads back) evaluations into the fidelity directories: in this process, or with
/// `procs` > 1 as that many `dnas study run --shard i/procs` processes per batch.
struct DirEvaluator<'a> {
    dirs: Vec<StudyDir>,
    trainer: ClassifierRetrainer,
    resolved: &'a Resolved,
    seed: u64,
    procs: usize,
}

impl DirEvaluator<'_> {
    fn entry(&self, s: &Sampled) -> Result<PlanEntry> {
        let arch = self.resolved.arch(&s.point, &format!("{}_mfkd", self.resolved.space.name), "")?;
        Ok(PlanEntry { key: s.key.clone(), why: s.why.clone(), params: s.params, macs: s.macs, seeds: vec![self.seed], arch })
    }

    /// The finished evaluation of `s` at `fidelity`.
    fn scored(&self, s: &Sampled, fidelity: usize, reused: bool) -> Result<Scored> {
        let r = self.dirs[fidelity].result(&s.key, self.seed)?.context("the evaluation left no record")?;
        let score = r.held_out_top1.context("the evaluation has no held-out top-1 (--held-out must be > 0)")?;
        eprintln!("[mfkd] fidelity {fidelity}: {:.2}% held-out  {}  ({} MACs)", 100.0 * score, s.key, s.macs);
        Ok(Scored { score, seconds: r.seconds, reused })
    }

    /// Trains `todo` (unfinished evaluations) with `n` child processes, each `dnas study run`
    /// on one shard of a plan written for them; their output goes to `logs/` of the directory.
    fn train_in_processes(&self, todo: &[&Sampled], fidelity: usize, n: usize) -> Result<()> {
        let dir = &self.dirs[fidelity];
        let entries = todo.iter().map(|s| self.entry(s)).collect::<Result<Vec<_>>>()?;
        let keys: Vec<&str> = todo.iter().map(|s| s.key.as_str()).collect();
        let name = format!("batch-{}", &sha256_hex(keys.join("\n").as_bytes())[..12]);
        dir.create_or_open_plan(&name, serde_json::json!({"format": "dnas.study.plan", "kind": "mfkd-batch"}), entries)?;
        let logs = dir.root.join("logs");
        std::fs::create_dir_all(&logs).with_context(|| format!("cannot create '{}'", logs.display()))?;
        let exe = std::env::current_exe().context("cannot find the dnas binary to start evaluation processes")?;
        let r = &self.trainer.runner;
        let threads = if r.threads > 0 { r.threads } else { (self.trainer.threads() / n).max(1) };
        let mut children = Vec::new();
        for i in 0..n {
            let log_path = logs.join(format!("{name}-{i}of{n}.log"));
            let log = std::fs::File::create(&log_path).with_context(|| format!("cannot create '{}'", log_path.display()))?;
            let mut c = std::process::Command::new(&exe);
            c.args(["study", "run", "--cheap", "--plan", &name, "--shard", &format!("{i}/{n}"), "--device", &r.device])
                .arg("--dir")
                .arg(&dir.root)
                .args(["--threads", &threads.to_string(), "--workers", &r.workers.to_string(), "--ckpt-every", &r.ckpt_every.to_string()])
                .stdout(log.try_clone()?)
                .stderr(log);
            if let Some(t) = &self.trainer.teacher {
                c.arg("--teacher").arg(t);
            }
            let child = c.spawn().with_context(|| format!("cannot start '{}'", exe.display()))?;
            children.push((child, log_path));
        }
        eprintln!("[mfkd] fidelity {fidelity}: {} evaluations in {n} processes (logs: {})", todo.len(), logs.display());
        let mut failed = Vec::new();
        for (mut child, log) in children {
            let status = child.wait()?;
            if !status.success() {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(3).collect();
                failed.push(format!("{} ({status}): {}", log.display(), tail.into_iter().rev().collect::<Vec<_>>().join(" | ")));
            }
        }
        if !failed.is_empty() {
            bail!("evaluation processes failed: {}", failed.join("; "));
        }
        Ok(())
    }
}

impl Evaluator for DirEvaluator<'_> {
    fn evaluate(&mut self, s: &Sampled, fidelity: usize) -> Result<Scored> {
        let entry = self.entry(s)?;
        let stats = self.dirs[fidelity].run_schedule(&[(entry, self.seed)], (0, 1), &mut self.trainer, &mut |_| Ok(()))?;
        self.scored(s, fidelity, stats.reused > 0)
    }

    fn evaluate_batch(&mut self, batch: &[&Sampled], fidelity: usize) -> Result<Vec<Scored>> {
        let mut done = Vec::new();
        for s in batch {
            done.push(self.dirs[fidelity].result(&s.key, self.seed)?.is_some());
        }
        let todo: Vec<&Sampled> = batch.iter().zip(&done).filter(|(_, d)| !**d).map(|(s, _)| *s).collect();
        let n = self.procs.min(todo.len());
        if n <= 1 {
            return batch.iter().map(|s| self.evaluate(s, fidelity)).collect();
        }
        self.train_in_processes(&todo, fidelity, n)?;
        batch.iter().zip(done).map(|(s, d)| self.scored(s, fidelity, d)).collect()
    }
}

/// `dnas search mfkd`.
#[derive(Args)]
pub struct MfkdArgs {
    #[command(flatten)]
    pub common: SearchArgs,
    /// Low-fidelity images, as a fraction of the high fidelity's (--train-subset, or the whole
    /// training split). 0.2 of the demo's 8000 images is the paper's 3% of 55000.
    #[arg(long, default_value_t = 0.2)]
    pub lowfi_fraction: f64,
    /// Epochs at the low fidelity (the high fidelity trains --epochs).
    #[arg(long, default_value_t = 3)]
    pub lowfi_epochs: usize,
    /// Distillation in every evaluation — hinton (soft targets from the teacher) or none.
    #[arg(long, default_value = "hinton")]
    pub kd: String,
    /// KD temperature and weight α (loss = (1 − α)·CE + α·T²·KL; the reference code: 32 and 1).
    #[arg(long, default_value_t = 32.0)]
    pub kd_temperature: f64,
    #[arg(long, default_value_t = 1.0)]
    pub kd_alpha: f64,
    /// Feature-level distillation at the teacher's cut points, added to the loss — at
    /// (attention transfer), nst (neuron-selectivity transfer) or none.
    #[arg(long, default_value = "none")]
    pub feature_kd: String,
    /// Its weight (default: the method's own, AT β = 1000, NST λ = 50).
    #[arg(long)]
    pub feature_kd_weight: Option<f64>,
    /// Evaluations of one batch (the random start, a UCB round, the promotions) trained at once
    /// by this many `dnas study run` processes on the run directory (1 = in this process).
    #[arg(long, default_value_t = 1)]
    pub procs: usize,
    /// Random architectures evaluated first, low-fidelity evaluations in all, proposals per
    /// surrogate round, promotions to the high fidelity, UCB β, candidate pool size.
    #[arg(long, default_value_t = 5)]
    pub init: usize,
    #[arg(long, default_value_t = 10)]
    pub evals: usize,
    #[arg(long, default_value_t = 2)]
    pub per_round: usize,
    #[arg(long, default_value_t = 2)]
    pub promote: usize,
    #[arg(long, default_value_t = 0.5)]
    pub beta: f64,
    #[arg(long, default_value_t = 500)]
    pub pool: usize,
}

pub fn search_cmd(m: MfkdArgs) -> Result<Outcome> {
    let a = &m.common;
    set_threads(a.train.threads);
    let teacher = a.teacher.as_deref();
    let resolved = resolve_space(&a.space, teacher)?;
    let limits = a.limits()?;
    let (max_macs, max_params) = (limits.max_macs, limits.max_params);
    if a.data.held_out == 0 {
        bail!("MF-KD scores evaluations on the held-out split: --held-out must be > 0");
    }
    if !(m.lowfi_fraction > 0.0 && m.lowfi_fraction <= 1.0) {
        bail!("--lowfi-fraction {} must be in (0, 1]", m.lowfi_fraction);
    }
    let kd = match m.kd.as_str() {
        "hinton" => Some(KdRecipe { temperature: m.kd_temperature, alpha: m.kd_alpha }),
        "none" => None,
        other => bail!("--kd '{other}' is not known (hinton, none)"),
    };
    let feature_kd = feature_recipe(&m.feature_kd, m.feature_kd_weight, &resolved)?;
    let teacher_sha = match teacher {
        Some(t) => sha256_hex(&std::fs::read(t).with_context(|| format!("cannot read teacher '{}'", t.display()))?),
        None if kd.is_some() || feature_kd.is_some() => {
            bail!("MF-KD distils from a teacher: give --teacher (or --kd none --feature-kd none for plain cross-entropy)")
        }
        None => String::new(),
    };
    let splits = open(&a.data.spec(a.train.seed))?;
    if splits.train.shape() != resolved.space.input {
        bail!(
            "space '{}' expects input {:?} but --data {} gives {:?}",
            a.space.display(),
            resolved.space.input,
            a.data.data,
            splits.train.shape()
        );
    }
    let high = a.train.train_subset.unwrap_or(splits.train.len()).min(splits.train.len());
    let low = ((high as f64 * m.lowfi_fraction).round() as usize).max(a.train.batch);
    let recipe = |subset: usize, epochs: usize| Recipe {
        data: a.data.data.clone(),
        held_out: a.data.held_out,
        data_seed: a.train.seed,
        train_subset: Some(subset),
        epochs,
        batch: a.train.batch,
        optimizer: a.train.optimizer.clone(),
        lr: a.train.lr,
        weight_decay: a.train.weight_decay,
        schedule: a.train.schedule.clone(),
        warmup_epochs: a.train.warmup_epochs,
        label_smoothing: a.train.label_smoothing,
        kd: kd.clone(),
        feature_kd: feature_kd.clone(),
    };
    let recipes = [recipe(low, m.lowfi_epochs), recipe(high, a.train.epochs)];
    let cfg = MfkdConfig {
        init: m.init,
        evals: m.evals,
        per_round: m.per_round,
        promote: m.promote,
        beta: m.beta,
        pool: m.pool,
        noise: 0.1,
        seed: a.train.seed,
    };
    let space_id = format!("{}@{}", resolved.space.name, resolved.space.version);
    let record = serde_json::json!({"format": "dnas.mfkd", "version": 1, "strategy": "mfkd", "space": space_id,
        "teacher_sha256": teacher_sha, "budget": {"max_macs": max_macs, "max_params": max_params}, "search": cfg,
        "fidelities": recipes, "seed": a.train.seed});
    std::fs::create_dir_all(&a.run).with_context(|| format!("cannot create '{}'", a.run.display()))?;
    create_or_match(&a.run.join("mfkd.json"), &record, "MF-KD run")?;
    begin(&a.run, &SearchHeader::new(Strategy::Mfkd, space_id.clone(), teacher_sha.clone(), limits, a.train.seed, record.clone()))?;
    let space_text = std::fs::read(&a.space).with_context(|| format!("cannot read '{}'", a.space.display()))?;
    write_atomic(&a.run.join("space.json"), &space_text)?;
    let dirs = recipes
        .iter()
        .enumerate()
        .map(|(f, r)| {
            let rec = StudyRecord {
                format: "dnas.study".into(),
                version: 1,
                space: space_id.clone(),
                teacher_sha256: teacher_sha.clone(),
                recipe: r.clone(),
            };
            StudyDir::create(&a.run.join(format!("fidelity-{f}")), rec)
        })
        .collect::<Result<Vec<_>>>()?;
    let runner = RunnerArgs {
        device: a.train.device.clone(),
        threads: a.train.threads,
        workers: a.data.workers,
        shard: (0, 1),
        ckpt_every: a.train.ckpt_every,
        plan_only: false,
    };
    let mut ev = DirEvaluator {
        dirs,
        trainer: ClassifierRetrainer { runner, teacher: a.teacher.clone(), cheap: true },
        resolved: &resolved,
        seed: a.train.seed,
        procs: m.procs.max(1),
    };
    let t0 = std::time::Instant::now();
    let history_path = a.run.join("history.json");
    let mut cost = PointCost::new(&resolved)?;
    let result =
        search(&resolved, &mut cost, &cfg, PathBudget { max_macs, max_params }, recipes.len(), &mut ev, &mut |h: &[Evaluation]| {
            write_atomic(&history_path, serde_json::to_string_pretty(&serde_json::json!({"evaluations": h}))?.as_bytes())
        })?;
    let wall = t0.elapsed().as_secs_f64();
    let mut arch = resolved.arch(&result.pick.point, &format!("{}_mfkd", resolved.space.name), &teacher_sha)?;
    arch.predicted = crate::space::arch::Predicted {
        score: result.pick_score,
        macs: result.pick.macs,
        params: result.pick.params,
        latency_ms: None,
        score_kind: format!("mfkd: held-out top-1 trained alone at fidelity {}", result.pick_fidelity),
        higher_is_better: Some(true),
    };
    arch.budget = serde_json::json!({"max_macs": max_macs, "max_params": max_params, "strategy": "mfkd"});
    write_atomic(&a.run.join("arch.json"), serde_json::to_string_pretty(&arch)?.as_bytes())?;
    let eval_seconds: f64 = result.history.iter().map(|e| e.seconds).sum();
    let per_fidelity: Vec<usize> = (0..recipes.len()).map(|f| result.history.iter().filter(|e| e.fidelity == f).count()).collect();
    let detail = serde_json::json!({"fidelity": result.pick_fidelity, "evaluations_per_fidelity": per_fidelity,
        "reused": result.history.iter().filter(|e| e.reused).count(), "lowfi_images": low, "highfi_images": high, "invocation_seconds": wall});
    // The evaluations' training is the search's compute; the surrogate's own time is not measured apart.
    let rec = finish(&a.run, SearchResult::of_arch(&arch, "arch.json", eval_seconds, 0.0, detail))?;
    print_result(&rec, a)
}
