//! An architecture: one point of a search space, written by `dnas select` as JSON (schema
//! `schemas/arch.schema.json`) and read by retraining and export. [`build_child`] turns it into
//! the child network's IR graph (student widths throughout), and [`layer_cost`] /
//! [`fixed_cost`] count what selection adds up, on the same builder code, BatchNorm folded as
//! exported.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

use super::{ceil_div, load_with, parse_checked, Head, LayerOp, LayerShape, Stem};
use crate::ir::builder::Builder;
use crate::ir::{DType, Graph, ValueInfo};

const SCHEMA: &str = include_str!("../../schemas/arch.schema.json");

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchBlock {
    pub name: String,
    pub out: usize,
    pub stride: usize,
    /// Inner width (outputs of all but the last layer).
    pub width: usize,
    pub layers: Vec<LayerOp>,
    /// The candidate id in the block's ranking (`c1:ir_k3_e6-ir_k5_e3`) and its score.
    #[serde(default)]
    pub candidate: String,
    #[serde(default)]
    pub score: f64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Predicted {
    /// The search's own score of the architecture: what it is says `score_kind`, which way is
    /// better `higher_is_better` (DNA: a sum of block losses, lower is better; SPOS, Cream,
    /// MF-KD: a held-out top-1, higher is better).
    pub score: f64,
    pub macs: u64,
    pub params: u64,
    #[serde(default)]
    pub latency_ms: Option<f64>,
    /// What `score` is (absent in files written before it was recorded).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub score_kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub higher_is_better: Option<bool>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Arch {
    pub format: String,
    pub version: u32,
    pub name: String,
    /// `name@version` of the space it was selected from.
    pub space: String,
    #[serde(default)]
    pub teacher_sha256: String,
    pub input: [usize; 3],
    pub classes: usize,
    pub se: f64,
    pub stem: Stem,
    pub blocks: Vec<ArchBlock>,
    pub head: Head,
    #[serde(default)]
    pub predicted: Predicted,
    /// The budget it was selected under.
    #[serde(default)]
    pub budget: serde_json::Value,
}

impl Arch {
    pub fn load(path: &Path) -> Result<Arch> {
        load_with(path, "architecture", Arch::parse)
    }

    pub fn parse(text: &str) -> Result<Arch> {
        let arch: Arch = parse_checked(text, SCHEMA, "an architecture")?;
        arch.validate()?;
        Ok(arch)
    }

    /// Shapes the layers' inputs and outputs agree on; `skip` only where they match.
    pub fn validate(&self) -> Result<()> {
        for (b, l) in self.layer_shapes().iter().enumerate() {
            for (k, (op, s)) in l.iter().enumerate() {
                if op.is_skip() && (s.stride != 1 || s.cin != s.cout) {
                    bail!(
                        "blocks[{b}].layers[{k}]: 'skip' needs equal input and output shapes, got {} → {} channels, stride {}",
                        s.cin,
                        s.cout,
                        s.stride
                    );
                }
            }
        }
        Ok(())
    }

    /// [c, h, w] after the stem.
    pub fn stem_out(&self) -> [usize; 3] {
        let mut s = [self.stem.channels, ceil_div(self.input[1], self.stem.stride), ceil_div(self.input[2], self.stem.stride)];
        for l in &self.stem.layers {
            s = [l.out, ceil_div(s[1], l.stride), ceil_div(s[2], l.stride)];
        }
        s
    }

    /// Per block, per layer: (op, shape) in the child network.
    pub fn layer_shapes(&self) -> Vec<Vec<(LayerOp, LayerShape)>> {
        let mut cur = self.stem_out();
        let mut out = Vec::new();
        for b in &self.blocks {
            let n = b.layers.len();
            let mut layers = Vec::new();
            for (l, &op) in b.layers.iter().enumerate() {
                let s = LayerShape {
                    cin: if l == 0 { cur[0] } else { b.width },
                    cout: if l + 1 == n { b.out } else { b.width },
                    stride: if l == 0 { b.stride } else { 1 },
                    h: cur[1],
                    w: cur[2],
                };
                let (h, w) = s.out_hw();
                cur = [s.cout, h, w];
                layers.push((op, s));
            }
            out.push(layers);
        }
        out
    }

    /// [c, h, w] entering the head.
    pub fn head_in(&self) -> [usize; 3] {
        let mut cur = self.stem_out();
        for b in &self.blocks {
            cur = [b.out, ceil_div(cur[1], b.stride), ceil_div(cur[2], b.stride)];
        }
        cur
    }
}

fn stem(b: &mut Builder, stem: &Stem, cin: usize, se: f64) -> String {
    let mut x = b.conv_bn("stem", "input", cin, stem.channels, stem.kernel, stem.stride, 1, true);
    let mut c = stem.channels;
    for (i, l) in stem.layers.iter().enumerate() {
        if let LayerOp::MbConv { kernel, expand } = l.op {
            x = b.mbconv(&format!("stem.layers.{i}"), &x, c, l.out, kernel, l.stride, expand, se);
        }
        c = l.out;
    }
    x
}

fn head(mut b: Builder, head: &Head, x: &str, c: usize, classes: usize) -> Graph {
    let (mut x, mut c) = (x.to_string(), c);
    if head.channels > 0 {
        x = b.conv_bn("head", &x, c, head.channels, 1, 1, 1, true);
        c = head.channels;
    }
    let logits = b.classifier("classifier", &x, c, classes);
    let mut g = b.finish(&[]);
    if let Some(n) = g.nodes.iter_mut().find(|n| n.name == logits) {
        n.outputs = vec!["logits".into()];
    }
    g.outputs.push(ValueInfo { name: "logits".into(), dtype: DType::F32, shape: None });
    g
}

/// The child network of `arch` with seeded initial weights: input `input`, output `logits`.
pub fn build_child(arch: &Arch, seed: u64) -> Result<Graph> {
    Ok(build_child_with_cuts(arch, seed)?.0)
}

/// [`build_child`] and the value each block ends in (the student's side of the teacher's cut
/// points: feature distillation taps them).
pub fn build_child_with_cuts(arch: &Arch, seed: u64) -> Result<(Graph, Vec<String>)> {
    arch.validate()?;
    let mut b = Builder::new(&arch.name, "input", arch.input, seed);
    let mut x = stem(&mut b, &arch.stem, arch.input[0], arch.se);
    let mut cuts = Vec::new();
    for (i, layers) in arch.layer_shapes().iter().enumerate() {
        for (l, (op, s)) in layers.iter().enumerate() {
            if let LayerOp::MbConv { kernel, expand } = *op {
                x = b.mbconv(&format!("blocks.{i}.{l}"), &x, s.cin, s.cout, kernel, s.stride, expand, arch.se);
            }
        }
        cuts.push(x.clone());
    }
    let mut g = head(b, &arch.head, &x, arch.head_in()[0], arch.classes);
    g.name = arch.name.clone();
    g.metadata.insert("dnas.arch".into(), serde_json::to_string(arch)?);
    g.check()?;
    Ok((g, cuts))
}

/// Params and MACs (batch 1) of `g` as exported (BatchNorm folded).
pub fn graph_cost(g: &Graph) -> Result<(u64, u64)> {
    let mut g = g.clone();
    crate::ir::fold::fold_batchnorm(&mut g)?;
    let facts = crate::ops::infer::infer(&g, &crate::ir::fixed_input_shapes(&g, 1)?)?;
    let c = crate::ops::cost::count(&g, &facts);
    Ok((c.params, c.macs))
}

/// (params, MACs) of one layer of the child network; `skip` is free.
pub fn layer_cost(op: LayerOp, s: &LayerShape, se: f64, cache: &mut HashMap<String, (u64, u64)>) -> Result<(u64, u64)> {
    let key = s.key(op);
    if let Some(c) = cache.get(&key) {
        return Ok(*c);
    }
    let c = match super::layer::layer_graph("layer", op, s, se, 0) {
        Some(g) => graph_cost(&g)?,
        None => (0, 0),
    };
    cache.insert(key, c);
    Ok(c)
}

/// (params, MACs) of what is outside the searched blocks: stem, head and classifier.
pub fn fixed_cost(stem_def: &Stem, head_def: &Head, input: [usize; 3], head_in: [usize; 3], classes: usize, se: f64) -> Result<(u64, u64)> {
    let (stem_g, head_g) = fixed_graphs(stem_def, head_def, input, head_in, classes, se);
    let s = graph_cost(&stem_g)?;
    let h = graph_cost(&head_g)?;
    Ok((s.0 + h.0, s.1 + h.1))
}

/// The parts outside the searched blocks as graphs: the stem (input `input`) and the head with
/// the classifier (input `features` of shape `head_in`).
pub fn fixed_graphs(stem_def: &Stem, head_def: &Head, input: [usize; 3], head_in: [usize; 3], classes: usize, se: f64) -> (Graph, Graph) {
    fixed_graphs_seeded(stem_def, head_def, input, head_in, classes, se, 0)
}

/// [`fixed_graphs`] with initial weights drawn from `seed` (the one-shot supernet trains them).
pub fn fixed_graphs_seeded(
    stem_def: &Stem,
    head_def: &Head,
    input: [usize; 3],
    head_in: [usize; 3],
    classes: usize,
    se: f64,
    seed: u64,
) -> (Graph, Graph) {
    let mut b = Builder::new("stem", "input", input, seed);
    let x = stem(&mut b, stem_def, input[0], se);
    let stem_g = b.finish(&[&x]);
    let b = Builder::new("head", "features", head_in, seed);
    (stem_g, head(b, head_def, "features", head_in[0], classes))
}
