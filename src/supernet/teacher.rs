//! The frozen teacher as a feature source: the imported ONNX graph cut short after the last cut
//! any block needs, run once per batch by the tch executor under no_grad, in inference mode
//! (BatchNorm with its running statistics — an explicit choice; the reference code keeps the
//! teacher's BN in training mode), returning every cut the blocks read.

use std::collections::HashMap;

use anyhow::{anyhow, Context, Result};
use tch::{Device, Tensor as T};

use crate::exec::Executor;
use crate::ir::Graph;

pub struct TeacherFeatures {
    exec: Executor,
    input: String,
    taps: Vec<String>,
}

impl TeacherFeatures {
    /// `taps`: the cut tensors to return.
    pub fn new(teacher: &Graph, taps: &[String], device: Device) -> Result<TeacherFeatures> {
        let mut taps = taps.to_vec();
        taps.sort();
        taps.dedup();
        let g = teacher.truncated(&taps).context("cutting the teacher at the blocks' cuts")?;
        let input = g.data_inputs().next().ok_or_else(|| anyhow!("the teacher has no data input"))?.name.clone();
        Ok(TeacherFeatures { exec: Executor::new(g, device)?, input, taps })
    }

    pub fn device(&self) -> Device {
        self.exec.device()
    }

    /// Cut tensors for the image batch `x` [N, C, H, W].
    pub fn features(&self, x: &T) -> Result<HashMap<String, T>> {
        let taps: Vec<&str> = self.taps.iter().map(|s| s.as_str()).collect();
        self.exec.run(&[(&self.input, x)], &taps)
    }
}
