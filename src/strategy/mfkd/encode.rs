//! The architecture encoding the surrogate sees: per block, the cell (depth) one-hot, then for
//! every layer slot up to the block's deepest cell, the op one-hot (all zeros when the chosen
//! cell has no such layer). Binary features, so one RBF length scale suits every coordinate.

use crate::space::point::Point;
use crate::space::Resolved;

/// Length of [`encode`]'s vectors for space `r`.
pub fn width(r: &Resolved) -> usize {
    r.blocks.iter().map(|b| b.cells.len() + max_layers(b) * max_ops(b)).sum()
}

fn max_layers(b: &crate::space::ResolvedBlock) -> usize {
    b.cells.iter().map(|c| c.layers.len()).max().unwrap_or(0)
}

fn max_ops(b: &crate::space::ResolvedBlock) -> usize {
    b.cells.iter().flat_map(|c| c.layers.iter().map(|l| l.ops.len())).max().unwrap_or(0)
}

pub fn encode(r: &Resolved, p: &Point) -> Vec<f64> {
    let mut v = Vec::with_capacity(width(r));
    for (b, (cell, ops)) in r.blocks.iter().zip(&p.blocks) {
        let (cells, layers, nops) = (b.cells.len(), max_layers(b), max_ops(b));
        v.extend((0..cells).map(|c| if c == *cell { 1.0 } else { 0.0 }));
        for l in 0..layers {
            v.extend((0..nops).map(|o| if ops.get(l) == Some(&o) { 1.0 } else { 0.0 }));
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::space::{resolve_standalone, SearchSpace};

    #[test]
    fn one_hot_per_cell_and_layer_slot() {
        let r = resolve_standalone(&SearchSpace::parse(crate::strategy::oneshot::TEST_SPACE).unwrap()).unwrap();
        // b0: 2 cells, up to 2 layers × 2 ops → 2 + 4; b1: 1 cell, 2 layers × 2 ops → 1 + 4.
        assert_eq!(width(&r), 11);
        let p = Point { blocks: vec![(1, vec![1, 0]), (0, vec![0, 1])] };
        assert_eq!(encode(&r, &p), [0., 1., 0., 1., 1., 0., 1., 1., 0., 0., 1.]);
        // The 1-layer cell leaves its second slot empty.
        let q = Point { blocks: vec![(0, vec![1]), (0, vec![1, 1])] };
        assert_eq!(encode(&r, &q), [1., 0., 0., 1., 0., 0., 1., 0., 1., 0., 1.]);
    }
}
