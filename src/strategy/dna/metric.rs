//! How a block ranking's per-candidate numbers become the block loss that selection adds up
//! (lower is better) — and that `dnas study` scores against retrained truth. One place, so the
//! pick of `dnas select --metric M` and the study's predictor for M are the same numbers.

use std::collections::HashMap;

use anyhow::{bail, Result};

use super::evaluate::BlockRanking;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DnaMetric {
    /// mean|Y−Ŷ| / std(Y) — DNA's ranking metric.
    Score,
    /// Plain MSE against the teacher's feature map.
    Mse,
    /// MSE / var(Y): every block on the same scale.
    MseVar,
    /// The score standardised within its cell (z-score over the cell's candidates): compares
    /// ops inside a depth, and leaves depth to the cell's mean.
    CellZ,
}

impl DnaMetric {
    pub fn parse(s: &str) -> Result<DnaMetric> {
        Ok(match s {
            "score" => DnaMetric::Score,
            "mse" => DnaMetric::Mse,
            "mse-var" => DnaMetric::MseVar,
            "cell-z" => DnaMetric::CellZ,
            other => bail!("unknown DNA metric '{other}' (score, mse, mse-var, cell-z)"),
        })
    }

    pub fn label(self) -> &'static str {
        match self {
            DnaMetric::Score => "score",
            DnaMetric::Mse => "mse",
            DnaMetric::MseVar => "mse-var",
            DnaMetric::CellZ => "cell-z",
        }
    }

    pub const ALL: [DnaMetric; 4] = [DnaMetric::Score, DnaMetric::Mse, DnaMetric::MseVar, DnaMetric::CellZ];

    /// The block loss of every candidate of `r`, aligned with `r.candidates`.
    pub fn block_losses(self, r: &BlockRanking) -> Vec<f64> {
        match self {
            DnaMetric::Score => r.candidates.iter().map(|c| c.score).collect(),
            DnaMetric::Mse => r.candidates.iter().map(|c| c.mse).collect(),
            DnaMetric::MseVar => r.candidates.iter().map(|c| c.mse / (r.std_y * r.std_y).max(f64::MIN_POSITIVE)).collect(),
            DnaMetric::CellZ => {
                let mut by_cell: HashMap<usize, Vec<f64>> = HashMap::new();
                for c in &r.candidates {
                    by_cell.entry(c.cell).or_default().push(c.score);
                }
                let stats: HashMap<usize, (f64, f64)> = by_cell
                    .into_iter()
                    .map(|(cell, v)| {
                        let mean = v.iter().sum::<f64>() / v.len() as f64;
                        let sd = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64).sqrt();
                        (cell, (mean, if sd > 0.0 { sd } else { 1.0 }))
                    })
                    .collect();
                r.candidates
                    .iter()
                    .map(|c| {
                        let (mean, sd) = stats[&c.cell];
                        (c.score - mean) / sd
                    })
                    .collect()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategy::dna::evaluate::RankedCandidate;

    fn ranking() -> BlockRanking {
        let c = |id: &str, cell, score, mse| RankedCandidate {
            id: id.into(),
            cell,
            ops: vec![],
            score,
            mse,
            params: 0,
            macs: 0,
            units: vec![],
        };
        BlockRanking {
            block: 0,
            name: "b".into(),
            teacher_out: "t".into(),
            metric: "score".into(),
            std_y: 2.0,
            images: 1,
            batches: 1,
            layer_evals: 0,
            naive_layer_evals: 0,
            recal_layer_evals: 0,
            seconds: 0.0,
            candidates: vec![c("a", 0, 1.0, 8.0), c("b", 1, 5.0, 4.0), c("c", 0, 3.0, 2.0)],
        }
    }

    #[test]
    fn block_losses_by_hand() {
        let r = ranking();
        assert_eq!(DnaMetric::Score.block_losses(&r), [1.0, 5.0, 3.0]);
        assert_eq!(DnaMetric::Mse.block_losses(&r), [8.0, 4.0, 2.0]);
        // MSE / std(Y)² with std 2.
        assert_eq!(DnaMetric::MseVar.block_losses(&r), [2.0, 1.0, 0.5]);
        // Cell 0: scores 1 and 3 → mean 2, population sd 1 → −1, +1; cell 1 alone (sd 0 → 1) → 0.
        assert_eq!(DnaMetric::CellZ.block_losses(&r), [-1.0, 0.0, 1.0]);
        for m in DnaMetric::ALL {
            assert_eq!(DnaMetric::parse(m.label()).unwrap(), m);
        }
        assert!(DnaMetric::parse("mae").is_err());
    }
}
