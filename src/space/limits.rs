//! Cost limits on an architecture of the space: what a search keeps its sampled paths and its
//! pick within, and what a predictor was trained under. One type for every strategy.

/// Limits on MACs and parameters (`None` = unlimited).
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PathBudget {
    pub max_macs: Option<u64>,
    pub max_params: Option<u64>,
}

impl PathBudget {
    pub fn fits(&self, params: u64, macs: u64) -> bool {
        self.max_macs.is_none_or(|m| macs <= m) && self.max_params.is_none_or(|m| params <= m)
    }
}
