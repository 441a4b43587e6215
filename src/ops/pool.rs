//! Pooling: GlobalAveragePool, GlobalMaxPool, AveragePool and MaxPool (ceil mode, automatic and
//! asymmetric padding, AveragePool with or without the padding counted, MaxPool dilations;
//! AveragePool dilations only from opset 19 on).

#[cfg(feature = "torch")]
use anyhow::bail;
use anyhow::{ensure, Result};
#[cfg(feature = "torch")]
use tch::{Kind, Tensor as T};

use super::attrs::{a_int, a_usizes, emit_window, EmitCx, ParseCx};
use super::shapes::{req, Window};
#[cfg(feature = "torch")]
use super::torch::{dims, i64s, one, split_pads};
use super::{not_mine, Family};
use crate::ir::{Fact, Op, PoolAttrs};

pub struct Pool;

impl Family for Pool {
    fn name(&self) -> &'static str {
        "pool"
    }
    fn op_types(&self) -> &'static [&'static str] {
        &["GlobalAveragePool", "GlobalMaxPool", "AveragePool", "MaxPool"]
    }
    fn parse(&self, op_type: &str, a: &mut ParseCx) -> Result<Op> {
        if op_type == "GlobalAveragePool" {
            return Ok(Op::GlobalAveragePool);
        }
        if op_type == "GlobalMaxPool" {
            return Ok(Op::GlobalMaxPool);
        }
        let is_max = op_type == "MaxPool";
        ensure!(a.only_first_output(), "MaxPool's Indices output is not supported");
        if is_max {
            ensure!(a.int("storage_order")?.unwrap_or(0) == 0, "storage_order=1 is not supported");
        }
        let p = PoolAttrs {
            kernel_shape: a.usizes("kernel_shape")?,
            strides: a.usizes("strides")?,
            pads: a.usizes("pads")?,
            dilations: a.usizes("dilations")?,
            ceil_mode: a.int("ceil_mode")?.unwrap_or(0) != 0,
            count_include_pad: !is_max && a.int("count_include_pad")?.unwrap_or(0) != 0,
            auto_pad: a.auto_pad()?,
        };
        ensure!(!p.kernel_shape.is_empty(), "attribute 'kernel_shape' is required");
        Ok(if is_max { Op::MaxPool(p) } else { Op::AveragePool(p) })
    }
    fn emit(&self, op: &Op, cx: &mut EmitCx) -> Result<()> {
        let p = match op {
            Op::GlobalAveragePool | Op::GlobalMaxPool => return Ok(()),
            Op::AveragePool(p) | Op::MaxPool(p) => p,
            _ => return Err(not_mine(self, op)),
        };
        cx.push(a_usizes("kernel_shape", &p.kernel_shape));
        emit_window(cx, &p.strides, &p.pads, p.auto_pad);
        if p.ceil_mode {
            cx.push(a_int("ceil_mode", 1));
        }
        if matches!(op, Op::MaxPool(_)) {
            if !p.dilations.is_empty() {
                cx.push(a_usizes("dilations", &p.dilations));
            }
        } else {
            ensure!(p.dilations.iter().all(|&d| d == 1) || cx.opset >= 19, "AveragePool dilations need opset ≥ 19");
            cx.push(a_int("count_include_pad", p.count_include_pad as i64));
        }
        Ok(())
    }
    fn infer(&self, op: &Op, ins: &[Option<&Fact>]) -> Result<Vec<Fact>> {
        let f = req(ins, 0)?;
        ensure!(f.shape.len() >= 3, "input must be [N, C, spatial…], got {:?}", f.shape);
        let mut s = f.shape[..2].to_vec();
        match op {
            Op::GlobalAveragePool | Op::GlobalMaxPool => s.extend(std::iter::repeat_n(1, f.shape.len() - 2)),
            Op::AveragePool(a) | Op::MaxPool(a) => {
                let win = Window::pool(a, &f.shape[2..])?;
                s.extend(win.output(&f.shape[2..], a.ceil_mode)?);
            }
            _ => return Err(not_mine(self, op)),
        }
        Ok(vec![Fact::new(f.dtype, s)])
    }
    #[cfg(feature = "torch")]
    fn eval(&self, op: &Op, ins: &[Option<T>]) -> Result<Vec<T>> {
        let xt = super::torch::req(ins, 0)?;
        match op {
            Op::GlobalAveragePool => {
                let r = xt.dim() as i64;
                if r == 4 {
                    // libtorch's pooling kernel (channels_last aware, forward and backward).
                    one(xt.f_adaptive_avg_pool2d([1, 1])?)
                } else {
                    one(xt.f_mean_dim((2..r).collect::<Vec<_>>().as_slice(), true, None::<Kind>)?)
                }
            }
            Op::GlobalMaxPool => {
                let r = xt.dim() as i64;
                one(xt.f_amax((2..r).collect::<Vec<_>>().as_slice(), true)?)
            }
            Op::AveragePool(a) => {
                let xd = dims(xt);
                let win = Window::pool(a, &xd[2..])?;
                let n = win.kernel.len();
                let sym = (0..n).all(|i| win.pads[i] == win.pads[n + i]);
                ensure!(win.dilations.iter().all(|&d| d == 1), "dilated AveragePool is not supported");
                if !sym && !a.count_include_pad {
                    return one(avg_pool_excluding_asymmetric_pads(xt, &win, a.ceil_mode)?);
                }
                let (xp, pad) = split_pads(xt, &win.pads, 0.0)?;
                let (k, s) = (i64s(&win.kernel), i64s(&win.strides));
                one(match n {
                    1 => xp.f_avg_pool1d(&k, &s, &pad, a.ceil_mode, a.count_include_pad)?,
                    2 => xp.f_avg_pool2d(&k, &s, &pad, a.ceil_mode, a.count_include_pad, None)?,
                    _ => bail!("AveragePool over {n} spatial axes is not supported"),
                })
            }
            Op::MaxPool(a) => {
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
            _ => Err(not_mine(self, op)),
        }
    }
}

