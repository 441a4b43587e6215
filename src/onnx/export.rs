//! Export of a trained IR graph: BatchNorm folded into convolutions, Identity/Dropout and dead
//! nodes and initializers removed, output shapes declared, metadata attached, written through the
//! IR writer (IR 8 / opset 17 unless told otherwise) atomically.

use std::path::Path;

use anyhow::Result;

use super::{write_model, WriteOptions};
use crate::ir::fold::{fold_batchnorm, strip_for_inference};
use crate::ir::Graph;

/// Writes `g` (with `metadata` added) to `path` with a symbolic batch; returns the bytes written.
pub fn export(g: &Graph, path: &Path, metadata: &[(&str, String)], opts: &WriteOptions) -> Result<Vec<u8>> {
    export_with_batch(g, path, metadata, opts, None)
}

/// As [`export`]; `fixed_batch` pins the batch dimension (mobile EPs such as NNAPI and CoreML
/// want fixed shapes), otherwise it is symbolic (`opts.batch_dim`).
pub fn export_with_batch(
    g: &Graph,
    path: &Path,
    metadata: &[(&str, String)],
    opts: &WriteOptions,
    fixed_batch: Option<usize>,
) -> Result<Vec<u8>> {
    let bytes = deploy_bytes(g, metadata, opts, fixed_batch)?;
    crate::util::write_atomic(path, &bytes)?;
    Ok(bytes)
}

/// The deployable ONNX bytes of `g` (what [`export`] writes), in memory.
pub fn deploy_bytes(g: &Graph, metadata: &[(&str, String)], opts: &WriteOptions, fixed_batch: Option<usize>) -> Result<Vec<u8>> {
    let mut g = g.clone();
    let mut opts = opts.clone();
    if let Some(n) = fixed_batch {
        for v in g.inputs.iter_mut().chain(g.outputs.iter_mut()) {
            if let Some(first) = v.shape.as_mut().and_then(|s| s.first_mut()) {
                *first = crate::ir::Dim::Fixed(n);
            }
        }
        opts.batch_dim = None;
    }
    fold_batchnorm(&mut g)?;
    strip_for_inference(&mut g);
    // Declared output shapes (onnx.checker's full check wants them); the writer makes the batch symbolic.
    if g.outputs.iter().any(|o| o.shape.is_none()) {
        let facts = crate::ops::infer::infer(&g, &crate::ir::fixed_input_shapes(&g, 1)?)?;
        for o in g.outputs.iter_mut().filter(|o| o.shape.is_none()) {
            if let Some(f) = facts.get(&o.name) {
                o.shape = Some(f.shape.iter().map(|&d| crate::ir::Dim::Fixed(d)).collect());
            }
        }
    }
    g.metadata.insert("dnas.version".into(), env!("CARGO_PKG_VERSION").into());
    for (k, v) in metadata {
        g.metadata.insert(k.to_string(), v.clone());
    }
    write_model(&g, &opts)
}
