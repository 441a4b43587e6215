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

use std::path::Path;

use anyhow::{bail, Context, Result};

use super::oneshot::{check_input, cost_limits, resolve_space, OneShotArgs};
use super::study::{ClassifierRetrainer, RunnerArgs};
use super::train::set_threads;
use super::Outcome;
use crate::data::{open, Dataset};
use crate::mfkd::{search, Evaluation, Evaluator, MfkdConfig, Scored};
use crate::oneshot::PathBudget;
use crate::search::run::sha256_hex;
use crate::space::point::PointCost;
use crate::space::Resolved;
use crate::study::sample::Sampled;
use crate::study::truth::{KdRecipe, PlanEntry, Recipe, StudyDir, StudyRecord};
use crate::util::{create_or_match, write_atomic};

/// Trains (or reads back) evaluations into the fidelity directories.
struct DirEvaluator<'a> {
    dirs: Vec<StudyDir>,
    trainer: ClassifierRetrainer,
    resolved: &'a Resolved,
    seed: u64,
}

impl Evaluator for DirEvaluator<'_> {
    fn evaluate(&mut self, s: &Sampled, fidelity: usize) -> Result<Scored> {
        let dir = &self.dirs[fidelity];
        let arch = self.resolved.arch(&s.point, &format!("{}_mfkd", self.resolved.space.name), "")?;
        let entry = PlanEntry { key: s.key.clone(), why: s.why.clone(), params: s.params, macs: s.macs, seeds: vec![self.seed], arch };
        let stats = dir.run_schedule(&[(entry, self.seed)], (0, 1), &mut self.trainer, &mut |_| Ok(()))?;
        let r = dir.result(&s.key, self.seed)?.context("the evaluation left no record")?;
        let score = r.held_out_top1.context("the evaluation has no held-out top-1 (--held-out must be > 0)")?;
        eprintln!("[mfkd] fidelity {fidelity}: {:.2}% held-out  {}  ({} MACs)", 100.0 * score, s.key, s.macs);
        Ok(Scored { score, seconds: r.seconds, reused: stats.reused > 0 })
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
    let teacher_sha = match teacher {
        Some(t) => sha256_hex(&std::fs::read(t).with_context(|| format!("cannot read teacher '{}'", t.display()))?),
        None if kd.is_some() => bail!("MF-KD distils from a teacher: give --teacher (or --kd none for plain cross-entropy)"),
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
    };
    let t0 = std::time::Instant::now();
    let history_path = a.run.join("history.json");
    let mut cost = PointCost::new(&resolved)?;
    let result =
        search(&resolved, &mut cost, &cfg, PathBudget { max_macs, max_params }, recipes.len(), &mut ev, &mut |h: &[Evaluation]| {
            write_atomic(&history_path, serde_json::to_string_pretty(&serde_json::json!({"evaluations": h}))?.as_bytes())
        })?;
    let wall = t0.elapsed().as_secs_f64();
    let mut arch = resolved.arch(&result.pick.point, &format!("{}_mfkd", resolved.space.name), "")?;
    arch.predicted =
        crate::space::arch::Predicted { score: result.pick_score, macs: result.pick.macs, params: result.pick.params, latency_ms: None };
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

/// Whether `run` is an MF-KD run directory.
pub fn is_mfkd_run(run: &Path) -> bool {
    run.join("mfkd.json").exists()
}

/// The low-fidelity study directories `study rank` scores an MF-KD run with: ("kd", the run's
/// own fidelity 0) and ("ce", `fidelity-0-ce`: the same recipe without distillation), as
/// `which` (kd, ce, both) asks. The run's space must be the study's.
pub fn lowfi_dirs(run: &Path, which: &str, study: &StudyDir) -> Result<Vec<(String, StudyDir)>> {
    let low = StudyDir::open(&run.join("fidelity-0"))?;
    if low.record.space != study.record.space {
        bail!("the run searched space {} but the truth set is of {}", low.record.space, study.record.space);
    }
    let ce = || -> Result<StudyDir> {
        let mut rec = low.record.clone();
        rec.recipe.kd = None;
        StudyDir::create(&run.join("fidelity-0-ce"), rec)
    };
    let kd_label = if low.record.recipe.kd.is_some() { "lowfi-kd" } else { "lowfi-ce" };
    Ok(match which {
        "kd" if low.record.recipe.kd.is_none() => bail!("'{}' evaluates without distillation: use --lowfi ce", run.display()),
        "kd" => vec![(kd_label.into(), low)],
        "ce" if low.record.recipe.kd.is_none() => vec![(kd_label.into(), low)],
        "ce" => vec![("lowfi-ce".into(), ce()?)],
        "both" if low.record.recipe.kd.is_none() => vec![(kd_label.into(), low)],
        "both" => {
            let c = ce()?;
            vec![(kd_label.into(), low), ("lowfi-ce".into(), c)]
        }
        other => bail!("--lowfi '{other}' is not known (kd, ce, both)"),
    })
}
