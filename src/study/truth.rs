//! The study directory: one fixed retraining recipe and every architecture retrained with it.
//!
//! ```text
//! study.json                 format, space, teacher sha256, the recipe (data, epochs, …)
//! plan-band.json             the band set (`dnas study truth --set band`): architectures at the budget
//! plan-space.json            the space set (`--set space`; `plan-truth.json` in version-1 studies)
//! plan-pick-<name>.json      a pick and its random architectures (`dnas study pick`)
//! runs/<id>-s<seed>/         one retraining (the shared trainer's run directory, resumable)
//! runs/<id>-s<seed>/record.json   written last: the run is finished
//! truth-<set>.json           snapshot: plan + finished records + reliability (rewritten after each run)
//! ```
//! A run is keyed by its architecture's key and its seed, so the same architecture asked for by
//! the truth set and by a pick is trained once. Every file is written atomically; a killed run
//! resumes from its last checkpoint, and finished runs are never redone. Several processes
//! (`--shard i/n`) may share the directory: each trains its own share of the schedule, and
//! [`Truth::load`] reads the finished records directly, so no file needs a lock.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::reliability::{reliability, Reliability};
use crate::data::DataSpec;
use crate::space::arch::Arch;
use crate::train::job::TrainSettings;
use crate::train::optim::OptimConfig;
use crate::train::schedule::Decay;
use crate::train::TrainConfig;
use crate::util::sha256_hex;
use crate::util::{create_or_match, differences, read_json, write_atomic};

/// Distillation in the recipe (off by default: truth is plain cross-entropy).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KdRecipe {
    pub temperature: f64,
    pub alpha: f64,
}

/// How every architecture of a study is retrained from scratch. Only the seed varies.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    pub data: String,
    /// Held-out samples carved from train with `data_seed` (the same split for every run).
    pub held_out: usize,
    pub data_seed: u64,
    pub train_subset: Option<usize>,
    pub epochs: usize,
    pub batch: usize,
    pub optimizer: String,
    pub lr: f64,
    pub weight_decay: f64,
    pub schedule: String,
    pub warmup_epochs: f64,
    pub label_smoothing: f64,
    pub kd: Option<KdRecipe>,
    /// Feature-level distillation at the teacher's cut points (absent = none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feature_kd: Option<FeatureKdRecipe>,
}

impl Recipe {
    /// The training settings of one run of this recipe (training `seed`; the held-out split is
    /// carved with the recipe's own `data_seed`, the same for every run).
    pub fn settings(&self, seed: u64, device: &str, workers: usize, resume: bool, ckpt_every: usize) -> Result<TrainSettings> {
        Ok(TrainSettings {
            data: DataSpec { source: self.data.clone(), held_out: self.held_out, seed: self.data_seed, size: None, channels: None },
            workers,
            train: TrainConfig {
                epochs: self.epochs,
                lr: self.lr,
                weight_decay: self.weight_decay,
                optim: OptimConfig::parse(&self.optimizer)?,
                decay: Decay::parse(&self.schedule)?,
                warmup_epochs: self.warmup_epochs,
                ema: None,
                clip: None,
                ckpt_every,
                log_every: 20,
                max_steps: None,
            },
            batch: self.batch,
            seed,
            train_subset: self.train_subset,
            label_smoothing: self.label_smoothing,
            device: crate::ops::convert::parse_device(device)?,
            resume,
        })
    }
}

/// Feature distillation in the recipe: the student's block outputs against these teacher
/// values (one per block of the space, in order).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureKdRecipe {
    pub kind: crate::train::features::FeatureKd,
    pub weight: f64,
    pub teacher_cuts: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StudyRecord {
    pub format: String,
    pub version: u32,
    /// `name@version` of the space.
    pub space: String,
    pub teacher_sha256: String,
    pub recipe: Recipe,
}

/// One architecture of a plan and the seeds it is trained with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlanEntry {
    pub key: String,
    pub why: String,
    pub params: u64,
    pub macs: u64,
    pub seeds: Vec<u64>,
    pub arch: Arch,
}

/// What one retraining measured (`runs/<id>-s<seed>/record.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    pub key: String,
    pub seed: u64,
    pub params: u64,
    pub macs: u64,
    /// `None` for low-fidelity evaluations (no test-set pass).
    pub test_top1: Option<f64>,
    pub held_out_top1: Option<f64>,
    pub steps: usize,
    pub seconds: f64,
    pub device: String,
    pub threads: usize,
    pub recipe: Recipe,
}

