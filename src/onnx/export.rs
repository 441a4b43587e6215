//! Export of a trained IR graph: BatchNorm folded into convolutions, metadata attached, written
//! through the IR writer (IR 8 / opset 17 unless told otherwise) atomically.

use std::path::Path;

use anyhow::Result;

use super::{write_model, WriteOptions};
use crate::ir::fold::fold_batchnorm;
use crate::ir::Graph;

/// Writes `g` (with `metadata` added) to `path`; returns the bytes written.
pub fn export(g: &Graph, path: &Path, metadata: &[(&str, String)], opts: &WriteOptions) -> Result<Vec<u8>> {
    let mut g = g.clone();
    fold_batchnorm(&mut g)?;
    g.metadata.insert("dnas.version".into(), env!("CARGO_PKG_VERSION").into());
    for (k, v) in metadata {
        g.metadata.insert(k.to_string(), v.clone());
    }
    let bytes = write_model(&g, opts)?;
    crate::util::write_atomic(path, &bytes)?;
    Ok(bytes)
}
