//! `dnas search --strategy mfkd`: MF-KD (`crate::mfkd`) — every candidate trained alone at a low
//! fidelity with distillation from the teacher, a Gaussian-process surrogate proposing the next
//! ones by UCB, the best promoted to the high fidelity. Run directory:
//!
//! ```text
//! mfkd.json        settings (a rerun with other settings is refused, naming the field)
//! space.json       the space searched
//! fidelity-0/      low fidelity: a study directory (study.json = its recipe; runs/<id>/record.json)
//! fidelity-1/      high fidelity: the same, with the larger recipe
//! history.json     every evaluation in order: fidelity, score, seconds, the surrogate's prediction
//! arch.json        the pick (the best at the highest fidelity); search.json the summary
//! ```
//!
//! Each evaluation is a run of the shared trainer with its own checkpoints, so a killed search
//! resumes inside the evaluation it was in, and never redoes a finished one.

use anyhow::{bail, Context, Result};

use super::oneshot::{check_input, cost_limits, resolve_space, OneShotArgs};
use super::study::{ClassifierRetrainer, RunnerArgs};
use super::train::set_threads;
use super::Outcome;
use crate::data::{open, Dataset};
use crate::mfkd::lowfi::feature_recipe;
use crate::mfkd::{search, Evaluation, Evaluator, MfkdConfig, Scored};
use crate::oneshot::PathBudget;
use crate::search::run::sha256_hex;
use crate::space::point::PointCost;
use crate::space::Resolved;
use crate::study::sample::Sampled;
use crate::study::truth::{KdRecipe, PlanEntry, Recipe, Retrainer, StudyDir, StudyRecord};
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

pub fn search_cmd(a: OneShotArgs) -> Result<Outcome> {
    set_threads(a.train.threads);
    let teacher = a.teacher.as_deref();
    let resolved = resolve_space(&a.space, teacher)?;
    let (max_macs, max_params) = cost_limits(a.budget.as_deref(), a.max_macs, a.max_params)?;
    if a.data.held_out == 0 {
        bail!("MF-KD scores evaluations on the held-out split: --held-out must be > 0");
    }
    if !(a.lowfi_fraction > 0.0 && a.lowfi_fraction <= 1.0) {
        bail!("--lowfi-fraction {} must be in (0, 1]", a.lowfi_fraction);
    }
    let kd = match a.kd.as_str() {
        "hinton" => Some(KdRecipe { temperature: a.kd_temperature, alpha: a.kd_alpha }),
        "none" => None,
        other => bail!("--kd '{other}' is not known (hinton, none)"),
    };
    let feature_kd = feature_recipe(&a.feature_kd, a.feature_kd_weight, &resolved)?;
    let teacher_sha = match teacher {
        Some(t) => sha256_hex(&std::fs::read(t).with_context(|| format!("cannot read teacher '{}'", t.display()))?),
        None if kd.is_some() || feature_kd.is_some() => {
            bail!("MF-KD distils from a teacher: give --teacher (or --kd none --feature-kd none for plain cross-entropy)")
        }
        None => String::new(),
    };
    let splits = open(&a.data.spec(a.train.seed))?;
    check_input(&a, &resolved, splits.train.shape())?;
    let high = a.train.train_subset.unwrap_or(splits.train.len()).min(splits.train.len());
    let low = ((high as f64 * a.lowfi_fraction).round() as usize).max(a.train.batch);
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
    let recipes = [recipe(low, a.lowfi_epochs), recipe(high, a.train.epochs)];
    let cfg = MfkdConfig {
        init: a.init,
        evals: a.evals,
        per_round: a.per_round,
        promote: a.promote,
        beta: a.beta,
        pool: a.pool,
        noise: 0.1,
        seed: a.train.seed,
    };
    let space_id = format!("{}@{}", resolved.space.name, resolved.space.version);
    let record = serde_json::json!({"format": "dnas.mfkd", "version": 1, "strategy": "mfkd", "space": space_id,
        "teacher_sha256": teacher_sha, "budget": {"max_macs": max_macs, "max_params": max_params}, "search": cfg,
        "fidelities": recipes, "seed": a.train.seed});
    std::fs::create_dir_all(&a.run).with_context(|| format!("cannot create '{}'", a.run.display()))?;
    create_or_match(&a.run.join("mfkd.json"), &record, "MF-KD run")?;
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
        procs: a.procs.max(1),
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
    let out = serde_json::json!({"strategy": "mfkd", "arch": a.run.join("arch.json"), "key": result.pick.key, "macs": result.pick.macs,
        "params": result.pick.params, "train_seconds": eval_seconds, "search_seconds": wall,
        "detail": {"held_out_top1": result.pick_score, "fidelity": result.pick_fidelity, "evaluations_per_fidelity": per_fidelity,
            "reused": result.history.iter().filter(|e| e.reused).count(), "lowfi_images": low, "highfi_images": high}});
    write_atomic(&a.run.join("search.json"), serde_json::to_string_pretty(&out)?.as_bytes())?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!("strategy          mfkd ({} evaluations: {per_fidelity:?} per fidelity)", result.history.len());
        println!("pick              {}", result.pick.key);
        println!("held-out top-1    {:.2}% at fidelity {}", 100.0 * result.pick_score, result.pick_fidelity);
        println!("MACs / params     {} / {}", result.pick.macs, result.pick.params);
        println!("evaluations       {eval_seconds:.0} s of training ({wall:.0} s this invocation)");
        println!("arch              {}", a.run.join("arch.json").display());
    }
    Ok(Outcome::Ok)
}
