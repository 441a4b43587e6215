//! The one interface every search strategy plugs into `dnas study`: a predicted quality for any
//! architecture of the space (higher is better). Each strategy implements it next to its search
//! (`strategy::dna::predict`, `strategy::oneshot::predict`, `strategy::mfkd::lowfi`), and
//! `strategy::SearchRun::predictors` hands a run's predictors to the study.

use anyhow::Result;

use crate::space::arch::Arch;

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
pub use crate::space::limits::PathBudget as Limits;
