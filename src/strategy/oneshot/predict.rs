//! SPOS's and Cream's study predictor: inherited-weight held-out top-1 from the trained supernet.

use std::path::Path;

use anyhow::{bail, Context, Result};

use super::{inherited_top1, EvalData, OneShotNet, PathBudget};
use crate::data::DataSpec;
use crate::space::arch::Arch;
use crate::space::Resolved;
use crate::study::predict::{Limits, Predictor};
use crate::train::checkpoint::read_tensors;
use crate::util::read_json;

/// SPOS's and Cream's predictor: an architecture's held-out top-1 with the weights it inherits
/// from a trained one-shot supernet (`dnas search spos|cream`), BatchNorm recalibrated
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
