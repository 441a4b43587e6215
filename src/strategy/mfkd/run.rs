//! An MF-KD search end to end (`dnas search mfkd`). Run directory:
//!
//! ```text
//! search.json      the header (strategy, space, teacher hash, limits, seed, settings) and the result
//! mfkd.json        settings (a rerun with other settings is refused, naming the field)
//! space.json       the space searched
//! fidelity-0/      low fidelity: a study directory (study.json = its recipe; runs/<id>/record.json)
//! fidelity-1/      high fidelity: the same, with the larger recipe
//! history.json     every evaluation in order: fidelity, score, seconds, the surrogate's prediction
//! arch.json        the pick (the best at the highest fidelity)
//! ```
//!
//! Each evaluation is a run of the shared trainer with its own checkpoints, so a killed search
//! resumes inside the evaluation it was in, and never redoes a finished one.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use serde_json::json;

use super::lowfi::feature_recipe;
use super::{search, Evaluation, Evaluator, MfkdConfig, Scored};
use crate::data::{open, Dataset};
use crate::space::limits::PathBudget;
use crate::space::point::PointCost;
use crate::space::Resolved;
use crate::strategy::{begin, finish, resolve_space, space_id, teacher_sha256, SearchHeader, SearchRecord, SearchResult, Strategy};
use crate::study::retrain::{ClassifierRetrainer, Runner};
use crate::study::sample::Sampled;
use crate::study::truth::{PlanEntry, Recipe, Retrainer, StudyDir, StudyRecord};
use crate::util::{create_or_match, sha256_hex, write_atomic};

/// Everything an MF-KD search needs.
pub struct MfkdSearch {
    pub run: PathBuf,
    pub space: PathBuf,
    /// The teacher the evaluations distil from (and the space's cuts resolve on).
    pub teacher: Option<PathBuf>,
    pub limits: PathBudget,
    /// The high fidelity's recipe (`train_subset` none: the whole training split; its `kd` the
    /// Hinton distillation of every evaluation); the low fidelity trains `lowfi_fraction` of
    /// its images for `lowfi_epochs`.
    pub high: Recipe,
    pub lowfi_fraction: f64,
    pub lowfi_epochs: usize,
    /// Feature distillation at the teacher's cuts (none, at, nst) and its weight.
    pub feature_kd: String,
    pub feature_kd_weight: Option<f64>,
    pub search: MfkdConfig,
    pub runner: Runner,
    /// Evaluations of a batch trained at once in this many processes.
    pub procs: usize,
}

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

