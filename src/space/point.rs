//! One point of a resolved space — per block, the cell (depth/width) and the op of each of its
//! layers — and what every consumer needs of it: the architecture JSON, a stable key, its
//! exact params/MACs (the same per-layer counts selection adds up) and uniform random draws.
//!
//! The key is the blocks' candidate ids (`c1:ir_k3_e6-ir_k5_e3`, as in `eval/block-<i>.json`)
//! joined by `" | "`; [`arch_key`] reads the same key back from an [`Arch`], so a selected
//! architecture, a truth architecture and a ranking entry can be matched by string.

use std::collections::HashMap;

use anyhow::{bail, Result};

use super::arch::{fixed_cost, layer_cost, Arch, ArchBlock, Predicted};
use super::{Resolved, ResolvedBlock};
use crate::util::Rng;

/// Per block: (cell index, op index of every layer of that cell).
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Point {
    pub blocks: Vec<(usize, Vec<usize>)>,
}

impl ResolvedBlock {
    /// The block of an architecture that takes `path` through `cell`.
    pub fn arch_block(&self, bs: &super::BlockSpace, cell: usize, path: &[usize], score: f64) -> ArchBlock {
        let c = &self.cells[cell];
        ArchBlock {
            name: bs.name.clone(),
            out: c.out,
            stride: bs.stride,
            width: c.width,
            layers: c.path_ops(path),
            candidate: c.path_id(path),
            score,
        }
    }
}

impl Resolved {
    /// A point drawn uniformly: the cell of each block uniformly, then every layer's op.
    pub fn random_point(&self, rng: &mut Rng) -> Point {
        let blocks = self
            .blocks
            .iter()
            .map(|b| {
                let cell = rng.below(b.cells.len());
                let path = b.cells[cell].layers.iter().map(|l| rng.below(l.ops.len())).collect();
                (cell, path)
            })
            .collect();
        Point { blocks }
    }

    /// A point drawn uniformly over architectures: each block's cell with probability
    /// proportional to the number of paths it holds, then every layer's op. (The count of
    /// architectures is the product of the blocks' path counts, so per-block weighting is exact.)
    pub fn uniform_arch_point(&self, rng: &mut Rng) -> Point {
        let blocks = self
            .blocks
            .iter()
            .map(|b| {
                let weights: Vec<f64> = b.cells.iter().map(|c| c.paths() as f64).collect();
                let mut u = rng.uniform() * weights.iter().sum::<f64>();
                let mut cell = b.cells.len() - 1;
                for (i, w) in weights.iter().enumerate() {
                    if u < *w {
                        cell = i;
                        break;
                    }
                    u -= w;
                }
                let path = b.cells[cell].layers.iter().map(|l| rng.below(l.ops.len())).collect();
                (cell, path)
            })
            .collect();
        Point { blocks }
    }

    /// The point with `cells` fixed and each layer's op drawn uniformly.
    pub fn random_point_in(&self, cells: &[usize], rng: &mut Rng) -> Point {
        let blocks = self
            .blocks
            .iter()
            .zip(cells)
            .map(|(b, &cell)| (cell, b.cells[cell].layers.iter().map(|l| rng.below(l.ops.len())).collect()))
            .collect();
        Point { blocks }
    }

    pub fn key(&self, p: &Point) -> String {
        let ids: Vec<String> = self.blocks.iter().zip(&p.blocks).map(|(b, (c, path))| b.cells[*c].path_id(path)).collect();
        ids.join(" | ")
    }

    /// The architecture JSON of `p` (what `dnas retrain` and `dnas export` read).
    pub fn arch(&self, p: &Point, name: &str, teacher_sha256: &str) -> Result<Arch> {
        if p.blocks.len() != self.blocks.len() {
            bail!("a point of {} blocks for a space of {}", p.blocks.len(), self.blocks.len());
        }
        let s = &self.space;
        let blocks =
            self.blocks.iter().zip(&s.blocks).zip(&p.blocks).map(|((rb, bs), (c, path))| rb.arch_block(bs, *c, path, 0.0)).collect();
        let arch = Arch {
            format: "dnas.arch".into(),
            version: 1,
            name: name.into(),
            space: format!("{}@{}", s.name, s.version),
            teacher_sha256: teacher_sha256.into(),
            input: s.input,
            classes: s.classes,
            se: s.se,
            stem: s.stem.clone(),
            blocks,
            head: s.head.clone(),
            predicted: Predicted::default(),
            budget: serde_json::json!({}),
        };
        arch.validate()?;
        Ok(arch)
    }

    /// The point of `arch` in this space, found through its blocks' candidate ids (or, without
    /// them, the cell with its layer count and width whose ops match).
    pub fn point_of(&self, arch: &Arch) -> Result<Point> {
        if arch.blocks.len() != self.blocks.len() {
            bail!("'{}' has {} blocks, the space {}", arch.name, arch.blocks.len(), self.blocks.len());
        }
        let mut blocks = Vec::new();
        for (rb, ab) in self.blocks.iter().zip(&arch.blocks) {
            let found = rb.cells.iter().enumerate().find_map(|(c, cell)| {
                if cell.layers.len() != ab.layers.len() || cell.width != ab.width || cell.out != ab.out {
                    return None;
                }
                let path: Option<Vec<usize>> =
                    cell.layers.iter().zip(&ab.layers).map(|(slot, op)| slot.ops.iter().position(|o| o == op)).collect();
                path.filter(|p| ab.candidate.is_empty() || cell.path_id(p) == ab.candidate).map(|p| (c, p))
            });
            match found {
                Some(x) => blocks.push(x),
                None => {
                    let ops: Vec<String> = ab.layers.iter().map(|o| o.to_string()).collect();
                    let cells: Vec<String> =
                        rb.cells.iter().map(|c| format!("{} layers, width {}, out {}", c.layers.len(), c.width, c.out)).collect();
                    bail!(
                        "block '{}' of '{}' ({} layers, width {}, out {}: {}) is not a candidate of the space (its cells: {})",
                        ab.name,
                        arch.name,
                        ab.layers.len(),
                        ab.width,
                        ab.out,
                        if ab.candidate.is_empty() { ops.join("-") } else { ab.candidate.clone() },
                        cells.join("; ")
                    )
                }
            }
        }
        Ok(Point { blocks })
    }