/// AveragePool with asymmetric pads and `count_include_pad = 0`, as ONNX Runtime computes it:
/// each window's sum over the input elements it covers, divided by their number (padding
/// excluded). libtorch's pads are symmetric, so the input is padded explicitly with zeros and the
/// window sums and element counts are both taken by sum pooling (`divisor_override = 1`); a
/// 1-D pool runs as a 2-D one over `[N, C, 1, L]`.
#[cfg(feature = "torch")]
fn avg_pool_excluding_asymmetric_pads(x: &T, win: &Window, ceil_mode: bool) -> Result<T> {
    let n = win.kernel.len();
    let (x2, kernel, strides, pads) = match n {
        1 => (x.f_unsqueeze(2)?, vec![1, win.kernel[0]], vec![1, win.strides[0]], vec![0, win.pads[0], 0, win.pads[1]]),
        2 => (x.shallow_clone(), win.kernel.clone(), win.strides.clone(), win.pads.clone()),
        _ => bail!("AveragePool over {n} spatial axes is not supported"),
    };
    let (k, s) = (i64s(&kernel), i64s(&strides));
    let sum_pool = |t: &T| -> Result<T> {
        let (padded, _) = split_pads(t, &pads, 0.0)?;
        Ok(padded.f_avg_pool2d(&k, &s, [0, 0], ceil_mode, true, Some(1))?)
    };
    let d = dims(&x2);
    let ones = T::f_ones([1, 1, d[2] as i64, d[3] as i64], (x2.kind(), x2.device()))?;
    let out = sum_pool(&x2)?.f_div(&sum_pool(&ones)?)?;
    Ok(if n == 1 { out.f_squeeze_dim(2)? } else { out })
}

#[cfg(test)]
mod tests {
    use super::super::conformance::{data, roundtrip, shapes_agree};
    use crate::ir::{AutoPad, Op, PoolAttrs};

    #[test]
    fn pools_round_trip_and_infer_what_runs() {
        let k = |k: usize| PoolAttrs { kernel_shape: vec![k, k], ..Default::default() };
        let ops = [
            Op::GlobalAveragePool,
            Op::GlobalMaxPool,
            Op::MaxPool(PoolAttrs { strides: vec![2, 2], pads: vec![0, 0, 1, 1], ceil_mode: true, ..k(3) }),
            Op::MaxPool(PoolAttrs { dilations: vec![2, 2], ..k(2) }),
            Op::AveragePool(PoolAttrs { strides: vec![2, 2], count_include_pad: true, pads: vec![1, 1, 1, 1], ..k(3) }),
            Op::AveragePool(PoolAttrs { auto_pad: AutoPad::SameUpper, strides: vec![2, 2], count_include_pad: true, ..k(3) }),
        ];
        for op in &ops {
            for opset in [9, 11, 13, 17] {
                roundtrip(op, &["x"], &[], opset);
            }
            shapes_agree(op, &[data(&[1, 3, 9, 10])]);
        }
        super::super::conformance::runtimes_agree("GlobalMaxPool", &Op::GlobalMaxPool, &[], &[2, 3, 5, 6], 17, false);
    }

    /// Asymmetric pads with `count_include_pad` 0 and 1 (a Caffe2-era Inception's pools), with and
    /// without ceil mode, in 2-D and 1-D: tch as ONNX Runtime and tract compute them.
    #[test]
    fn average_pools_with_asymmetric_pads_agree_with_ort_and_tract() {
        use super::super::conformance::runtimes_agree;
        for include in [false, true] {
            for ceil_mode in [false, true] {
                let op = Op::AveragePool(PoolAttrs {
                    kernel_shape: vec![3, 3],
                    strides: vec![2, 2],
                    pads: vec![0, 1, 1, 2],
                    ceil_mode,
                    count_include_pad: include,
                    ..Default::default()
                });
                roundtrip(&op, &["x"], &[], 13);
                shapes_agree(&op, &[data(&[1, 3, 9, 10])]);
                runtimes_agree(&format!("AveragePool 2-D include={include} ceil={ceil_mode}"), &op, &[], &[2, 3, 9, 10], 13, false);
            }
            let op1 = Op::AveragePool(PoolAttrs {
                kernel_shape: vec![3],
                strides: vec![1],
                pads: vec![2, 0],
                count_include_pad: include,
                ..Default::default()
            });
            runtimes_agree(&format!("AveragePool 1-D include={include}"), &op1, &[], &[2, 3, 8], 13, false);
        }
    }
}
