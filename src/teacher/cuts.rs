//! Automatic block cuts at a CNN's stage boundaries.
//!
//! A value can be a cut only if the network's whole state passes through it: after its
//! producer runs, it is the only non-constant value still needed later (an articulation point
//! of the data flow; shape side branches are constant once shapes are inferred). Among those,
//! runs with one shape are collapsed to their last value (conv → activation), points inside an
//! inverted-residual block (the input and output of a depthwise conv, seen through Pad) are
//! dropped, and what is left are block outputs. A stage boundary is the last block output before
//! the channel count or the spatial stride changes.

use std::collections::HashMap;

use anyhow::{anyhow, bail, Result};
use serde::Serialize;

use crate::ir::{Facts, Graph, Op};

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CutPoint {
    pub tensor: String,
    /// [N, C, H, W] at the inspected input shape.
    pub shape: Vec<usize>,
    pub channels: usize,
    /// Input height / feature height.
    pub stride: usize,
    /// Index of the node that produces it.
    pub node_index: usize,
}

/// Values that are the only live non-constant value right after their producer.
fn articulation_points(g: &Graph, facts: &Facts) -> Vec<(usize, String)> {
    let n = g.nodes.len();
    let mut last_use: HashMap<&str, usize> = HashMap::new();
    for (k, node) in g.nodes.iter().enumerate() {
        for i in &node.inputs {
            last_use.insert(i, k);
        }
    }
    for o in &g.outputs {
        last_use.insert(&o.name, n);
    }
    let is_const = |v: &str| facts.get(v).is_none_or(|f| f.value.is_some());
    let mut live: Vec<&str> = g.data_inputs().map(|i| i.name.as_str()).filter(|v| last_use.contains_key(v)).collect();
    let mut out = Vec::new();
    for (k, node) in g.nodes.iter().enumerate() {
        for o in &node.outputs {
            if !o.is_empty() && !is_const(o) && last_use.get(o.as_str()).is_some_and(|&u| u > k) {
                live.push(o);
            }
        }
        live.retain(|v| last_use.get(v).is_some_and(|&u| u > k));
        if live.len() == 1 && node.outputs.iter().any(|o| o == live[0]) {
            out.push((k, live[0].to_string()));
        }
    }
    out
}

fn input_height(g: &Graph, facts: &Facts) -> Result<usize> {
    let input = g.data_inputs().next().ok_or_else(|| anyhow!("the graph has no data input"))?;
    let f = facts.get(&input.name).ok_or_else(|| anyhow!("no shape for input '{}'", input.name))?;
    if f.shape.len() != 4 {
        bail!("automatic cuts need an image input [N, C, H, W]; input '{}' has shape {:?}", input.name, f.shape);
    }
    Ok(f.shape[2])
}

/// Is `v` (possibly through Pad nodes) the input of a depthwise convolution?
fn feeds_depthwise(g: &Graph, facts: &Facts, v: &str) -> bool {
    g.nodes.iter().filter(|n| n.inputs.first().is_some_and(|i| i == v)).any(|n| match &n.op {
        Op::Pad { .. } => n.outputs.first().is_some_and(|o| feeds_depthwise(g, facts, o)),
        Op::Conv(c) => c.group > 1 && facts.get(v).is_some_and(|f| f.shape.get(1) == Some(&c.group)),
        _ => false,
    })
}

fn is_depthwise(g: &Graph, facts: &Facts, node_index: usize) -> bool {
    match &g.nodes[node_index].op {
        Op::Conv(c) => c.group > 1 && facts.get(&g.nodes[node_index].inputs[0]).is_some_and(|f| f.shape.get(1) == Some(&c.group)),
        _ => false,
    }
}

/// Block outputs: candidate cut points, in network order.
pub fn block_outputs(g: &Graph, facts: &Facts) -> Result<Vec<CutPoint>> {
    let h0 = input_height(g, facts)?;
    let w0 = g.data_inputs().next().and_then(|i| facts.get(&i.name)).map_or(h0, |f| f.shape[3]);
    let mut groups: Vec<(CutPoint, bool)> = Vec::new();
    for (k, v) in articulation_points(g, facts) {
        let shape = facts[&v].shape.clone();
        // A feature map scales both spatial axes alike ([N, H, W, C] values of an NHWC
        // converter's preprocessing, read as NCHW, do not).
        if shape.len() != 4 || shape[2] <= 1 || h0 % shape[2] != 0 || shape[3] * h0 != w0 * shape[2] {
            continue;
        }
        let internal = is_depthwise(g, facts, k) || feeds_depthwise(g, facts, &v);
        let point = CutPoint { tensor: v, channels: shape[1], stride: h0 / shape[2], shape, node_index: k };
        match groups.last_mut() {
            Some((last, int)) if last.shape == point.shape && last.node_index + 8 > point.node_index => {
                *int |= internal;
                *last = point;
            }
            _ => groups.push((point, internal)),
        }
    }
    Ok(groups.into_iter().filter(|(_, internal)| !internal).map(|(p, _)| p).collect())
}

/// Stage boundaries: the last block output before channels or stride change.
pub fn auto_cuts(g: &Graph, facts: &Facts) -> Result<Vec<CutPoint>> {
    let blocks = block_outputs(g, facts)?;
    Ok(blocks
        .iter()
        .enumerate()
        .filter(|(i, p)| blocks.get(i + 1).is_none_or(|q| (q.channels, q.stride) != (p.channels, p.stride)))
        .map(|(_, p)| p.clone())
        .collect())
}

/// Cuts named by the user: each must be a 4-D value through which the whole network passes.
pub fn named_cuts(g: &Graph, facts: &Facts, names: &[String]) -> Result<Vec<CutPoint>> {
    let h0 = input_height(g, facts)?;
    let points = articulation_points(g, facts);
    names
        .iter()
        .map(|name| {
            let f = facts.get(name).ok_or_else(|| anyhow!("cut '{name}' is not a value of the graph"))?;
            let (k, _) = points.iter().find(|(_, v)| v == name).ok_or_else(|| {
                anyhow!("cut '{name}' is not a point the whole network passes through (a residual branch or side value is live across it)")
            })?;
            if f.shape.len() != 4 {
                bail!("cut '{name}' has shape {:?}; cuts must be feature maps [N, C, H, W]", f.shape);
            }
            Ok(CutPoint {
                tensor: name.clone(),
                shape: f.shape.clone(),
                channels: f.shape[1],
                stride: h0 / f.shape[2].max(1),
                node_index: *k,
            })
        })
        .collect()
}
