//! TensorProto ⇄ IR tensor: what the op families (attribute tensors) and the ONNX reader and
//! writer (initializers) share.

use anyhow::{anyhow, bail, ensure, Result};

use super::{tensor_proto::DataLocation, TensorProto};
use crate::ir::{DType, Data, Tensor};

/// Encodes `t` as a TensorProto (raw_data) named `name` (unnamed when empty).
pub fn tensor_to_proto(name: &str, t: &Tensor) -> TensorProto {
    TensorProto {
        name: (!name.is_empty()).then(|| name.to_string()),
        dims: t.dims.iter().map(|&d| d as i64).collect(),
        data_type: Some(t.dtype.onnx_code()),
        raw_data: Some(t.to_raw_bytes()),
        ..Default::default()
    }
}

/// Decodes a TensorProto (raw_data or typed fields). External data is refused.
pub fn tensor_from_proto(t: &TensorProto) -> Result<Tensor> {
    if t.data_location() == DataLocation::External || !t.external_data.is_empty() {
        bail!(
            "tensor '{}' stores its data in an external file, which dnas does not read; re-save the model with all tensors inside",
            t.name()
        );
    }
    let dtype =
        DType::from_onnx(t.data_type()).ok_or_else(|| anyhow!("tensor '{}' has unsupported element type {}", t.name(), t.data_type()))?;
    let what = format!("tensor '{}'", t.name());
    let dims = crate::ir::limits::dims_from_i64(&what, &t.dims)?;
    // Checked before any decoding: a declared shape can be far larger than the data in the file.
    let n = crate::ir::limits::check_size(&what, &dims, dtype.size_of())?;
    if let Some(raw) = &t.raw_data {
        return Tensor::from_raw_bytes(dtype, dims, raw);
    }
    let data = match dtype {
        DType::F32 => Data::F32(t.float_data.clone()),
        DType::F64 => Data::F64(t.double_data.clone()),
        DType::I64 => Data::I64(t.int64_data.clone()),
        DType::I32 | DType::U8 | DType::I8 | DType::Bool => Data::I64(t.int32_data.iter().map(|&v| v as i64).collect()),
    };
    let len = match &data {
        Data::F32(v) => v.len(),
        Data::F64(v) => v.len(),
        Data::I64(v) => v.len(),
    };
    ensure!(len == n, "tensor '{}' has {} values for shape {:?} ({} expected)", t.name(), len, dims, n);
    Ok(Tensor { dtype, dims, data })
}
