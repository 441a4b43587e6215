//! One or more block supernets on the shared training loop: one teacher forward per batch feeds
//! every block being trained; the loss is the sum of the blocks' losses. Blocks share no weights,
//! so each block's parameters get exactly the gradient of their own loss, and with one learning
//! rate multiplier per block (its `lr`) and a per-parameter optimizer, training blocks together
//! or in separate processes gives the same weights.

use std::collections::HashMap;

use anyhow::{anyhow, Context, Result};
use tch::Tensor as T;

use super::teacher::TeacherFeatures;
use super::BlockNet;
use crate::data::{Batch, Loader};
use crate::train::classify::tensors;
use crate::train::Learner;

pub struct SupernetLearner {
    pub teacher: TeacherFeatures,
    pub blocks: Vec<BlockNet>,
    pub input_chw: [usize; 3],
    /// Each block's loss summed over the steps since the last log line (detached, on the
    /// device: read once per log line, not once per step), and the step count.
    pub window: (Vec<T>, usize),
}

impl SupernetLearner {
    fn cut<'a>(f: &'a HashMap<String, T>, name: &str) -> Result<&'a T> {
        f.get(name).ok_or_else(|| anyhow!("the teacher did not produce cut '{name}'"))
    }

    /// Mean held-out MSE per block over the first `batches` batches of `loader` (a few fixed
    /// paths per cell, eval mode).
    pub fn probe(&self, loader: &Loader, batches: usize, paths: usize) -> Result<Vec<f64>> {
        let mut sums = vec![0.0; self.blocks.len()];
        let mut n = 0usize;
        for batch in loader.epoch(0, 0).take(batches) {
            if batch.n == 0 {
                continue;
            }
            let (x, _) = tensors(&batch, self.input_chw, self.teacher.device())?;
            let f = self.teacher.features(&x)?;
            for (s, b) in sums.iter_mut().zip(&self.blocks) {
                *s += b.probe(Self::cut(&f, &b.block.teacher_in)?, Self::cut(&f, &b.block.teacher_out)?, paths)?;
            }
            n += 1;
        }
        Ok(sums.into_iter().map(|s| s / n.max(1) as f64).collect())
    }
}

impl Learner for SupernetLearner {
    fn parameters(&self) -> Vec<(String, T, bool)> {
        self.blocks.iter().flat_map(|b| b.parameters()).collect()
    }
    fn lr_scales(&self) -> Vec<f64> {
        self.blocks.iter().flat_map(|b| std::iter::repeat_n(b.block.lr, b.param_count())).collect()
    }
    fn active(&self, step: usize) -> Vec<bool> {
        self.blocks.iter().flat_map(|b| b.active(step)).collect()
    }
    fn state(&self) -> Vec<(String, T)> {
        self.blocks.iter().flat_map(|b| b.state()).collect()
    }
    fn load_state(&mut self, named: &HashMap<String, T>) -> Result<()> {
        for b in &mut self.blocks {
            b.load_state(named).with_context(|| format!("block {} ('{}')", b.block.index, b.block.name))?;
        }
        Ok(())
    }
    fn loss(&mut self, batch: &Batch, step: usize) -> Result<T> {
        let (x, _) = tensors(batch, self.input_chw, self.teacher.device())?;
        let f = self.teacher.features(&x)?;
        let mut total: Option<T> = None;
        if self.window.0.len() != self.blocks.len() {
            self.window = (self.blocks.iter().map(|_| T::zeros([], (tch::Kind::Double, self.teacher.device()))).collect(), 0);
        }
        for (b, acc) in self.blocks.iter().zip(self.window.0.iter_mut()) {
            let l = b.loss(Self::cut(&f, &b.block.teacher_in)?, Self::cut(&f, &b.block.teacher_out)?, step)?;
            let _ = acc.f_add_(&l.detach().to_kind(tch::Kind::Double))?;
            total = Some(match total {
                Some(t) => t + l,
                None => l,
            });
        }
        self.window.1 += 1;
        total.context("no blocks to train")
    }
    fn take_loss_parts(&mut self) -> Result<serde_json::Value> {
        let n = self.window.1.max(1) as f64;
        let mut parts = serde_json::Map::new();
        for (b, acc) in self.blocks.iter().zip(self.window.0.iter_mut()) {
            parts.insert(b.block.name.clone(), serde_json::json!(acc.f_double_value(&[])? / n));
            let _ = acc.f_zero_()?;
        }
        self.window.1 = 0;
        Ok(serde_json::Value::Object(parts))
    }
}