    /// Every cell combination (one cell index per block), first block most significant.
    pub fn cell_combinations(&self) -> Vec<Vec<usize>> {
        let mut out = vec![vec![]];
        for b in &self.blocks {
            out = out.into_iter().flat_map(|pre| (0..b.cells.len()).map(move |c| [pre.clone(), vec![c]].concat())).collect();
        }
        out
    }
}

/// The key of an architecture: its blocks' candidate ids (or, for a file without them, the
/// width and ops of each block).
pub fn arch_key(arch: &Arch) -> String {
    let ids: Vec<String> = arch
        .blocks
        .iter()
        .map(|b| {
            if b.candidate.is_empty() {
                let ops: Vec<String> = b.layers.iter().map(|o| o.to_string()).collect();
                format!("w{}:{}", b.width, ops.join("-"))
            } else {
                b.candidate.clone()
            }
        })
        .collect();
    ids.join(" | ")
}

/// Exact params and MACs of points of one space, BatchNorm folded as exported: the fixed part
/// (stem, head, classifier) plus each layer's count, cached per layer shape. A block's first
/// layer is counted at the width the previous block's chosen cell writes, and the head at the
/// last block's.
pub struct PointCost {
    /// Per width entering the head.
    fixed: HashMap<usize, (u64, u64)>,
    /// The width `SearchSpace::head_in` gives (the last block's first cell's).
    default_head: usize,
    cache: HashMap<String, (u64, u64)>,
}

impl PointCost {
    pub fn new(r: &Resolved) -> Result<PointCost> {
        let s = &r.space;
        let mut fixed = HashMap::new();
        for w in s.out_widths(s.blocks.len().checked_sub(1)) {
            fixed.insert(w, fixed_cost(&s.stem, &s.head, s.input, s.head_in_from(w), s.classes, s.se)?);
        }
        Ok(PointCost { fixed, default_head: s.head_in()[0], cache: HashMap::new() })
    }

    /// (params, MACs) of the stem, head and classifier when the last block writes its first
    /// cell's width.
    pub fn fixed(&self) -> (u64, u64) {
        self.fixed.get(&self.default_head).copied().unwrap_or_default()
    }

    /// (params, MACs) of op `o` of one layer of the child, at the block's first input width.
    pub fn layer(&mut self, r: &Resolved, slot: &super::LayerSlot, o: usize) -> Result<(u64, u64)> {
        layer_cost(slot.ops[o], &slot.child, r.space.se, &mut self.cache)
    }

    /// (params, MACs) of the child of `p`.
    pub fn cost(&mut self, r: &Resolved, p: &Point) -> Result<(u64, u64)> {
        let s = &r.space;
        let (mut params, mut macs) = (0, 0);
        let mut cin = s.stem_out()[0];
        for (b, (c, path)) in r.blocks.iter().zip(&p.blocks) {
            let cell = &b.cells[*c];
            for ((slot, &o), shape) in cell.layers.iter().zip(path).zip(s.child_cell_shapes(b.index, *c, cin)) {
                let (lp, lm) = layer_cost(slot.ops[o], &shape, s.se, &mut self.cache)?;
                params += lp;
                macs += lm;
            }
            cin = cell.out;
        }
        let (fp, fm) = *self.fixed.get(&cin).ok_or_else(|| anyhow::anyhow!("no head cost for width {cin}"))?;
        Ok((params + fp, macs + fm))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::space::arch::{build_child, graph_cost};
    use crate::space::{resolve_standalone, SearchSpace};

    #[test]
    fn point_cost_equals_the_built_child_and_keys_round_trip() {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/models/spaces/fmnist_small.json")).unwrap();
        let r = resolve_standalone(&SearchSpace::parse(&text).unwrap()).unwrap();
        assert_eq!(r.cell_combinations().len(), 2 * 3 * 3 * 2);
        let mut cost = PointCost::new(&r).unwrap();
        let mut rng = Rng::new(3);
        for i in 0..3 {
            let p = r.random_point(&mut rng);
            let arch = r.arch(&p, &format!("p{i}"), "").unwrap();
            assert_eq!(arch_key(&arch), r.key(&p));
            assert_eq!(r.point_of(&arch).unwrap(), p);
            // The JSON round trip keeps the architecture.
            let back = Arch::parse(&serde_json::to_string(&arch).unwrap()).unwrap();
            assert_eq!(back, arch);
            let built = graph_cost(&build_child(&arch, 0).unwrap()).unwrap();
            assert_eq!(cost.cost(&r, &p).unwrap(), built, "{}", r.key(&p));
        }
    }
}
