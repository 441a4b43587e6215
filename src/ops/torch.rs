//! tch helpers the families' evaluation shares.

use anyhow::{anyhow, Result};
#[cfg(feature = "torch")]
use tch::Tensor as T;

pub use super::convert::{ints, kind_of, scalar, to_tch};

/// Required input #k.
pub fn req(ins: &[Option<T>], k: usize) -> Result<&T> {
    ins.get(k).and_then(|t| t.as_ref()).ok_or_else(|| anyhow!("missing required input #{k}"))
}

/// Optional input #k.
pub fn opt(ins: &[Option<T>], k: usize) -> Option<&T> {
    ins.get(k).and_then(|t| t.as_ref())
}

pub fn dims(t: &T) -> Vec<usize> {
    t.size().iter().map(|&d| d as usize).collect()
}

pub fn i64s(v: &[usize]) -> Vec<i64> {
    v.iter().map(|&x| x as i64).collect()
}

pub fn one(t: T) -> Result<Vec<T>> {
    Ok(vec![t])
}

/// Brings `b` onto `a`'s device (int constants live on the CPU; activations may be on CUDA).
pub fn same_device(a: &T, b: &T) -> Result<T> {
    Ok(if a.device() == b.device() { b.shallow_clone() } else { b.f_to_device(a.device())? })
}

/// torch's `pad` list (last axis first) from ONNX `[begin…, end…]` over the trailing axes.
pub fn torch_pads(onnx: &[i64]) -> Vec<i64> {
    let n = onnx.len() / 2;
    (0..n).rev().flat_map(|i| [onnx[i], onnx[n + i]]).collect()
}

/// Pads the spatial axes explicitly when begin ≠ end (torch takes symmetric padding only).
/// Returns the input to use and the symmetric padding left for the op itself.
pub fn split_pads(x: &T, pads: &[usize], fill: f64) -> Result<(T, Vec<i64>)> {
    let n = pads.len() / 2;
    if (0..n).all(|i| pads[i] == pads[n + i]) {
        return Ok((x.shallow_clone(), i64s(&pads[..n])));
    }
    let p = torch_pads(&i64s(pads));
    let padded = if fill == 0.0 { x.f_constant_pad_nd(&p)? } else { x.f_pad(&p, "constant", fill)? };
    Ok((padded, vec![0; n]))
}
