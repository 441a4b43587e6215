//! The one interface every search strategy plugs into `dnas study`: a predicted quality for any
//! architecture of the space (higher is better). DNA's predictor reads a search run's rankings
//! (`eval/block-<i>.json`) and sums the chosen candidates' block scores, in one of several
//! metrics that cost no extra evaluation pass.

use std::collections::HashMap;

use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};

use crate::data::DataSpec;
use crate::oneshot::{inherited_top1, EvalData, OneShotNet, PathBudget};
use crate::space::Resolved;
use crate::train::checkpoint::read_tensors;
use crate::util::read_json;

use crate::search::choose::load_rankings;
use crate::search::evaluate::BlockRanking;
use crate::search::run::RunDir;
use crate::space::arch::Arch;
use crate::space::point::arch_key;
use crate::study::truth::{PlanEntry, Retrainer, StudyDir};

pub trait Predictor {
    /// A short label for tables and charts (`dna`, `dna:mse`).
    fn name(&self) -> String;
    /// Predicted quality of `arch`: higher is better.
    fn predict(&mut self, arch: &Arch) -> Result<f64>;
    /// The cost limits outside which the predictor knows nothing (a one-shot supernet trains
    /// only paths within its search budget): truth architectures beyond them are not scored.
    fn limits(&self) -> Option<Limits> {
        None
    }
}

/// Cost limits a predictor was trained under: the one-shot supernet's own path budget.
pub use crate::oneshot::PathBudget as Limits;

pub use crate::search::metric::DnaMetric;

pub struct DnaPredictor {
    pub label: String,
    pub metric: DnaMetric,
    /// Per block: candidate id → block loss under `metric`.
    blocks: Vec<(String, HashMap<String, f64>)>,
}

impl DnaPredictor {
    pub fn from_rankings(label: &str, rankings: &[BlockRanking], metric: DnaMetric) -> DnaPredictor {
        let blocks = rankings
            .iter()
            .map(|r| (r.name.clone(), r.candidates.iter().map(|c| c.id.clone()).zip(metric.block_losses(r)).collect()))
            .collect();
        DnaPredictor { label: format!("{label}:{}", metric.label()), metric, blocks }
    }

    /// The predictor of a search run directory (its rankings must exist: `dnas evaluate`).
    pub fn from_run(label: &str, run: &RunDir, metric: DnaMetric) -> Result<DnaPredictor> {
        let space = run.space()?;
        Ok(DnaPredictor::from_rankings(label, &load_rankings(run, space.blocks.len())?, metric))
    }

    /// The summed block loss of `arch` (lower is better).
    pub fn loss(&self, arch: &Arch) -> Result<f64> {
        if arch.blocks.len() != self.blocks.len() {
            bail!("'{}' has {} blocks, the run's rankings {}", arch.name, arch.blocks.len(), self.blocks.len());
        }
        let mut sum = 0.0;
        for (b, (name, m)) in arch.blocks.iter().zip(&self.blocks) {
            sum += m.get(&b.candidate).ok_or_else(|| {
                anyhow!("block '{name}': candidate '{}' of '{}' is not in the run's ranking (another space?)", b.candidate, arch.name)
            })?;
        }
        Ok(sum)
    }
}

impl Predictor for DnaPredictor {
    fn name(&self) -> String {
        self.label.clone()
    }
    fn predict(&mut self, arch: &Arch) -> Result<f64> {
        Ok(-self.loss(arch)?)
    }
}

/// SPOS's and Cream's predictor: an architecture's held-out top-1 with the weights it inherits
/// from a trained one-shot supernet (`dnas search --strategy spos|cream`), BatchNorm recalibrated
/// on a fixed training batch first.
pub struct OneShotPredictor {
    pub label: String,
    pub net: OneShotNet,
    pub eval: EvalData,
    /// The budget its supernet's paths were sampled under.
    pub trained_within: Limits,
}

impl OneShotPredictor {
    /// Reads a one-shot run directory: `oneshot.json`, `space.json`, `train/final.safetensors`.
    pub fn from_run(run: &Path, space: Resolved, batches: usize, batch: usize, device: tch::Device) -> Result<OneShotPredictor> {
        let rec = read_json(&run.join("oneshot.json"))?;
        let strategy = rec["strategy"].as_str().unwrap_or("oneshot").to_string();
        let seed = rec["seed"].as_u64().unwrap_or(0);
        let data: DataSpec =
            serde_json::from_value(rec["data"].clone()).with_context(|| format!("'{}': data", run.join("oneshot.json").display()))?;
        let mut net = OneShotNet::new(&space, PathBudget::default(), seed, device)?;
        let w = run.join("train").join("final.safetensors");
        if !w.exists() {
            bail!("'{}' has no trained supernet ({}): run dnas search first", run.display(), w.display());
        }
        net.load_state(&read_tensors(&w)?).with_context(|| format!("'{}' does not hold this space's one-shot supernet", w.display()))?;
        let trained_within = Limits { max_macs: rec["budget"]["max_macs"].as_u64(), max_params: rec["budget"]["max_params"].as_u64() };
        Ok(OneShotPredictor {
            label: format!("{strategy}:inherited"),
            net,
            eval: EvalData::load(&data, batches, batch, device)?,
            trained_within,
        })
    }
}

impl Predictor for OneShotPredictor {
    fn name(&self) -> String {
        self.label.clone()
    }
    fn predict(&mut self, arch: &Arch) -> Result<f64> {
        let p = self.net.space.point_of(arch)?;
        inherited_top1(&mut self.net, &p, &self.eval.recal, &self.eval.held)
    }
    fn limits(&self) -> Option<Limits> {
        (self.trained_within != Limits::default()).then_some(self.trained_within)
    }
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
