//! IR → ONNX file. Writes IR 8 / opset 17 unless told otherwise (both always set explicitly),
//! raw-data initializers, only initializers that some node uses, a symbolic batch dimension.

use std::collections::HashSet;
use std::path::Path;

use anyhow::{Context, Result};
use prost::Message;

use super::{read::constant_values, DEFAULT_IR_VERSION, DEFAULT_OPSET};
use crate::ir::{Dim, Graph, ValueInfo};
use crate::ops;
use crate::proto::tensor::tensor_to_proto;
use crate::proto::{
    tensor_shape_proto::{dimension, Dimension},
    type_proto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, StringStringEntryProto, TensorShapeProto, TypeProto, ValueInfoProto,
};

#[derive(Clone, Debug)]
pub struct WriteOptions {
    pub ir_version: i64,
    pub opset: i64,
    /// Name written for the first axis of inputs and outputs (`None` keeps the IR's dims).
    pub batch_dim: Option<String>,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions { ir_version: DEFAULT_IR_VERSION, opset: DEFAULT_OPSET, batch_dim: Some("N".into()) }
    }
}

fn value_info(v: &ValueInfo, batch: Option<&str>) -> ValueInfoProto {
    let shape = v.shape.as_ref().map(|dims| TensorShapeProto {
        dim: dims
            .iter()
            .enumerate()
            .map(|(i, d)| Dimension {
                value: Some(match (i, d, batch) {
                    (0, _, Some(b)) => dimension::Value::DimParam(b.to_string()),
                    (_, Dim::Fixed(v), _) => dimension::Value::DimValue(*v as i64),
                    (_, Dim::Sym(s), _) => dimension::Value::DimParam(s.clone()),
                }),
                denotation: None,
            })
            .collect(),
    });
    ValueInfoProto {
        name: Some(v.name.clone()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor { elem_type: Some(v.dtype.onnx_code()), shape })),
            denotation: None,
        }),
        doc_string: None,
    }
}

/// Serialises `g` as an ONNX model.
pub fn write_model(g: &Graph, opts: &WriteOptions) -> Result<Vec<u8>> {
    g.check()?;
    let lowered = super::lower::for_opset(g, opts.opset)?;
    let g: &Graph = &lowered;
    let consts = constant_values(g);
    let lookup = |n: &str| consts.get(n).cloned();
    let mut nodes = Vec::with_capacity(g.nodes.len());
    let mut used: HashSet<&str> = HashSet::new();
    for n in &g.nodes {
        let (attribute, inputs) =
            ops::emit(&n.op, opts.opset, &n.inputs, &lookup).with_context(|| format!("node '{}' ({})", n.name, n.op.name()))?;
        nodes.push(NodeProto {
            input: inputs,
            output: n.outputs.clone(),
            name: Some(n.name.clone()),
            op_type: Some(n.op.name().to_string()),
            domain: None,
            attribute,
            doc_string: None,
        });
    }
    for n in &nodes {
        used.extend(n.input.iter().map(String::as_str));
    }
    used.extend(g.outputs.iter().map(|o| o.name.as_str()));
    let initializer = g.initializers.iter().filter(|(k, _)| used.contains(k.as_str())).map(|(k, t)| tensor_to_proto(k, t)).collect();
    let batch = opts.batch_dim.as_deref();
    let graph = GraphProto {
        node: nodes,
        name: Some(if g.name.is_empty() { "dnas".into() } else { g.name.clone() }),
        initializer,
        input: g.data_inputs().map(|v| value_info(v, batch)).collect(),
        output: g.outputs.iter().map(|v| value_info(v, batch)).collect(),
        ..Default::default()
    };
    let model = ModelProto {
        ir_version: Some(opts.ir_version),
        opset_import: vec![OperatorSetIdProto { domain: Some(String::new()), version: Some(opts.opset) }],
        producer_name: Some("dnas".into()),
        producer_version: Some(env!("CARGO_PKG_VERSION").into()),
        graph: Some(graph),
        metadata_props: g.metadata.iter().map(|(k, v)| StringStringEntryProto { key: Some(k.clone()), value: Some(v.clone()) }).collect(),
        ..Default::default()
    };
    Ok(model.encode_to_vec())
}

/// Writes `g` to `path` atomically (temporary file + rename).
pub fn write_file(g: &Graph, path: &Path, opts: &WriteOptions) -> Result<()> {
    let bytes = write_model(g, opts)?;
    crate::util::write_atomic(path, &bytes)
}
