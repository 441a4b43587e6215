//! EfficientNet-style networks described by a small JSON file (`models/archs/*.json`): a stem
//! convolution, stages of MBConv layers with squeeze-excite and swish, a 1×1 head and a classifier.
//! `build` turns the description into an IR graph with seeded initial weights.

use std::path::Path;

use anyhow::{ensure, Context, Result};
use serde::{Deserialize, Serialize};

use crate::ir::builder::Builder;
use crate::ir::Graph;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stem {
    pub channels: usize,
    pub kernel: usize,
    pub stride: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    pub out: usize,
    pub layers: usize,
    /// Stride of the stage's first layer.
    pub stride: usize,
    pub expand: usize,
    pub kernel: usize,
    /// Squeeze-excite ratio of the layer's input channels (0 = none).
    #[serde(default = "default_se")]
    pub se: f64,
}

fn default_se() -> f64 {
    0.25
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetSpec {
    pub name: String,
    /// [channels, height, width]
    pub input: [usize; 3],
    pub classes: usize,
    pub stem: Stem,
    pub stages: Vec<Stage>,
    /// Channels of the 1×1 head convolution (0 = no head conv).
    pub head: usize,
}

impl NetSpec {
    pub fn load(path: &Path) -> Result<NetSpec> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read architecture '{}'", path.display()))?;
        let spec: NetSpec =
            serde_json::from_str(&text).with_context(|| format!("'{}' is not a valid architecture file", path.display()))?;
        spec.validate().with_context(|| format!("architecture '{}'", path.display()))?;
        Ok(spec)
    }

    pub fn validate(&self) -> Result<()> {
        ensure!(self.input.iter().all(|&d| d > 0), "input: every dimension must be > 0");
        ensure!(self.classes >= 2, "classes: must be ≥ 2");
        ensure!(self.stem.channels > 0 && self.stem.kernel % 2 == 1 && self.stem.stride >= 1, "stem: channels > 0, odd kernel, stride ≥ 1");
        ensure!(!self.stages.is_empty(), "stages: at least one stage");
        for (i, s) in self.stages.iter().enumerate() {
            ensure!(s.out > 0 && s.layers > 0, "stages[{i}]: out and layers must be > 0");
            ensure!(s.kernel % 2 == 1, "stages[{i}].kernel: must be odd, got {}", s.kernel);
            ensure!(s.expand >= 1 && s.stride >= 1, "stages[{i}]: expand and stride must be ≥ 1");
            ensure!((0.0..=1.0).contains(&s.se), "stages[{i}].se: must be in [0, 1]");
        }
        Ok(())
    }
}

/// Names of the stage outputs in the built graph (the natural block cuts).
pub fn stage_outputs(g: &Graph, spec: &NetSpec) -> Vec<String> {
    (0..spec.stages.len())
        .map(|i| {
            let prefix = format!("stages.{i}.{}.", spec.stages[i].layers - 1);
            g.nodes.iter().rev().find(|n| n.name.starts_with(&prefix)).map(|n| n.name.clone()).unwrap_or_default()
        })
        .collect()
}

/// The IR graph of `spec` with seeded initial weights; input `input`, output `logits`.
pub fn build(spec: &NetSpec, seed: u64) -> Result<Graph> {
    spec.validate()?;
    let mut b = Builder::new(&spec.name, "input", spec.input, seed);
    let mut x = b.conv_bn("stem", "input", spec.input[0], spec.stem.channels, spec.stem.kernel, spec.stem.stride, 1, true);
    let mut c = spec.stem.channels;
    for (i, s) in spec.stages.iter().enumerate() {
        for l in 0..s.layers {
            let stride = if l == 0 { s.stride } else { 1 };
            x = b.mbconv(&format!("stages.{i}.{l}"), &x, c, s.out, s.kernel, stride, s.expand, s.se);
            c = s.out;
        }
    }
    if spec.head > 0 {
        x = b.conv_bn("head", &x, c, spec.head, 1, 1, 1, true);
        c = spec.head;
    }
    let logits = b.classifier("classifier", &x, c, spec.classes);
    let mut g = b.finish(&[]);
    // Rename the classifier output to `logits` (its only consumer is the graph output).
    if let Some(n) = g.nodes.iter_mut().find(|n| n.name == logits) {
        n.outputs = vec!["logits".into()];
    }
    g.outputs.push(crate::ir::ValueInfo { name: "logits".into(), dtype: crate::ir::DType::F32, shape: None });
    g.metadata.insert("dnas.arch".into(), serde_json::to_string(spec)?);
    g.check()?;
    Ok(g)
}
