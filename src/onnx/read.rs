//! ONNX file → IR. Every error names the file and, where it applies, the node, op or tensor.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use anyhow::{anyhow, bail, ensure, Context, Result};
use prost::Message;

use crate::ir::{DType, Dim, Graph, Node, Op, Tensor, ValueInfo};
use crate::ops;
use crate::proto::tensor::tensor_from_proto;
use crate::proto::{ModelProto, ValueInfoProto};

/// Reads and imports an ONNX file.
pub fn read_file(path: &Path) -> Result<Graph> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read '{}'", path.display()))?;
    read_model(&bytes).with_context(|| format!("'{}'", path.display()))
}

/// Imports an ONNX model from bytes.
pub fn read_model(bytes: &[u8]) -> Result<Graph> {
    let model = ModelProto::decode(bytes).map_err(|e| anyhow!("not a valid ONNX protobuf ({e}); the file may be truncated or not ONNX"))?;
    import(&model)
}

fn import(model: &ModelProto) -> Result<Graph> {
    let g = model.graph.as_ref().ok_or_else(|| anyhow!("the model has no graph (not an ONNX model?)"))?;
    let opset = model
        .opset_import
        .iter()
        .find(|o| o.domain().is_empty() || o.domain() == "ai.onnx")
        .map(|o| o.version())
        .ok_or_else(|| anyhow!("the model imports no default-domain opset"))?;
    super::validity::check_opset(opset)?;
    ensure!(g.sparse_initializer.is_empty(), "sparse initializers are not supported");

    let mut initializers = BTreeMap::new();
    for t in &g.initializer {
        let name = t.name().to_string();
        ensure!(!name.is_empty(), "an initializer has no name");
        let tensor = tensor_from_proto(t).with_context(|| format!("initializer '{name}'"))?;
        ensure!(!initializers.contains_key(&name), "initializer '{name}' is defined twice");
        initializers.insert(name, tensor);
    }
    let inputs = g.input.iter().map(value_info).collect::<Result<Vec<_>>>()?;
    let outputs = g.output.iter().map(value_info).collect::<Result<Vec<_>>>()?;

    let mut nodes = Vec::with_capacity(g.node.len());
    let mut names = HashSet::new();
    for (i, n) in g.node.iter().enumerate() {
        let mut name = if n.name().is_empty() { format!("{}_{}", n.op_type(), i) } else { n.name().to_string() };
        while !names.insert(name.clone()) {
            name = format!("{name}_{i}");
        }
        let mut node_inputs = n.input.clone();
        // Trailing empty names are "not given"; drop them so arity checks see the real count.
        while node_inputs.last().is_some_and(|s| s.is_empty()) {
            node_inputs.pop();
        }
        ensure!(n.output.iter().any(|o| !o.is_empty()), "node '{}' ({}) has no output", name, n.op_type());
        let named = crate::proto::NodeProto { name: Some(name.clone()), ..n.clone() };
        let op =
            ops::parse(&named, opset, &mut node_inputs, &mut initializers).with_context(|| format!("node '{}' ({})", name, n.op_type()))?;
        nodes.push(Node { name, op, inputs: node_inputs, outputs: n.output.clone() });
    }
    let metadata = model.metadata_props.iter().map(|p| (p.key().to_string(), p.value().to_string())).collect();
    let mut graph = Graph { name: g.name().to_string(), inputs, outputs, initializers, nodes, opset, metadata };
    super::validity::check(&graph)?;
    resolve_reduce_axes(&mut graph)?;
    drop_unread_dropout_masks(&mut graph)?;
    graph.toposort()?;
    Ok(graph)
}

/// Dropout's mask output (opsets < 12 always declare it) is dropped when nothing reads it;
/// a mask that some node or graph output reads is refused by name.
fn drop_unread_dropout_masks(g: &mut Graph) -> Result<()> {
    let read: HashSet<String> =
        g.nodes.iter().flat_map(|n| n.inputs.iter().cloned()).chain(g.outputs.iter().map(|o| o.name.clone())).collect();
    for n in &mut g.nodes {
        if matches!(n.op, Op::Dropout) && n.outputs.len() > 1 {
            if let Some(mask) = n.outputs[1..].iter().find(|m| !m.is_empty() && read.contains(*m)) {
                bail!("node '{}' (Dropout): its mask output '{mask}' is read, which inference has no use for (not supported)", n.name);
            }
            n.outputs.truncate(1);
        }
    }
    Ok(())
}

