//! DNA's study predictor: a search run's rankings (`eval/block-<i>.json`) summed over the chosen
//! candidates' block scores, in one of several metrics that cost no extra evaluation pass.

use std::collections::HashMap;

use anyhow::{anyhow, bail, Result};

use super::choose::load_rankings;
use super::evaluate::BlockRanking;
use super::metric::DnaMetric;
use super::run::RunDir;
use crate::space::arch::Arch;
use crate::study::predict::Predictor;

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