/// Runs (or resumes) the search; returns the run's `search.json` with its result.
pub fn run_mfkd(s: &MfkdSearch) -> Result<SearchRecord> {
    let resolved = resolve_space(&s.space, s.teacher.as_deref())?;
    let recipes = fidelities(s, &resolved)?;
    let teacher_sha = teacher_sha256(s.teacher.as_deref())?;
    let distils = recipes[0].kd.is_some() || recipes[0].feature_kd.is_some();
    if distils && s.teacher.is_none() {
        bail!("MF-KD distils from a teacher: give --teacher (or --kd none --feature-kd none for plain cross-entropy)");
    }
    let space = space_id(&resolved);
    let (max_macs, max_params) = (s.limits.max_macs, s.limits.max_params);
    let record = json!({"format": "dnas.mfkd", "version": 1, "strategy": "mfkd", "space": space,
        "teacher_sha256": teacher_sha, "budget": {"max_macs": max_macs, "max_params": max_params}, "search": s.search,
        "fidelities": recipes, "seed": s.search.seed});
    std::fs::create_dir_all(&s.run).with_context(|| format!("cannot create '{}'", s.run.display()))?;
    create_or_match(&s.run.join("mfkd.json"), &record, "MF-KD run")?;
    begin(&s.run, &SearchHeader::new(Strategy::Mfkd, space.clone(), teacher_sha.clone(), s.limits, s.search.seed, record))?;
    let space_text = std::fs::read(&s.space).with_context(|| format!("cannot read '{}'", s.space.display()))?;
    write_atomic(&s.run.join("space.json"), &space_text)?;
    let dirs = recipes
        .iter()
        .enumerate()
        .map(|(f, r)| {
            let rec = StudyRecord {
                format: "dnas.study".into(),
                version: 1,
                space: space.clone(),
                teacher_sha256: teacher_sha.clone(),
                recipe: r.clone(),
            };
            StudyDir::create(&s.run.join(format!("fidelity-{f}")), rec)
        })
        .collect::<Result<Vec<_>>>()?;
    let mut ev = DirEvaluator {
        dirs,
        trainer: ClassifierRetrainer { runner: s.runner.clone(), teacher: s.teacher.clone(), cheap: true },
        resolved: &resolved,
        seed: s.search.seed,
        procs: s.procs.max(1),
    };
    let t0 = std::time::Instant::now();
    let history_path = s.run.join("history.json");
    let mut cost = PointCost::new(&resolved)?;
    let result = search(&resolved, &mut cost, &s.search, s.limits, recipes.len(), &mut ev, &mut |h: &[Evaluation]| {
        write_atomic(&history_path, serde_json::to_string_pretty(&json!({"evaluations": h}))?.as_bytes())
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
    arch.budget = json!({"max_macs": max_macs, "max_params": max_params, "strategy": "mfkd"});
    write_atomic(&s.run.join("arch.json"), serde_json::to_string_pretty(&arch)?.as_bytes())?;
    let eval_seconds: f64 = result.history.iter().map(|e| e.seconds).sum();
    let per_fidelity: Vec<usize> = (0..recipes.len()).map(|f| result.history.iter().filter(|e| e.fidelity == f).count()).collect();
    let detail = json!({"fidelity": result.pick_fidelity, "evaluations_per_fidelity": per_fidelity,
        "reused": result.history.iter().filter(|e| e.reused).count(), "lowfi_images": recipes[0].train_subset,
        "highfi_images": recipes[1].train_subset, "invocation_seconds": wall});
    // The evaluations' training is the search's compute; the surrogate's own time is not measured apart.
    finish(&s.run, SearchResult::of_arch(&arch, "arch.json", eval_seconds, 0.0, detail))
}

/// The low and the high fidelity's recipes: the high one's images (its subset, or the whole
/// training split) and epochs; the low one's fraction of them (at least a batch) and its epochs;
/// both with the run's distillation.
fn fidelities(s: &MfkdSearch, resolved: &Resolved) -> Result<[Recipe; 2]> {
    if s.high.held_out == 0 {
        bail!("MF-KD scores evaluations on the held-out split: --held-out must be > 0");
    }
    if !(s.lowfi_fraction > 0.0 && s.lowfi_fraction <= 1.0) {
        bail!("--lowfi-fraction {} must be in (0, 1]", s.lowfi_fraction);
    }
    let spec = crate::data::DataSpec {
        source: s.high.data.clone(),
        held_out: s.high.held_out,
        seed: s.high.data_seed,
        size: None,
        channels: None,
    };
    let splits = open(&spec)?;
    if splits.train.shape() != resolved.space.input {
        bail!(
            "space '{}' expects input {:?} but --data {} gives {:?}",
            s.space.display(),
            resolved.space.input,
            s.high.data,
            splits.train.shape()
        );
    }
    let n = splits.train.len();
    let high = s.high.train_subset.unwrap_or(n).min(n);
    let low = ((high as f64 * s.lowfi_fraction).round() as usize).max(s.high.batch);
    let feature_kd = feature_recipe(&s.feature_kd, s.feature_kd_weight, resolved)?;
    let at = |subset: usize, epochs: usize| Recipe { train_subset: Some(subset), epochs, feature_kd: feature_kd.clone(), ..s.high.clone() };
    Ok([at(low, s.lowfi_epochs), at(high, s.high.epochs)])
}
