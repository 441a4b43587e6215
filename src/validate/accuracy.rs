//! Top-1 accuracy of an ONNX model over a labelled dataset, through ONNX Runtime or tract,
//! streaming batches from the loader (nothing holds the whole dataset).

use std::collections::HashMap;

use anyhow::{bail, Result};

use super::ort_rt::OrtModel;
use super::tract_rt::TractModel;
use super::Array;
use crate::data::Loader;

#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Accuracy {
    pub runtime: String,
    pub correct: usize,
    pub total: usize,
    pub top1: f64,
    pub seconds: f64,
}

fn tally(name: &str, loader: &Loader, mut run: impl FnMut(&Array) -> Result<Array>) -> Result<Accuracy> {
    let t = std::time::Instant::now();
    let chw = loader.dataset().shape();
    let (mut correct, mut total) = (0, 0);
    for b in loader.epoch(0, 0) {
        if b.n == 0 {
            continue;
        }
        let out = run(&Array { shape: vec![b.n, chw[0], chw[1], chw[2]], data: b.x })?;
        if out.shape.first() != Some(&b.n) {
            bail!("{name}: the model returned shape {:?} for a batch of {}", out.shape, b.n);
        }
        correct += out.argmax_rows().iter().zip(&b.y).filter(|(p, y)| **p as i64 == **y).count();
        total += b.n;
    }
    Ok(Accuracy { runtime: name.into(), correct, total, top1: correct as f64 / total.max(1) as f64, seconds: t.elapsed().as_secs_f64() })
}

/// Top-1 through ONNX Runtime (CPU provider, `threads` intra-op threads).
pub fn ort_top1(bytes: &[u8], loader: &Loader, threads: usize) -> Result<Accuracy> {
    let mut m = OrtModel::new(bytes, threads)?;
    tally("onnxruntime", loader, |x| m.run(x)?.into_iter().next().ok_or_else(|| anyhow::anyhow!("no output")))
}

/// Top-1 through tract (one optimised plan per batch size met).
pub fn tract_top1(bytes: &[u8], loader: &Loader) -> Result<Accuracy> {
    let mut plans: HashMap<Vec<usize>, TractModel> = HashMap::new();
    tally("tract", loader, |x| {
        if !plans.contains_key(&x.shape) {
            plans.insert(x.shape.clone(), TractModel::new(bytes, &x.shape)?);
        }
        plans[&x.shape].run(x)?.into_iter().next().ok_or_else(|| anyhow::anyhow!("no output"))
    })
}
