//! One ONNX node evaluated with libtorch. Every call uses tch's fallible `f_*` API, so a bad
//! model gives an error (wrapped with the node's name by the caller), never a panic.

use anyhow::{anyhow, bail, ensure, Result};
use tch::{Kind, Tensor as T};

use super::convert::{ints, kind_of, scalar, to_tch};
use crate::ir::infer::{norm_axis, reshape_target, slice_indices, Window};
use crate::ir::{Op, PadMode};

fn req(ins: &[Option<T>], k: usize) -> Result<&T> {
    ins.get(k).and_then(|t| t.as_ref()).ok_or_else(|| anyhow!("missing required input #{k}"))
}

fn dims(t: &T) -> Vec<usize> {
    t.size().iter().map(|&d| d as usize).collect()
}

fn i64s(v: &[usize]) -> Vec<i64> {
    v.iter().map(|&x| x as i64).collect()
}

/// Brings `b` onto `a`'s device (int constants live on the CPU; activations may be on CUDA).
fn same_device(a: &T, b: &T) -> Result<T> {
    Ok(if a.device() == b.device() { b.shallow_clone() } else { b.f_to_device(a.device())? })
}

/// torch's `pad` list (last axis first) from ONNX `[begin…, end…]` over the trailing axes.
fn torch_pads(onnx: &[i64]) -> Vec<i64> {
    let n = onnx.len() / 2;
    (0..n).rev().flat_map(|i| [onnx[i], onnx[n + i]]).collect()
}

/// Pads the spatial axes explicitly when begin ≠ end (torch takes symmetric padding only).
/// Returns the input to use and the symmetric padding left for the op itself.
fn split_pads(x: &T, pads: &[usize], fill: f64) -> Result<(T, Vec<i64>)> {
    let n = pads.len() / 2;
    if (0..n).all(|i| pads[i] == pads[n + i]) {
        return Ok((x.shallow_clone(), i64s(&pads[..n])));
    }
    let p = torch_pads(&i64s(pads));
    let padded = if fill == 0.0 { x.f_constant_pad_nd(&p)? } else { x.f_pad(&p, "constant", fill)? };
    Ok((padded, vec![0; n]))
}

/// Clip's optional `min` and `max` inputs as numbers.
fn clip_bounds(ins: &[Option<T>]) -> Result<(Option<f64>, Option<f64>)> {
    let bound = |k: usize| ins.get(k).and_then(|t| t.as_ref()).map(scalar).transpose();
    Ok((bound(1)?, bound(2)?))
}

/// Whether `b` broadcasts onto `a`'s shape without changing it (so `a op= b` is `a op b`).
fn broadcasts_into(b: &T, a: &T) -> bool {
    let (a, b) = (a.size(), b.size());
    b.len() <= a.len() && b.iter().rev().zip(a.iter().rev()).all(|(&x, &y)| x == y || x == 1)
}

/// `op` evaluated into input `pos`'s memory (see the in-place plan in [`super::Plan`]). `None`
/// when this call cannot be done in place — broadcasting would grow that input, the kinds differ,
/// or a Clip has no bounds — and the caller evaluates it normally.
pub fn eval_inplace(op: &Op, ins: &[Option<T>], pos: usize) -> Result<Option<T>> {
    let mut x = req(ins, pos)?.shallow_clone();
    if !x.is_floating_point() {
        return Ok(None);
    }
    Ok(Some(match op {
        Op::Relu => x.f_relu_()?,
        Op::Sigmoid => x.f_sigmoid_()?,
        Op::HardSwish => x.f_hardswish_()?,
        Op::Clip => {
            let (lo, hi) = clip_bounds(ins)?;
            match (lo, hi) {
                (Some(l), Some(h)) => x.f_clamp_(l, h)?,
                (Some(l), None) => x.f_clamp_min_(l)?,
                (None, Some(h)) => x.f_clamp_max_(h)?,
                (None, None) => return Ok(None),
            }
        }
        Op::Add | Op::Sub | Op::Mul | Op::Div => {
            let other = same_device(&x, req(ins, 1 - pos)?)?;
            if other.kind() != x.kind() || !broadcasts_into(&other, &x) || (pos == 1 && !matches!(op, Op::Add | Op::Mul)) {
                return Ok(None);
            }
            match op {
                Op::Add => x.f_add_(&other)?,
                Op::Sub => x.f_sub_(&other)?,
                Op::Mul => x.f_mul_(&other)?,
                _ => x.f_div_(&other)?,
            }
        }
        _ => return Ok(None),
    }))
}

