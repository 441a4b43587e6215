//! The study's retrainer: an architecture of the space trained from scratch with a recipe on
//! the shared classifier job (`train::job`), distilled from the teacher where the recipe says so.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use super::truth::{Recipe, Retrainer, Trained};
use crate::ops::convert::parse_device;
use crate::space::arch::{build_child_with_cuts, Arch};
use crate::train::classify::{load_teacher, Distill, FeatureDistill, LogitKd};
use crate::train::job::{run_classifier, ClassifierJob};

/// Where and how retrainings run.
#[derive(Clone, Debug)]
pub struct Runner {
    /// cpu, cuda, cuda:N.
    pub device: String,
    /// libtorch threads per process (0 = all cores).
    pub threads: usize,
    /// Data decoding threads.
    pub workers: usize,
    pub ckpt_every: usize,
}

/// The shared trainer as a [`Retrainer`]: `dnas retrain`'s loop without the ORT/tract pass.
pub struct ClassifierRetrainer {
    pub runner: Runner,
    /// The teacher a distilling recipe distils from.
    pub teacher: Option<PathBuf>,
    /// Low-fidelity evaluations: held-out top-1 after the last epoch only, no test-set pass.
    pub cheap: bool,
}

impl Retrainer for ClassifierRetrainer {
    fn retrain(&mut self, arch: &Arch, seed: u64, dir: &Path, r: &Recipe) -> Result<Trained> {
        crate::train::set_threads(self.runner.threads);
        let settings = r.settings(seed, &self.runner.device, self.runner.workers, dir.join("ckpt").exists(), self.runner.ckpt_every)?;
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
                Some(Distill { teacher: load_teacher(t, arch.input, arch.classes, parse_device(&self.runner.device)?)?, logits, features })
            }
            (true, None) => bail!("the recipe distils but no teacher was given"),
            (false, _) => None,
        };
        let result = run_classifier(ClassifierJob {
            command: "study".into(),
            source: PathBuf::from(&arch.name),
            graph,
            input: arch.input,
            classes: arch.classes,
            record: serde_json::json!({"arch": arch, "kd": r.kd, "feature_kd": r.feature_kd}),
            output: dir.to_path_buf(),
            settings,
            kd,
            validate: false,
            final_held_out_only: self.cheap,
            quiet: false,
        })?;
        Ok(Trained {
            test_top1: result.test_top1_tch,
            held_out_top1: result.held_out_top1(),
            steps: result.train.steps,
            seconds: result.train.seconds,
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
