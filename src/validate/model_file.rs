//! Reading an ONNX model to validate or time: its bytes (what the runtimes load), its IR (what
//! the cost counters read) and its input shape at batch 1; every error names the file.

use std::path::Path;

use anyhow::{Context, Result};

use crate::ir::Graph;

/// The input shape of `g` at batch 1.
pub fn input_shape_batch1(g: &Graph) -> Result<Vec<usize>> {
    let shapes = crate::ir::fixed_input_shapes(g, 1)?;
    let input = g.data_inputs().next().context("the model has no input")?;
    shapes.get(&input.name).cloned().context("the model's input has no shape")
}

/// The bytes, IR and batch-1 input shape of the model at `p`.
pub fn read_model_file(p: &Path) -> Result<(Vec<u8>, Graph, Vec<usize>)> {
    let bytes = std::fs::read(p).with_context(|| format!("cannot read '{}'", p.display()))?;
    let graph = crate::onnx::read_model(&bytes).with_context(|| format!("'{}'", p.display()))?;
    let shape = input_shape_batch1(&graph).with_context(|| format!("'{}'", p.display()))?;
    Ok((bytes, graph, shape))
}