pub fn eval(op: &Op, ins: &[Option<T>]) -> Result<Vec<T>> {
    let x = || req(ins, 0);
    let one = |t: T| Ok(vec![t]);
    match op {
        Op::Conv(a) => {
            let (xt, w) = (x()?, req(ins, 1)?);
            let (xd, wd) = (dims(xt), dims(w));
            ensure!(xd.len() >= 3 && wd.len() == xd.len(), "input {:?} and weight {:?} must be [N, C, spatial…] of one rank", xd, wd);
            let win = Window::conv(a, &xd[2..], &wd)?;
            let (xp, pad) = split_pads(xt, &win.pads, 0.0)?;
            let bias = ins.get(2).and_then(|b| b.as_ref());
            let n = win.kernel.len();
            one(xp.f_convolution(w, bias, i64s(&win.strides), &pad, i64s(&win.dilations), false, vec![0; n], a.group.max(1) as i64)?)
        }
        Op::BatchNormalization { epsilon } => {
            let p = |k| req(ins, k).map(Some);
            one(x()?.f_batch_norm(p(1)?, p(2)?, p(3)?, p(4)?, false, 0.0, *epsilon as f64, true)?)
        }
        Op::Relu => one(x()?.f_relu()?),
        Op::Sigmoid => one(x()?.f_sigmoid()?),
        Op::HardSwish => one(x()?.f_hardswish()?),
        Op::HardSigmoid { alpha, beta } => one((x()? * (*alpha as f64) + (*beta as f64)).f_clamp(0.0, 1.0)?),
        Op::Clip => {
            let (lo, hi) = clip_bounds(ins)?;
            one(match (lo, hi) {
                (Some(l), Some(h)) => x()?.f_clamp(l, h)?,
                (Some(l), None) => x()?.f_clamp_min(l)?,
                (None, Some(h)) => x()?.f_clamp_max(h)?,
                (None, None) => x()?.shallow_clone(),
            })
        }
        Op::Add | Op::Sub | Op::Mul | Op::Div => {
            let a = x()?;
            let b = same_device(a, req(ins, 1)?)?;
            one(match op {
                Op::Add => a.f_add(&b)?,
                Op::Sub => a.f_sub(&b)?,
                Op::Mul => a.f_mul(&b)?,
                _ if a.is_floating_point() => a.f_div(&b)?,
                _ => a.f_div_tensor_mode(&b, "trunc")?,
            })
        }
        Op::Gemm { alpha, beta, trans_a, trans_b } => {
            let a = if *trans_a { x()?.f_tr()? } else { x()?.shallow_clone() };
            let b = if *trans_b { req(ins, 1)?.f_tr()? } else { req(ins, 1)?.shallow_clone() };
            let mut y = a.f_matmul(&b)?;
            if *alpha != 1.0 {
                y *= *alpha as f64;
            }
            if let Some(c) = ins.get(2).and_then(|c| c.as_ref()) {
                y = if *beta == 1.0 { y.f_add(c)? } else { y.f_add(&(c * (*beta as f64)))? };
            }
            one(y)
        }
        Op::MatMul => one(x()?.f_matmul(req(ins, 1)?)?),
        Op::GlobalAveragePool => {
            let r = x()?.dim() as i64;
            if r == 4 {
                // libtorch's pooling kernel (channels_last aware, forward and backward).
                one(x()?.f_adaptive_avg_pool2d([1, 1])?)
            } else {
                one(x()?.f_mean_dim((2..r).collect::<Vec<_>>().as_slice(), true, None::<Kind>)?)
            }
        }
        Op::AveragePool(a) => {
            let xt = x()?;
            let xd = dims(xt);
            let win = Window::pool(a, &xd[2..])?;
            let n = win.kernel.len();
            let sym = (0..n).all(|i| win.pads[i] == win.pads[n + i]);
            ensure!(sym || a.count_include_pad, "asymmetric padding with count_include_pad=0 is not supported");
            ensure!(win.dilations.iter().all(|&d| d == 1), "dilated AveragePool is not supported");
            let (xp, pad) = split_pads(xt, &win.pads, 0.0)?;
            let (k, s) = (i64s(&win.kernel), i64s(&win.strides));
            one(match n {
                1 => xp.f_avg_pool1d(&k, &s, &pad, a.ceil_mode, a.count_include_pad)?,
                2 => xp.f_avg_pool2d(&k, &s, &pad, a.ceil_mode, a.count_include_pad, None)?,
                _ => bail!("AveragePool over {n} spatial axes is not supported"),
            })
        }
        Op::MaxPool(a) => {
            let xt = x()?;
            let win = Window::pool(a, &dims(xt)[2..])?;
            let (xp, pad) = split_pads(xt, &win.pads, f64::NEG_INFINITY)?;
            let (k, s, d) = (i64s(&win.kernel), i64s(&win.strides), i64s(&win.dilations));
            one(match win.kernel.len() {
                1 => xp.f_max_pool1d(&k, &s, &pad, &d, a.ceil_mode)?,
                2 => xp.f_max_pool2d(&k, &s, &pad, &d, a.ceil_mode)?,
                3 => xp.f_max_pool3d(&k, &s, &pad, &d, a.ceil_mode)?,
                n => bail!("MaxPool over {n} spatial axes is not supported"),
            })
        }
        Op::ReduceMean { axes, keepdims } => {
            let xt = x()?;
            let r = xt.dim();
            let axes: Vec<i64> = match axes {
                Some(a) => a.iter().map(|&a| norm_axis(a, r).map(|v| v as i64)).collect::<Result<_>>()?,
                None => (0..r as i64).collect(),
            };
            one(xt.f_mean_dim(axes.as_slice(), *keepdims, None::<Kind>)?)
        }
        Op::Flatten { axis } => {
            let xt = x()?;
            let d = dims(xt);
            let a = if *axis == d.len() as i64 { d.len() } else { norm_axis(*axis, d.len())? };
            one(xt.f_reshape([d[..a].iter().product::<usize>() as i64, d[a..].iter().product::<usize>() as i64])?)
        }
        Op::Reshape { allowzero } => {
            let xt = x()?;
            let shape = reshape_target(&dims(xt), &ints(req(ins, 1)?)?, *allowzero)?;
            one(xt.f_reshape(i64s(&shape))?)
        }
        Op::Squeeze => {
            let xt = x()?;
            let d = dims(xt);
            let axes: Vec<usize> = match ins.get(1).and_then(|t| t.as_ref()) {
                Some(a) => ints(a)?.iter().map(|&a| norm_axis(a, d.len())).collect::<Result<_>>()?,
                None => (0..d.len()).filter(|&i| d[i] == 1).collect(),
            };
            let shape: Vec<i64> = (0..d.len()).filter(|i| !axes.contains(i)).map(|i| d[i] as i64).collect();
            one(xt.f_reshape(shape)?)
        }
        Op::Unsqueeze => {
            let xt = x()?;
            let mut d = i64s(&dims(xt));
            let spec = ints(req(ins, 1)?)?;
            let r = d.len() + spec.len();
            let mut axes = spec.iter().map(|&a| norm_axis(a, r)).collect::<Result<Vec<_>>>()?;
            axes.sort_unstable();
            for a in axes {
                d.insert(a, 1);
            }
            one(xt.f_reshape(d)?)
        }
        Op::Concat { axis } => {
            let parts: Vec<&T> = ins.iter().map(|t| t.as_ref().ok_or_else(|| anyhow!("empty input"))).collect::<Result<_>>()?;
            ensure!(!parts.is_empty(), "Concat needs an input");
            let a = norm_axis(*axis, parts[0].dim())? as i64;
            let parts: Vec<T> = parts.iter().map(|p| same_device(parts[0], p)).collect::<Result<_>>()?;
            one(T::f_cat(&parts, a)?)
        }
        Op::Pad { mode } => {
            let xt = x()?;
            let pads = ints(req(ins, 1)?)?;
            ensure!(pads.len() == 2 * xt.dim(), "pads {:?} must have {} entries", pads, 2 * xt.dim());
            let value = ins.get(2).and_then(|t| t.as_ref()).map(scalar).transpose()?.unwrap_or(0.0);
            let p = torch_pads(&pads);
            one(match mode {
                PadMode::Constant if value == 0.0 => xt.f_constant_pad_nd(&p)?,
                PadMode::Constant => xt.f_pad(&p, "constant", value)?,
                PadMode::Reflect => xt.f_pad(trim_leading_zeros(&p, xt.dim())?, "reflect", None)?,
                PadMode::Edge => xt.f_pad(trim_leading_zeros(&p, xt.dim())?, "replicate", None)?,
            })
        }
        Op::Transpose { perm } => {
            let xt = x()?;
            let r = xt.dim();
            let p: Vec<i64> = match perm {
                Some(p) => p.iter().map(|&a| norm_axis(a, r).map(|v| v as i64)).collect::<Result<_>>()?,
                None => (0..r as i64).rev().collect(),
            };
            one(xt.f_permute(p)?)
        }
        Op::Constant { value } => one(to_tch(value, tch::Device::Cpu)?),
        Op::ConstantOfShape { value } => {
            let shape = ints(req(ins, 0)?)?;
            let (v, kind) = match value {
                Some(t) => (t.scalar_f64()?, kind_of(t.dtype)),
                None => (0.0, Kind::Float),
            };
            one(T::f_full(shape.as_slice(), v, (kind, tch::Device::Cpu))?)
        }
        Op::Shape { start, end } => {
            let d = x()?.size();
            let r = d.len() as i64;
            let clamp = |v: i64| if v < 0 { (v + r).max(0) } else { v.min(r) } as usize;
            let (s, e) = (clamp(*start), clamp(end.unwrap_or(r)));
            one(T::f_from_slice(&d[s..e.max(s)])?)
        }
        Op::Gather { axis } => {
            let (data, idx) = (x()?, req(ins, 1)?);
            let a = norm_axis(*axis, data.dim())?;
            let n = data.size()[a];
            let idx = idx.f_to_kind(Kind::Int64)?;
            let wrapped = idx.f_remainder(n)?; // maps -1 → n-1; valid indices unchanged
            let bad = idx.f_ge(n)?.f_logical_or(&idx.f_lt(-n)?)?.f_any()?;
            ensure!(!bool::try_from(&bad)?, "an index is out of range for axis {} of size {}", a, n);
            let sel = data.f_index_select(a as i64, &same_device(data, &wrapped.f_flatten(0, -1)?)?)?;
            let mut shape = data.size()[..a].to_vec();
            shape.extend(idx.size());
            shape.extend(&data.size()[a + 1..]);
            one(sel.f_reshape(shape)?)
        }
        Op::Identity | Op::Dropout => one(x()?.shallow_clone()),
        Op::Softmax { axis, legacy } => {
            let xt = x()?;
            let a = norm_axis(*axis, xt.dim())?;
            if *legacy && a + 1 != xt.dim() {
                let d = xt.size();
                let flat = xt.f_reshape([d[..a].iter().product::<i64>(), -1])?;
                one(flat.f_softmax(1, None::<Kind>)?.f_reshape(&d)?)
            } else {
                one(xt.f_softmax(a as i64, None::<Kind>)?)
            }
        }
        Op::Cast { to } => one(x()?.f_to_kind(kind_of(*to))?),
        Op::Slice => {
            let xt = x()?;
            let starts = ints(req(ins, 1)?)?;
            let ends = ints(req(ins, 2)?)?;
            let axes = match ins.get(3).and_then(|t| t.as_ref()) {
                Some(t) => ints(t)?,
                None => (0..starts.len() as i64).collect(),
            };
            let steps = match ins.get(4).and_then(|t| t.as_ref()) {
                Some(t) => ints(t)?,
                None => vec![1; starts.len()],
            };
            ensure!(
                ends.len() == starts.len() && axes.len() == starts.len() && steps.len() == starts.len(),
                "starts/ends/axes/steps lengths differ"
            );
            let mut y = xt.shallow_clone();
            for k in 0..starts.len() {
                let a = norm_axis(axes[k], xt.dim())?;
                let d = y.size()[a] as usize;
                if steps[k] > 0 {
                    let idx = slice_indices(d, starts[k], ends[k], steps[k])?;
                    let (s, e) = (idx.first().copied().unwrap_or(0) as i64, idx.last().map_or(0, |&l| l as i64 + 1));
                    y = y.f_slice(a as i64, s, e, steps[k])?;
                } else {
                    let idx: Vec<i64> = slice_indices(d, starts[k], ends[k], steps[k])?.iter().map(|&i| i as i64).collect();
                    y = y.f_index_select(a as i64, &same_device(&y, &T::f_from_slice(&idx)?)?)?;
                }
            }
            one(y)
        }
        Op::Unknown { op_type, .. } => bail!("unsupported op '{op_type}'"),
    }
}

/// torch's reflect/replicate padding only pads trailing (spatial) axes: drop the zero pairs of
/// leading axes, refuse a non-zero one.
fn trim_leading_zeros(p: &[i64], rank: usize) -> Result<Vec<i64>> {
    let spatial = rank.saturating_sub(2);
    ensure!(p[2 * spatial..].iter().all(|&v| v == 0), "reflect/edge padding of the batch or channel axis is not supported");
    Ok(p[..2 * spatial].to_vec())
}