/// Reductions take axes as an input from ReduceSum's opset 13 / the others' 18; the IR keeps
/// them as an attribute.
fn resolve_reduce_axes(g: &mut Graph) -> Result<()> {
    let consts = constant_values(g);
    for n in &mut g.nodes {
        let op_name = n.op.name().to_string();
        if let Op::ReduceMean { axes, .. } | Op::Reduce { axes, .. } = &mut n.op {
            if n.inputs.len() > 1 && !n.inputs[1].is_empty() {
                let t = consts
                    .get(&n.inputs[1])
                    .ok_or_else(|| anyhow!("node '{}' ({op_name}): axes input '{}' must be constant", n.name, n.inputs[1]))?;
                *axes = Some(t.as_i64s()?);
                n.inputs.truncate(1);
            }
        }
    }
    Ok(())
}

/// Initializers plus the values of `Constant` nodes.
pub fn constant_values(g: &Graph) -> BTreeMap<String, Tensor> {
    let mut m = g.initializers.clone();
    for n in &g.nodes {
        if let Op::Constant { value } = &n.op {
            m.insert(n.outputs[0].clone(), value.clone());
        }
    }
    m
}

fn value_info(v: &ValueInfoProto) -> Result<ValueInfo> {
    let name = v.name().to_string();
    let tt = match v.r#type.as_ref().and_then(|t| t.value.as_ref()) {
        Some(crate::proto::type_proto::Value::TensorType(tt)) => tt,
        None => bail!("value '{name}' has no tensor type"),
    };
    let dtype =
        DType::from_onnx(tt.elem_type()).ok_or_else(|| anyhow!("value '{name}' has unsupported element type {}", tt.elem_type()))?;
    let shape = tt.shape.as_ref().map(|s| {
        s.dim
            .iter()
            .enumerate()
            .map(|(i, d)| match &d.value {
                Some(crate::proto::tensor_shape_proto::dimension::Value::DimValue(v)) if *v >= 0 => Dim::Fixed(*v as usize),
                Some(crate::proto::tensor_shape_proto::dimension::Value::DimParam(p)) => Dim::Sym(p.clone()),
                _ => Dim::Sym(format!("{name}_{i}")),
            })
            .collect()
    });
    Ok(ValueInfo { name, dtype, shape })
}

#[cfg(test)]
mod tests {
    use crate::proto::{
        tensor_shape_proto::{dimension, Dimension},
        type_proto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorShapeProto, TypeProto, ValueInfoProto,
    };
    use prost::Message;

    fn vi(name: &str) -> ValueInfoProto {
        let dims = [1, 4].iter().map(|&d| Dimension { value: Some(dimension::Value::DimValue(d)), denotation: None }).collect();
        ValueInfoProto {
            name: Some(name.into()),
            r#type: Some(TypeProto {
                value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                    elem_type: Some(1),
                    shape: Some(TensorShapeProto { dim: dims }),
                })),
                denotation: None,
            }),
            doc_string: None,
        }
    }

    /// x → Dropout (opset 10: a mask output) → y; `read_mask`: an Identity reads the mask.
    fn dropout_model(read_mask: bool) -> Vec<u8> {
        let mut node = vec![NodeProto {
            input: vec!["x".into()],
            output: vec!["y".into(), "mask".into()],
            name: Some("drop".into()),
            op_type: Some("Dropout".into()),
            ..Default::default()
        }];
        let mut output = vec![vi("y")];
        if read_mask {
            node.push(NodeProto {
                input: vec!["mask".into()],
                output: vec!["m2".into()],
                name: Some("use".into()),
                op_type: Some("Identity".into()),
                ..Default::default()
            });
            output.push(vi("m2"));
        }
        let graph = GraphProto { node, name: Some("g".into()), input: vec![vi("x")], output, ..Default::default() };
        let model = ModelProto {
            ir_version: Some(5),
            opset_import: vec![OperatorSetIdProto { domain: Some(String::new()), version: Some(10) }],
            graph: Some(graph),
            ..Default::default()
        };
        model.encode_to_vec()
    }

    #[test]
    fn an_unread_dropout_mask_is_dropped_and_a_read_one_is_refused_by_name() {
        let g = super::read_model(&dropout_model(false)).unwrap();
        assert_eq!(g.nodes[0].outputs, ["y"]);
        let err = super::read_model(&dropout_model(true)).unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains("'drop'") && msg.contains("mask output 'mask'"), "{msg}");
    }
}
