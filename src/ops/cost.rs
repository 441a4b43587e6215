//! Cost counters over the IR: parameters and multiply-accumulates per node, from inferred shapes
//! (each op's share comes from its family: `Family::macs`, `Family::param_inputs`).
//!
//! Conventions (those of torchvision/timm model cards): MACs count Conv and Gemm/MatMul only
//! (element-wise ops and pooling are free); parameters are the float initializers a node reads,
//! excluding BatchNorm running statistics, each initializer counted once (Constant-node values
//! count as initializers).

use std::collections::HashSet;

use crate::ir::{Facts, Graph};

#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct NodeCost {
    pub node: String,
    pub op: String,
    pub params: u64,
    pub macs: u64,
    pub output_shape: Vec<usize>,
}

#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Cost {
    pub params: u64,
    pub macs: u64,
    pub per_node: Vec<NodeCost>,
}

/// Counts parameters and MACs of `g` for the shapes in `facts` (MACs scale with the batch size
/// the facts were inferred for).
pub fn count(g: &Graph, facts: &Facts) -> Cost {
    let mut seen: HashSet<&str> = HashSet::new();
    // Weights some exporters (Paddle2ONNX) write as Constant nodes rather than initializers.
    let constants: std::collections::HashMap<&str, &crate::ir::Tensor> = g
        .nodes
        .iter()
        .filter_map(|n| match &n.op {
            crate::ir::Op::Constant { value } => n.outputs.first().map(|o| (o.as_str(), value)),
            _ => None,
        })
        .collect();
    let mut total = Cost::default();
    for n in &g.nodes {
        let shape = |i: usize| n.inputs.get(i).and_then(|v| facts.get(v)).map(|f| f.shape.clone()).unwrap_or_default();
        let out = n.outputs.first().and_then(|o| facts.get(o)).map(|f| f.shape.clone()).unwrap_or_default();
        let out_numel: u64 = out.iter().product::<usize>() as u64;
        let family = super::family(&n.op);
        let macs = family.macs(&n.op, &shape, out_numel);
        let param_inputs = family.param_inputs(&n.op);
        let mut params = 0;
        for &i in param_inputs {
            if let Some(name) = n.inputs.get(i) {
                if let Some(t) = g.initializers.get(name).or_else(|| constants.get(name.as_str()).copied()) {
                    if t.dtype.is_float() && seen.insert(name) {
                        params += t.numel() as u64;
                    }
                }
            }
        }
        total.params += params;
        total.macs += macs;
        total.per_node.push(NodeCost { node: n.name.clone(), op: n.op.name().to_string(), params, macs, output_shape: out });
    }
    total
}
