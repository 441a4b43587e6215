//! Subsets of a dataset, and the seeded rule that carves the held-out split from train.

use std::sync::Arc;

use anyhow::Result;

use super::Dataset;
use crate::util::Rng;

/// A view of some samples of a dataset, itself a dataset.
#[derive(Clone)]
pub struct Subset {
    pub base: Arc<dyn Dataset>,
    pub indices: Vec<usize>,
}

impl Subset {
    pub fn all(base: Arc<dyn Dataset>) -> Subset {
        let indices = (0..base.len()).collect();
        Subset { base, indices }
    }

    /// The first `n` samples (or all of them).
    pub fn take(&self, n: usize) -> Subset {
        Subset { base: self.base.clone(), indices: self.indices.iter().copied().take(n).collect() }
    }
}

/// Splits `0..n` into (train, held_out): a permutation seeded by `seed` puts `held_out` samples
/// aside; both lists are returned sorted. The same (n, held_out, seed) always gives the same split.
pub fn carve(n: usize, held_out: usize, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut idx: Vec<usize> = (0..n).collect();
    Rng::stream(seed, 0x4845_4c44, 0).shuffle(&mut idx);
    let k = held_out.min(n);
    let mut held = idx[..k].to_vec();
    let mut train = idx[k..].to_vec();
    held.sort_unstable();
    train.sort_unstable();
    (train, held)
}

impl Dataset for Subset {
    fn len(&self) -> usize {
        self.indices.len()
    }
    fn shape(&self) -> [usize; 3] {
        self.base.shape()
    }
    fn num_classes(&self) -> usize {
        self.base.num_classes()
    }
    fn label(&self, i: usize) -> usize {
        self.base.label(self.indices[i])
    }
    fn load(&self, i: usize, aug: Option<&mut Rng>) -> Result<Vec<f32>> {
        self.base.load(self.indices[i], aug)
    }
    fn describe(&self, i: usize) -> String {
        self.base.describe(self.indices[i])
    }
    fn preprocessing(&self) -> serde_json::Value {
        self.base.preprocessing()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn carve_is_seeded_and_disjoint() {
        let (t, h) = super::carve(100, 10, 3);
        assert_eq!((t.len(), h.len()), (90, 10));
        assert!(h.iter().all(|i| !t.contains(i)));
        assert_eq!(super::carve(100, 10, 3), (t.clone(), h.clone()));
        assert_ne!(super::carve(100, 10, 4).1, h);
    }
}
