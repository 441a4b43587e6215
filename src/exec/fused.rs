//! Convolution + activation as one oneDNN primitive, for the frozen executor on the CPU.
//!
//! `Conv → Relu` and `Conv → Clip(lo, hi)` (ReLU6 in every MobileNet/EfficientNet-Lite export)
//! otherwise run as a convolution that writes its output and a second pass that reads and
//! writes it again. oneDNN applies the activation as a post-op while the output tile is still
//! in registers; libtorch exposes that as `mkldnn::_convolution_pointwise` — the kernel PyTorch's
//! own inductor/freezing path uses on the CPU. It lives in libtorch's dispatcher only (not in
//! tch's `aten` bindings), so `shim/pointwise.cpp` (built by build.rs against the same libtorch)
//! calls it.
//! Measured on MobileNetV2, batch 8 at 224², 2 cores: tools/bench_teacher.sh.

use std::collections::HashMap;
use std::ffi::{c_char, CStr};

use anyhow::{bail, Result};
use tch::Tensor as T;
use torch_sys::C_tensor;

use crate::ir::{AutoPad, Graph, Op};

extern "C" {
    fn dnas_conv_pointwise(
        x: *const C_tensor,
        w: *const C_tensor,
        b: *const C_tensor,
        pad: *const i64,
        stride: *const i64,
        dil: *const i64,
        groups: i64,
        attr: *const c_char,
        lo: f64,
        hi: f64,
        err: *mut c_char,
        err_len: usize,
    ) -> *mut C_tensor;
}

/// Wraps a handle returned by the shim; null means the C++ side failed with `err`.
fn take(ptr: *mut C_tensor, err: &[c_char]) -> Result<T> {
    if ptr.is_null() {
        // SAFETY: the shim wrote a NUL-terminated message into `err` (snprintf).
        let msg = unsafe { CStr::from_ptr(err.as_ptr()) }.to_string_lossy().into_owned();
        bail!("oneDNN fused convolution: {}", msg.lines().next().unwrap_or("unknown error"));
    }
    // SAFETY: a fresh `new at::Tensor` from the shim; tch frees it on drop.
    Ok(unsafe { T::from_ptr(ptr) })
}

/// The activation folded into the convolution.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Act {
    Relu,
    /// Clip(lo, hi) with constant bounds.
    HardTanh(f64, f64),
}

/// One 2-D convolution with its activation.
pub struct FusedConv {
    weight: T,
    bias: Option<T>,
    pads: [i64; 2],
    strides: [i64; 2],
    dilations: [i64; 2],
    groups: i64,
    act: Act,
}

impl FusedConv {
    /// The convolution `op` with weight `w` (float32 [O, I/g, kh, kw]). `None` when the attributes
    /// are outside what the fused kernel takes (padding not explicit and symmetric, not 2-D).
    pub fn new(op: &Op, w: &T, bias: Option<&T>, act: Act) -> Result<Option<FusedConv>> {
        let Op::Conv(a) = op else { return Ok(None) };
        if w.dim() != 4 || w.kind() != tch::Kind::Float || a.auto_pad != AutoPad::NotSet {
            return Ok(None);
        }
        let two = |v: &[usize], default: i64| -> Option<[i64; 2]> {
            match v {
                [] => Some([default; 2]),
                [x, y] => Some([*x as i64, *y as i64]),
                _ => None,
            }
        };
        let pads = match a.pads.as_slice() {
            [] => [0, 0],
            [t, l, b, r] if t == b && l == r => [*t as i64, *l as i64],
            _ => return Ok(None),
        };
        let (Some(strides), Some(dilations)) = (two(&a.strides, 1), two(&a.dilations, 1)) else { return Ok(None) };
        let groups = a.group.max(1) as i64;
        // The weight stays a strided channels_last tensor: oneDNN reorders it per call for the
        // actual input shape (measured: packing once without knowing the batch made ResNet-18's
        // 3×3 convolutions 1.5× slower, a generic blocked→blocked reorder on every call).
        let weight = super::channels_last(&w.f_contiguous()?)?;
        Ok(Some(FusedConv { weight, bias: bias.map(|b| b.shallow_clone()), pads, strides, dilations, groups, act }))
    }

    /// act(conv(x)) for a float32 CPU input (any memory format; channels_last is fastest).
    pub fn run(&self, x: &T) -> Result<T> {
        let (attr, lo, hi) = match self.act {
            Act::Relu => (c"relu", 0.0, 0.0),
            Act::HardTanh(lo, hi) => (c"hardtanh", lo, hi),
        };
        let mut err = [0 as c_char; 512];
        let bias = self.bias.as_ref().map_or(std::ptr::null(), |b| b.as_ptr());
        // SAFETY: valid handles (bias may be null, which the shim maps to None); arrays of 2.
        let ptr = unsafe {
            dnas_conv_pointwise(
                x.as_ptr(),
                self.weight.as_ptr(),
                bias,
                self.pads.as_ptr(),
                self.strides.as_ptr(),
                self.dilations.as_ptr(),
                self.groups,
                attr.as_ptr(),
                lo,
                hi,
                err.as_mut_ptr(),
                err.len(),
            )
        };
        take(ptr, &err)
    }
}

/// Whether this libtorch has the oneDNN kernels (false: no fusion, nothing changes).
pub fn available() -> bool {
    tch::utils::has_mkldnn()
}

/// The fusable pairs of `graph`: convolution node → its activation node. The convolution's output
/// must feed only that activation (and not be a graph output); Clip bounds must be constants
/// (initializers or Constant nodes).
pub fn pairs(graph: &Graph, uses: &HashMap<String, usize>) -> HashMap<usize, (usize, Act)> {
    let producer = graph.producers();
    let constant = |name: &str| -> Option<f64> {
        let t = match graph.initializers.get(name) {
            Some(t) => t,
            None => match &graph.nodes[*producer.get(name)?].op {
                Op::Constant { value } => value,
                _ => return None,
            },
        };
        if t.numel() == 1 {
            t.scalar_f64().ok()
        } else {
            None
        }
    };
    let mut out = HashMap::new();
    for (a, node) in graph.nodes.iter().enumerate() {
        let Some(x) = node.inputs.first() else { continue };
        let Some(&c) = producer.get(x.as_str()) else { continue };
        if !matches!(graph.nodes[c].op, Op::Conv(_)) || uses.get(x.as_str()) != Some(&1) || node.outputs.len() != 1 {
            continue;
        }
        let act = match &node.op {
            Op::Relu => Act::Relu,
            Op::Clip => {
                let bound = |i: usize| node.inputs.get(i).filter(|n| !n.is_empty()).and_then(|n| constant(n));
                match (bound(1), bound(2)) {
                    (Some(lo), Some(hi)) => Act::HardTanh(lo, hi),
                    _ => continue,
                }
            }
            _ => continue,
        };
        out.insert(c, (a, act));
    }
    out
}
