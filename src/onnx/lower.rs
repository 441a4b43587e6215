//! Rewrites before writing, so that every canonical op is expressible in the target opset as
//! ONNX defines it there:
//! - a legacy (opset < 13) Softmax / LogSoftmax on an axis other than the last coerces its input
//!   to 2-D; for opset ≥ 13 it becomes `Flatten(axis) → Softmax(-1) → Reshape(Shape(x))`;
//! - an opset-13 Softmax / LogSoftmax written for opset < 13 keeps one node when its axis is the
//!   last one (where both definitions agree); the ranks come from shape inference.

use std::borrow::Cow;

use anyhow::Result;

use crate::ir::{Graph, Node, Op};

/// `g` as it must be written for `opset` (borrowed when nothing changes).
pub fn for_opset(g: &Graph, opset: i64) -> Result<Cow<'_, Graph>> {
    let softmax = |op: &Op| match op {
        Op::Softmax { axis, legacy } | Op::LogSoftmax { axis, legacy } => Some((*axis, *legacy)),
        _ => None,
    };
    let needs = g.nodes.iter().any(|n| softmax(&n.op).is_some_and(|(axis, legacy)| axis != -1 && (legacy == (opset >= 13))));
    if !needs {
        return Ok(Cow::Borrowed(g));
    }
    // Ranks, when the graph's inputs have fixed shapes (symbolic batch = 1).
    let facts = crate::ir::fixed_input_shapes(g, 1).ok().and_then(|s| crate::exec::infer(g, &s).ok());
    let mut out = g.clone();
    out.nodes.clear();
    for n in &g.nodes {
        let Some((axis, legacy)) = softmax(&n.op).filter(|(axis, _)| *axis != -1) else {
            out.nodes.push(n.clone());
            continue;
        };
        let with = |axis: i64, legacy: bool| match n.op {
            Op::LogSoftmax { .. } => Op::LogSoftmax { axis, legacy },
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
