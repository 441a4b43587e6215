//! The MF-KD run directory as the study reads it: whether a directory is an MF-KD run, the
//! feature-distillation recipe at the teacher's cuts, and the low-fidelity study directories that
//! score truth architectures (one per distillation variant).

use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::space::arch::Arch;
use crate::space::point::arch_key;
use crate::space::Resolved;
use crate::study::predict::Predictor;
use crate::study::truth::{FeatureKdRecipe, PlanEntry, Retrainer, StudyDir};
use crate::train::features::FeatureKd;

/// The recipe's feature distillation: `kind` (none, at, nst) against the teacher's cut of every
/// block of the space.
pub fn feature_recipe(kind: &str, weight: Option<f64>, resolved: &Resolved) -> Result<Option<FeatureKdRecipe>> {
    let Some(kind) = FeatureKd::parse(kind).context("--feature-kd")? else { return Ok(None) };
    let weight = weight.unwrap_or(kind.default_weight());
    if !(weight.is_finite() && weight > 0.0) {
        bail!("--feature-kd-weight {weight} must be a positive number");
    }
    Ok(Some(FeatureKdRecipe { kind, weight, teacher_cuts: resolved.blocks.iter().map(|b| b.teacher_out.clone()).collect() }))
}

/// The low-fidelity study directories `study rank` scores an MF-KD run with, one per label of
/// `which` (comma-separated; `both` = `kd,ce`): `kd` (the run's Hinton distillation), `ce` (no
/// distillation), `at`/`nst` (cross-entropy plus that feature distillation), `kd+at`/`kd+nst`
/// (both terms). Each is the run's own fidelity-0 recipe with only the distillation changed; the
/// run's own directory serves the label its recipe is, the others live in `fidelity-0-<label>`.
/// The run's space must be the study's; `resolved` (the run's space on the teacher) gives the
/// teacher's cuts.
pub fn lowfi_dirs(run: &Path, which: &str, study: &StudyDir, resolved: &Resolved) -> Result<Vec<(String, StudyDir)>> {
    let low = StudyDir::open(&run.join("fidelity-0"))?;
    if low.record.space != study.record.space {
        bail!("the run searched space {} but the truth set is of {}", low.record.space, study.record.space);
    }
    let labels: Vec<&str> = if which == "both" { vec!["kd", "ce"] } else { which.split(',').map(str::trim).collect() };
    let mut out = Vec::new();
    for label in labels {
        let (logits, features) = label.split_once('+').map_or((label, None), |(a, b)| (a, Some(b)));
        let kd = match (logits, features) {
            ("kd", _) => Some(low.record.recipe.kd.clone().with_context(|| {
                format!("--lowfi {label}: '{}' evaluates without Hinton distillation (its recipe has no kd)", run.display())
            })?),
            ("ce", None) | ("at", None) | ("nst", None) => None,
            _ => bail!("--lowfi '{label}' is not known (kd, ce, at, nst, kd+at, kd+nst, both)"),
        };
        let feature = match (logits, features) {
            ("at", None) | ("nst", None) => Some(logits),
            (_, Some(f)) => Some(f),
            _ => None,
        };
        let mut rec = low.record.clone();
        rec.recipe.kd = kd;
        rec.recipe.feature_kd = match feature {
            Some(f) => {
                let kind = FeatureKd::parse(f).with_context(|| format!("--lowfi {label}"))?;
                if kind.is_none() {
                    bail!("--lowfi '{label}' is not known (kd, ce, at, nst, kd+at, kd+nst, both)");
                }
                // The weight of the run's own feature distillation when it has this kind.
                let weight = low.record.recipe.feature_kd.as_ref().filter(|r| Some(r.kind) == kind).map(|r| r.weight);
                feature_recipe(f, weight, resolved)?
            }
            None => None,
        };
        let dir = if rec.recipe == low.record.recipe {
            StudyDir::open(&low.root)?
        } else {
            StudyDir::create(&run.join(format!("fidelity-0-{}", label.replace('+', "-"))), rec)?
        };
        out.push((format!("lowfi-{label}"), dir));
    }
    Ok(out)
}

/// MF-KD's low-fidelity predictor: an architecture's held-out top-1 after training it alone at
/// a low fidelity (a study directory's recipe: few images, few epochs, with or without KD).
/// Trains each architecture once; a finished evaluation is read back.
pub struct LowFiPredictor {
    pub label: String,
    pub dir: StudyDir,
    pub trainer: Box<dyn Retrainer>,
    pub seed: u64,
}

impl Predictor for LowFiPredictor {
    fn name(&self) -> String {
        self.label.clone()
    }
    fn predict(&mut self, arch: &Arch) -> Result<f64> {
        let key = arch_key(arch);
        let entry = PlanEntry {
            key: key.clone(),
            why: "truth architecture".into(),
            params: arch.predicted.params,
            macs: arch.predicted.macs,
            seeds: vec![self.seed],
            arch: arch.clone(),
        };
        self.dir.run_schedule(&[(entry, self.seed)], (0, 1), self.trainer.as_mut(), &mut |_| Ok(()))?;
        let r = self.dir.result(&key, self.seed)?.context("the low-fidelity evaluation left no record")?;
        r.held_out_top1.with_context(|| format!("'{}': no held-out top-1 (the recipe needs held_out > 0)", self.dir.root.display()))
    }
}
