//! `dnas teacher inspect`: what a teacher is made of and where it can be cut.

use std::collections::BTreeMap;

use anyhow::Result;
use serde::Serialize;

use super::cuts::{auto_cuts, named_cuts, CutPoint};
use crate::ir::{fixed_input_shapes, Graph};
use crate::ops::cost::{count, NodeCost};
use crate::ops::infer::infer;

#[derive(Debug, Serialize)]
pub struct Inspection {
    pub name: String,
    pub opset: i64,
    pub nodes: usize,
    pub op_histogram: BTreeMap<String, usize>,
    pub unsupported_ops: Vec<String>,
    pub input_shape: Vec<usize>,
    pub params: u64,
    /// At batch 1.
    pub macs: u64,
    pub layers: Vec<NodeCost>,
    pub cuts: Vec<CutPoint>,
    pub cuts_source: &'static str,
}

/// Inspects `g` at batch 1 (or the given input shape); `cuts` overrides the automatic cuts.
pub fn inspect(g: &Graph, input_shape: Option<Vec<usize>>, cuts: Option<&[String]>) -> Result<Inspection> {
    let mut op_histogram = BTreeMap::new();
    for n in &g.nodes {
        *op_histogram.entry(n.op.name().to_string()).or_insert(0) += 1;
    }
    let unsupported: Vec<String> = g.unsupported_ops().into_iter().map(|(op, node)| format!("{op} (node '{node}')")).collect();
    if !unsupported.is_empty() {
        anyhow::bail!("the model uses ops dnas does not support: {}", unsupported.join(", "));
    }
    let shapes = match input_shape {
        // The given shape replaces the declared one (whose symbolic dims need not resolve).
        Some(s) => {
            let mut g = g.clone();
            crate::teacher::input::set_input_shape(&mut g, &s)?;
            let mut shapes = fixed_input_shapes(&g, s[0])?;
            let name = g.data_inputs().next().map(|i| i.name.clone()).unwrap_or_default();
            shapes.insert(name, s);
            shapes
        }
        None => fixed_input_shapes(g, 1)?,
    };
    let input_shape = g.data_inputs().next().and_then(|i| shapes.get(&i.name)).cloned().unwrap_or_default();
    let facts = infer(g, &shapes)?;
    let cost = count(g, &facts);
    let (cuts, cuts_source) = match cuts {
        Some(names) => (named_cuts(g, &facts, names)?, "user"),
        // An NHWC teacher is cut as the search sees it (`layout::for_training`: fed NCHW, its
        // converter's input Transpose cancelled), so the indices are the ones a space uses.
        None if crate::teacher::input::InputConvention::of(g).nhwc && input_shape.len() == 4 => {
            let mut fixed = g.clone();
            crate::teacher::input::set_input_shape(&mut fixed, &input_shape)?;
            let adapted = crate::teacher::layout::for_training(fixed, "the model")?;
            let [n, h, w, c] = [input_shape[0], input_shape[1], input_shape[2], input_shape[3]];
            let mut shapes = fixed_input_shapes(&adapted, n)?;
            if let Some(i) = adapted.data_inputs().next() {
                shapes.insert(i.name.clone(), vec![n, c, h, w]);
            }
            (auto_cuts(&adapted, &infer(&adapted, &shapes)?)?, "auto, NCHW as the search feeds it")
        }
        None => (auto_cuts(g, &facts)?, "auto"),
    };
    Ok(Inspection {
        name: g.name.clone(),
        opset: g.opset,
        nodes: g.nodes.len(),
        op_histogram,
        unsupported_ops: unsupported,
        input_shape,
        params: cost.params,
        macs: cost.macs,
        layers: cost.per_node.into_iter().filter(|c| c.macs > 0 || c.params > 0).collect(),
        cuts,
        cuts_source,
    })
}