/// What a retrainer reports back.
pub struct Trained {
    pub test_top1: Option<f64>,
    pub held_out_top1: Option<f64>,
    pub steps: usize,
    pub seconds: f64,
}

/// Trains `arch` from scratch with `seed` into `dir` (resuming when `dir` holds a checkpoint).
pub trait Retrainer {
    fn retrain(&mut self, arch: &Arch, seed: u64, dir: &Path, recipe: &Recipe) -> Result<Trained>;
    fn device(&self) -> String;
    fn threads(&self) -> usize;
}

pub struct StudyDir {
    pub root: PathBuf,
    pub record: StudyRecord,
}

/// The directory of one run: a short hash of the key (file-name safe) and the seed.
pub fn run_id(key: &str, seed: u64) -> String {
    format!("{}-s{seed}", &sha256_hex(key.as_bytes())[..12])
}

impl StudyDir {
    pub fn create(root: &Path, record: StudyRecord) -> Result<StudyDir> {
        std::fs::create_dir_all(root).with_context(|| format!("cannot create '{}'", root.display()))?;
        create_or_match(&root.join("study.json"), &serde_json::to_value(&record)?, "study")?;
        Ok(StudyDir { root: root.to_path_buf(), record })
    }

    pub fn open(root: &Path) -> Result<StudyDir> {
        let p = root.join("study.json");
        if !p.exists() {
            bail!("'{}' is not a study directory (no study.json): create it with dnas study truth", root.display());
        }
        let record: StudyRecord =
            serde_json::from_value(read_json(&p)?).with_context(|| format!("'{}' is not a study record", p.display()))?;
        Ok(StudyDir { root: root.to_path_buf(), record })
    }

    pub fn run_dir(&self, key: &str, seed: u64) -> PathBuf {
        self.root.join("runs").join(run_id(key, seed))
    }

    pub fn result(&self, key: &str, seed: u64) -> Result<Option<RunResult>> {
        let p = self.run_dir(key, seed).join("record.json");
        if !p.exists() {
            return Ok(None);
        }
        let r: RunResult = serde_json::from_value(read_json(&p)?).with_context(|| format!("'{}' is not a run record", p.display()))?;
        if r.key != key || r.seed != seed {
            bail!("'{}' holds {} seed {}, expected {key} seed {seed}", p.display(), r.key, r.seed);
        }
        Ok(Some(r))
    }

    pub fn plan_path(&self, name: &str) -> PathBuf {
        self.root.join(format!("plan-{name}.json"))
    }

    /// Writes plan `name` (`header` + `entries`) on first use. Later, the stored plan is used
    /// as it is when its header and its list of (key, seeds) are what is asked now; anything
    /// else is refused, naming the difference.
    pub fn create_or_open_plan(&self, name: &str, header: serde_json::Value, entries: Vec<PlanEntry>) -> Result<Vec<PlanEntry>> {
        let p = self.plan_path(name);
        if !p.exists() {
            let mut v = header;
            v["entries"] = serde_json::to_value(&entries)?;
            write_atomic(&p, serde_json::to_string_pretty(&v)?.as_bytes())?;
            return Ok(entries);
        }
        let mut have = read_json(&p)?;
        let stored = self.load_plan(name)?;
        if let Some(o) = have.as_object_mut() {
            o.remove("entries");
        }
        let mut diff = Vec::new();
        differences("", &have, &header, &mut diff);
        let ids = |v: &[PlanEntry]| v.iter().map(|e| (e.key.clone(), e.seeds.clone())).collect::<Vec<_>>();
        if ids(&stored) != ids(&entries) {
            diff.push("the sampled architectures differ (another space or sampler)".into());
        }
        if !diff.is_empty() {
            bail!("'{}' was made with other settings: {} (use another directory, or the same settings)", p.display(), diff.join("; "));
        }
        Ok(stored)
    }

    pub fn load_plan(&self, name: &str) -> Result<Vec<PlanEntry>> {
        let p = self.plan_path(name);
        let v = read_json(&p)?;
        serde_json::from_value(v.get("entries").cloned().unwrap_or_default()).with_context(|| format!("'{}': entries", p.display()))
    }

