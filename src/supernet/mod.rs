//! Student supernets, one per block (DNA): every cell of a block is its own supernet whose layers
//! each hold one trainable module per candidate op. The first layer reads the teacher's width at
//! the block's input cut and the last layer writes the teacher's width at its output cut, so the
//! block is trained with MSE against the teacher's feature map. One path per cell is sampled
//! uniformly per step, from a stream of the run's seed and the step (so resumed and split runs
//! sample the same paths).
//!
//! Every layer module is an IR graph built by [`crate::ir::builder`] and run by
//! [`crate::train::Trainable`], the same code that trains the teacher and the child.

pub mod learner;
pub mod teacher;

use std::collections::HashMap;

use anyhow::{Context, Result};
use tch::{Device, Tensor as T};

use crate::space::{LayerOp, ResolvedBlock, ResolvedCell};
use crate::train::Trainable;
use crate::util::Rng;

use crate::space::layer::layer_graph;

/// Scope (and weight-name prefix) of one layer module.
pub fn unit_scope(block: usize, cell: usize, layer: usize, op: LayerOp) -> String {
    format!("blocks.{block}.cells.{cell}.layers.{layer}.{op}")
}

/// One cell's supernet: `units[layer][op]` (`None` = skip).
pub struct CellNet {
    pub cell: ResolvedCell,
    pub units: Vec<Vec<Option<Trainable>>>,
}

impl CellNet {
    /// Runs `path` (op index per layer) on `x`.
    pub fn forward(&self, path: &[usize], x: &T, train: bool) -> Result<T> {
        let mut h = x.shallow_clone();
        for (l, &o) in path.iter().enumerate() {
            if let Some(m) = &self.units[l][o] {
                h = m.forward(&h, train)?;
            }
        }
        Ok(h)
    }
}

/// The supernets of one block.
pub struct BlockNet {
    pub block: ResolvedBlock,
    pub cells: Vec<CellNet>,
    seed: u64,
}

impl BlockNet {
    /// Builds the block's supernets with seeded initial weights (seed, block, cell, layer, op).
    pub fn new(block: &ResolvedBlock, se: f64, seed: u64, device: Device) -> Result<BlockNet> {
        let mut cells = Vec::new();
        for cell in &block.cells {
            let mut units = Vec::new();
            for (l, slot) in cell.layers.iter().enumerate() {
                let mut ops = Vec::new();
                for (o, &op) in slot.ops.iter().enumerate() {
                    let unit_seed = Rng::stream(seed, 0x1417 + block.index as u64, ((cell.index * 64 + l) * 64 + o) as u64).next_u64();
                    let scope = unit_scope(block.index, cell.index, l, op);
                    let m = match layer_graph(&scope, op, &slot.supernet, se, unit_seed) {
                        Some(g) => Some(Trainable::new(g, device).with_context(|| format!("layer '{scope}'"))?),
                        None => None,
                    };
                    ops.push(m);
                }
                units.push(ops);
            }
            cells.push(CellNet { cell: cell.clone(), units });
        }
        Ok(BlockNet { block: block.clone(), cells, seed })
    }

    /// The path cell `c` trains at `step`: one op per layer, uniformly.
    pub fn sample_path(&self, c: usize, step: usize) -> Vec<usize> {
        let mut rng = Rng::stream(self.seed, 0x5a3e_0000 + (self.block.index as u64) * 256 + c as u64, step as u64);
        self.cells[c].cell.layers.iter().map(|l| rng.below(l.ops.len())).collect()
    }

    /// Training loss at `step`: the sum over cells of MSE(sampled path(x), y). Cells share no
    /// weights, so each gets exactly its own gradient.
    pub fn loss(&self, x: &T, y: &T, step: usize) -> Result<T> {
        let mut total: Option<T> = None;
        for c in 0..self.cells.len() {
            let path = self.sample_path(c, step);
            let out = self.cells[c].forward(&path, x, true)?;
            let l = out.f_mse_loss(y, tch::Reduction::Mean)?;
            total = Some(match total {
                Some(t) => t + l,
                None => l,
            });
        }
        total.context("the block has no cells")
    }

    /// Held-out probe: mean MSE of `paths` fixed paths per cell in eval mode (running BN stats).
    pub fn probe(&self, x: &T, y: &T, paths: usize) -> Result<f64> {
        let _g = tch::no_grad_guard();
        let (mut sum, mut n) = (0.0, 0usize);
        for (c, cell) in self.cells.iter().enumerate() {
            let total = cell.cell.paths();
            for k in 0..paths.min(total) {
                let path = cell.cell.path(Rng::stream(self.seed, 0x9b0e + c as u64, k as u64).below(total));
                sum += cell.forward(&path, x, false)?.f_mse_loss(y, tch::Reduction::Mean)?.f_double_value(&[])?;
                n += 1;
            }
        }
        Ok(sum / n.max(1) as f64)
    }

    /// Per parameter (in [`BlockNet::parameters`] order): is it on a path sampled at `step`?
    pub fn active(&self, step: usize) -> Vec<bool> {
        let mut mask = Vec::new();
        for (c, cell) in self.cells.iter().enumerate() {
            let path = self.sample_path(c, step);
            for (l, ops) in cell.units.iter().enumerate() {
                for (o, m) in ops.iter().enumerate() {
                    if let Some(m) = m {
                        mask.extend(std::iter::repeat_n(path[l] == o, m.param_count()));
                    }
                }
            }
        }
        mask
    }

    pub fn param_count(&self) -> usize {
        self.modules().map(|m| m.param_count()).sum()
    }

    fn modules(&self) -> impl Iterator<Item = &Trainable> {
        self.cells.iter().flat_map(|c| c.units.iter().flatten().flatten())
    }

    pub fn parameters(&self) -> Vec<(String, T, bool)> {
        self.modules().flat_map(|m| m.parameters()).collect()
    }

    pub fn state(&self) -> Vec<(String, T)> {
        self.modules().flat_map(|m| m.state()).collect()
    }

    pub fn load_state(&mut self, named: &HashMap<String, T>) -> Result<()> {
        for c in &mut self.cells {
            for m in c.units.iter_mut().flatten().flatten() {
                m.load_state(named)?;
            }
        }
        Ok(())
    }
}
