//! Pooling: GlobalAveragePool, GlobalMaxPool, AveragePool and MaxPool (ceil mode, automatic padding, MaxPool
//! dilations; AveragePool dilations only from opset 19 on).

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
}
