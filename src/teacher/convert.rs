//! `dnas teacher convert`: the IR as JSON plus the weights as safetensors (PyTorch reads them
//! with `safetensors.torch.load_file`).

use std::path::Path;

use anyhow::{Context, Result};
use serde_json::json;

use crate::exec::{infer, to_tch};
use crate::ir::{fixed_input_shapes, Dim, Graph};
use crate::util::write_atomic;

/// Writes `DIR/graph.json` (nodes, ops with attributes, value shapes at batch 1) and
/// `DIR/weights.safetensors` (every initializer, by its ONNX name).
pub fn convert(g: &Graph, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create '{}'", dir.display()))?;
    let facts = infer(g, &fixed_input_shapes(g, 1)?)?;
    let dims = |d: &Option<Vec<Dim>>| -> serde_json::Value {
        match d {
            None => serde_json::Value::Null,
            Some(d) => d
                .iter()
                .map(|d| match d {
                    Dim::Fixed(v) => json!(v),
                    Dim::Sym(s) => json!(s),
                })
                .collect(),
        }
    };
    let nodes: Vec<_> = g
        .nodes
        .iter()
        .map(|n| {
            let shapes: Vec<_> = n.outputs.iter().map(|o| facts.get(o).map(|f| f.shape.clone())).collect();
            json!({"name": n.name, "op": n.op, "inputs": n.inputs, "outputs": n.outputs, "output_shapes_batch1": shapes})
        })
        .collect();
    let doc = json!({
        "format": "dnas-ir/1",
        "name": g.name,
        "opset": g.opset,
        "inputs": g.data_inputs().map(|i| json!({"name": i.name, "dtype": i.dtype, "shape": dims(&i.shape)})).collect::<Vec<_>>(),
        "outputs": g.outputs.iter().map(|i| json!({"name": i.name, "dtype": i.dtype, "shape": dims(&i.shape)})).collect::<Vec<_>>(),
        "initializers": g.initializers.iter().map(|(k, t)| json!({"name": k, "dtype": t.dtype, "dims": t.dims})).collect::<Vec<_>>(),
        "nodes": nodes,
        "metadata": g.metadata,
    });
    write_atomic(&dir.join("graph.json"), serde_json::to_string_pretty(&doc)?.as_bytes())?;
    let tensors: Vec<(String, tch::Tensor)> =
        g.initializers.iter().map(|(k, t)| Ok((k.clone(), to_tch(t, tch::Device::Cpu)?))).collect::<Result<_>>()?;
    let tmp = dir.join(".weights.safetensors.tmp");
    tch::Tensor::write_safetensors(&tensors, &tmp).with_context(|| format!("cannot write '{}'", tmp.display()))?;
    std::fs::rename(&tmp, dir.join("weights.safetensors"))?;
    Ok(())
}