    /// Trains every (entry, seed) of `schedule` that has no record yet — those at positions
    /// `shard.0 (mod shard.1)` — calling `after` once each run's record is written.
    pub fn run_schedule(
        &self,
        schedule: &[(PlanEntry, u64)],
        shard: (usize, usize),
        trainer: &mut dyn Retrainer,
        after: &mut dyn FnMut(&StudyDir) -> Result<()>,
    ) -> Result<RunStats> {
        let mut stats = RunStats::default();
        for (pos, (e, seed)) in schedule.iter().enumerate() {
            if pos % shard.1 != shard.0 {
                continue;
            }
            if self.result(&e.key, *seed)?.is_some() {
                stats.reused += 1;
                continue;
            }
            let dir = self.run_dir(&e.key, *seed);
            eprintln!("[study] {}/{} {} seed {seed} ({} MACs, {})", pos + 1, schedule.len(), e.key, e.macs, e.why);
            let t = trainer
                .retrain(&e.arch, *seed, &dir, &self.record.recipe)
                .with_context(|| format!("retraining {} seed {seed} in '{}'", e.key, dir.display()))?;
            let r = RunResult {
                key: e.key.clone(),
                seed: *seed,
                params: e.params,
                macs: e.macs,
                test_top1: t.test_top1,
                held_out_top1: t.held_out_top1,
                steps: t.steps,
                seconds: t.seconds,
                device: trainer.device(),
                threads: trainer.threads(),
                recipe: self.record.recipe.clone(),
            };
            write_atomic(&dir.join("record.json"), serde_json::to_string_pretty(&r)?.as_bytes())?;
            match (r.test_top1, r.held_out_top1) {
                (Some(t), _) => eprintln!("[study]   test top-1 {:.2}%  ({:.0} s)", 100.0 * t, r.seconds),
                (None, Some(h)) => eprintln!("[study]   held-out top-1 {:.2}%  ({:.0} s)", 100.0 * h, r.seconds),
                (None, None) => eprintln!("[study]   finished ({:.0} s)", r.seconds),
            }
            stats.trained += 1;
            after(self)?;
        }
        Ok(stats)
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub struct RunStats {
    pub trained: usize,
    pub reused: usize,
}

/// The schedule of a plan: the first `repeat` entries with both of their seeds first (so the
/// noise floor is measured early), then the others.
pub fn schedule(entries: &[PlanEntry]) -> Vec<(PlanEntry, u64)> {
    let mut out = Vec::new();
    for e in entries.iter().filter(|e| e.seeds.len() > 1) {
        out.extend(e.seeds.iter().map(|&s| (e.clone(), s)));
    }
    for e in entries.iter().filter(|e| e.seeds.len() <= 1) {
        out.extend(e.seeds.iter().map(|&s| (e.clone(), s)));
    }
    out
}

/// One truth architecture with its finished runs.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TruthArch {
    pub key: String,
    pub why: String,
    pub params: u64,
    pub macs: u64,
    /// Test top-1 per finished seed.
    pub top1: BTreeMap<u64, f64>,
    pub held_out_top1: BTreeMap<u64, f64>,
    pub seconds: f64,
    pub arch: Arch,
}

impl TruthArch {
    /// The truth value: mean test top-1 over the finished seeds.
    pub fn value(&self) -> Option<f64> {
        (!self.top1.is_empty()).then(|| self.top1.values().sum::<f64>() / self.top1.len() as f64)
    }
}

/// A plan with its finished records.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Truth {
    pub study: StudyRecord,
    pub plan: String,
    pub planned_runs: usize,
    pub finished_runs: usize,
    pub archs: Vec<TruthArch>,
    /// How much of the truth values is architecture rather than seed (`None` until at least
    /// two architectures are finished and one has two seeds).
    pub reliability: Option<Reliability>,
}

