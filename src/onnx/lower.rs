//! Rewrites before writing, so that every canonical op is expressible in the target opset as
//! ONNX defines it there:
//! - a legacy (opset < 13) Softmax / LogSoftmax / Hardmax on an axis other than the last coerces its input
//!   to 2-D; for opset ≥ 13 it becomes `Flatten(axis) → Softmax(-1) → Reshape(Shape(x))`;
//! - an opset-13 Softmax / LogSoftmax written for opset < 13 keeps one node when its axis is the
//!   last one (where both definitions agree); the ranks come from shape inference;
//! - a reduction's axes become a constant input where the opset takes them so (ReduceSum ≥ 13,
//!   the other reductions ≥ 18);
//! - Resize at opsets 11–12 requires its roi and scales inputs: empty constants fill them.

use std::borrow::Cow;

use anyhow::Result;

use crate::ir::{Graph, Node, Op};

/// `g` as it must be written for `opset` (borrowed when nothing changes).
pub fn for_opset(g: &Graph, opset: i64) -> Result<Cow<'_, Graph>> {
    let softmax = |op: &Op| match op {
        Op::Softmax { axis, legacy } | Op::LogSoftmax { axis, legacy } | Op::Hardmax { axis, legacy } => Some((*axis, *legacy)),
        _ => None,
    };
    let reduce_axes = |n: &Node| match &n.op {
        Op::ReduceMean { axes: Some(a), .. } | Op::Reduce { axes: Some(a), .. }
            if crate::ops::reduce::axes_input_from(&n.op).is_some_and(|from| opset >= from) && n.inputs.len() < 2 =>
        {
            Some(a.clone())
        }
        _ => None,
    };
    let needs_softmax = g.nodes.iter().any(|n| softmax(&n.op).is_some_and(|(axis, legacy)| axis != -1 && (legacy == (opset >= 13))));
    let needs_axes = g.nodes.iter().any(|n| reduce_axes(n).is_some());
    let resize_fill = |n: &Node| {
        matches!(n.op, Op::Resize { .. }) && (11..13).contains(&opset) && (1..3).any(|k| n.inputs.get(k).is_none_or(|s| s.is_empty()))
    };
    let needs_fill = g.nodes.iter().any(resize_fill);
    if !needs_softmax && !needs_axes && !needs_fill {
        return Ok(Cow::Borrowed(g));
    }
    // Ranks, when the graph's inputs have fixed shapes (symbolic batch = 1).
    let facts = crate::ir::fixed_input_shapes(g, 1).ok().and_then(|s| crate::ops::infer::infer(g, &s).ok());
    let mut out = g.clone();
    out.nodes.clear();
    for n in &g.nodes {
        if resize_fill(n) {
            let mut n = n.clone();
            while n.inputs.len() < 3 {
                n.inputs.push(String::new());
            }
            for (k, what) in [(1, "roi"), (2, "scales")] {
                if n.inputs[k].is_empty() {
                    let name = format!("{}.{what}", n.name);
                    out.initializers.insert(name.clone(), crate::ir::Tensor::f32(vec![0], vec![]));
                    n.inputs[k] = name;
                }
            }
            out.nodes.push(n);
            continue;
        }
        if let Some(axes) = reduce_axes(n) {
            let name = format!("{}.axes", n.name);
            out.initializers.insert(name.clone(), crate::ir::Tensor::i64(vec![axes.len()], axes));
            let mut n = n.clone();
            n.inputs.push(name);
            out.nodes.push(n);
            continue;
        }
        let Some((axis, legacy)) = softmax(&n.op).filter(|(axis, _)| *axis != -1) else {
            out.nodes.push(n.clone());
            continue;
        };
        let with = |axis: i64, legacy: bool| match n.op {
            Op::LogSoftmax { .. } => Op::LogSoftmax { axis, legacy },
            Op::Hardmax { .. } => Op::Hardmax { axis, legacy },
            _ => Op::Softmax { axis, legacy },
        };
        let rank = facts.as_ref().and_then(|f| n.inputs.first().and_then(|i| f.get(i))).map(|f| f.shape.len() as i64);
        let is_last = rank.is_some_and(|r| axis == r - 1 || axis == -1);
        match (legacy, opset >= 13) {
            // Both definitions agree on the last axis.
            _ if is_last => out.nodes.push(Node { op: with(-1, opset < 13), ..n.clone() }),
            (true, true) => {
                let (x, y) = (n.inputs[0].clone(), n.outputs[0].clone());
                let (shape, flat, soft) = (format!("{y}.shape"), format!("{y}.flat"), format!("{y}.soft"));
                out.nodes.push(Node {
                    name: format!("{}.shape", n.name),
                    op: Op::Shape { start: 0, end: None },
                    inputs: vec![x.clone()],
                    outputs: vec![shape.clone()],
                });
                out.nodes.push(Node {
                    name: format!("{}.flatten", n.name),
                    op: Op::Flatten { axis },
                    inputs: vec![x],
                    outputs: vec![flat.clone()],
                });
                out.nodes.push(Node { name: n.name.clone(), op: with(-1, false), inputs: vec![flat], outputs: vec![soft.clone()] });
                out.nodes.push(Node {
                    name: format!("{}.reshape", n.name),
                    op: Op::Reshape { allowzero: false },
                    inputs: vec![soft, shape],
                    outputs: vec![y],
                });
            }
            // Not the last axis, or rank unknown: the emitter refuses it by name.
            _ => out.nodes.push(n.clone()),
        }
    }
    Ok(Cow::Owned(out))
}