impl Truth {
    /// Reads plan `name` of the study and every finished run of it.
    pub fn load(study: &StudyDir, name: &str) -> Result<Truth> {
        let entries = study.load_plan(name)?;
        let mut archs = Vec::new();
        let (mut planned, mut finished) = (0, 0);
        for e in &entries {
            let mut a = TruthArch {
                key: e.key.clone(),
                why: e.why.clone(),
                params: e.params,
                macs: e.macs,
                top1: BTreeMap::new(),
                held_out_top1: BTreeMap::new(),
                seconds: 0.0,
                arch: e.arch.clone(),
            };
            for &s in &e.seeds {
                planned += 1;
                if let Some(r) = study.result(&e.key, s)? {
                    finished += 1;
                    if let Some(t) = r.test_top1 {
                        a.top1.insert(s, t);
                    }
                    if let Some(h) = r.held_out_top1 {
                        a.held_out_top1.insert(s, h);
                    }
                    a.seconds += r.seconds;
                }
            }
            archs.push(a);
        }
        let groups: Vec<Vec<f64>> = archs.iter().map(|a| a.top1.values().copied().collect()).collect();
        let reliability = reliability(&groups);
        Ok(Truth { study: study.record.clone(), plan: name.into(), planned_runs: planned, finished_runs: finished, archs, reliability })
    }

    /// The study's truth sets that exist, in order: `band` (plan-band.json) and `space`
    /// (plan-space.json, or the single plan-truth.json of a version-1 study).
    pub fn load_sets(study: &StudyDir) -> Result<Vec<(String, Truth)>> {
        let mut out = Vec::new();
        for (set, plan) in [("band", "band"), ("space", "space"), ("space", "truth")] {
            if study.plan_path(plan).exists() && !out.iter().any(|(s, _): &(String, Truth)| s == set) {
                out.push((set.to_string(), Truth::load(study, plan)?));
            }
        }
        if out.is_empty() {
            bail!(
                "'{}' holds no truth set (plan-band.json, plan-space.json or plan-truth.json): run dnas study truth",
                study.root.display()
            );
        }
        Ok(out)
    }

    /// Architectures with a truth value.
    pub fn finished(&self) -> impl Iterator<Item = &TruthArch> {
        self.archs.iter().filter(|a| a.value().is_some())
    }

    /// Rewrites `truth.json` (a snapshot for people and other tools).
    pub fn write_snapshot(&self, study: &StudyDir) -> Result<()> {
        let file = if self.plan == "truth" { "truth.json".to_string() } else { format!("truth-{}.json", self.plan) };
        write_atomic(&study.root.join(file), serde_json::to_string_pretty(self)?.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arch(key: &str, seeds: &[(u64, f64)]) -> TruthArch {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/models/archs/fmnist_searched.json")).unwrap();
        TruthArch {
            key: key.into(),
            why: String::new(),
            params: 0,
            macs: 0,
            top1: seeds.iter().copied().collect(),
            held_out_top1: BTreeMap::new(),
            seconds: 0.0,
            arch: Arch::parse(&text).unwrap(),
        }
    }

    #[test]
    fn truth_values_are_seed_means_and_seeds_feed_the_reliability() {
        let a = [arch("a", &[(0, 0.90), (1, 0.92)]), arch("b", &[(0, 0.85), (1, 0.84)]), arch("c", &[(0, 0.80)]), arch("d", &[])];
        assert!((a[0].value().unwrap() - 0.91).abs() < 1e-12);
        assert!(a[3].value().is_none());
        let groups: Vec<Vec<f64>> = a.iter().map(|x| x.top1.values().copied().collect()).collect();
        let r = reliability(&groups).unwrap();
        assert_eq!((r.archs, r.repeated, r.runs), (3, 2, 5));
    }

    #[test]
    fn schedule_puts_repeats_first_and_run_ids_are_stable() {
        let e = |k: &str, seeds: Vec<u64>| PlanEntry {
            key: k.into(),
            why: String::new(),
            params: 0,
            macs: 0,
            seeds,
            arch: arch("x", &[]).arch,
        };
        let s = schedule(&[e("a", vec![0]), e("b", vec![0, 1]), e("c", vec![0])]);
        let got: Vec<(String, u64)> = s.iter().map(|(e, s)| (e.key.clone(), *s)).collect();
        assert_eq!(got, vec![("b".into(), 0), ("b".into(), 1), ("a".into(), 0), ("c".into(), 0)]);
        assert_eq!(run_id("c0:ir_k3_e3 | c1:x", 2), run_id("c0:ir_k3_e3 | c1:x", 2));
        assert_ne!(run_id("a", 0), run_id("a", 1));
        assert!(run_id("a | b", 0).chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    }
}
