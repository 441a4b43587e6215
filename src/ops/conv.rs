//! Conv (1-D and 2-D, grouped and depthwise, explicit or automatic padding).

use anyhow::{ensure, Result};
use tch::Tensor as T;

use super::attrs::{a_int, a_usizes, emit_window, EmitCx, ParseCx};
use super::shapes::{req, Window};
use super::torch::{dims, i64s, one, opt, split_pads};
use super::{not_mine, Family};
use crate::ir::{ConvAttrs, Fact, Op};

pub struct Conv;

impl Family for Conv {
    fn name(&self) -> &'static str {
        "conv"
    }
    fn op_types(&self) -> &'static [&'static str] {
        &["Conv"]
    }
    fn parse(&self, _op_type: &str, a: &mut ParseCx) -> Result<Op> {
        Ok(Op::Conv(ConvAttrs {
            kernel_shape: a.ints("kernel_shape")?.map(|v| v.iter().map(|&x| x as usize).collect()),
            strides: a.usizes("strides")?,
            pads: a.usizes("pads")?,
            dilations: a.usizes("dilations")?,
            group: a.int("group")?.unwrap_or(1).max(1) as usize,
            auto_pad: a.auto_pad()?,
        }))
    }
    fn emit(&self, op: &Op, cx: &mut EmitCx) -> Result<()> {
        let Op::Conv(c) = op else { return Err(not_mine(self, op)) };
        if let Some(k) = &c.kernel_shape {
            cx.push(a_usizes("kernel_shape", k));
        }
        emit_window(cx, &c.strides, &c.pads, c.auto_pad);
        if !c.dilations.is_empty() {
            cx.push(a_usizes("dilations", &c.dilations));
        }
        cx.push(a_int("group", c.group.max(1) as i64));
        Ok(())
    }
    fn infer(&self, op: &Op, ins: &[Option<&Fact>]) -> Result<Vec<Fact>> {
        let Op::Conv(a) = op else { return Err(not_mine(self, op)) };
        let (xf, w) = (req(ins, 0)?, req(ins, 1)?);
        ensure!(xf.shape.len() >= 3, "input X must be [N, C, spatial…], got shape {:?}", xf.shape);
        ensure!(w.shape.len() == xf.shape.len(), "weight shape {:?} has a different rank than input {:?}", w.shape, xf.shape);
        let g = a.group.max(1);
        ensure!(
            xf.shape[1] == w.shape[1] * g,
            "input has {} channels but weight {:?} with group {} expects {}",
            xf.shape[1],
            w.shape,
            g,
            w.shape[1] * g
        );
        ensure!(w.shape[0] % g == 0, "output channels {} not divisible by group {}", w.shape[0], g);
        if let Some(b) = ins.get(2).copied().flatten() {
            ensure!(b.shape == [w.shape[0]], "bias shape {:?} must be [{}]", b.shape, w.shape[0]);
        }
        let win = Window::conv(a, &xf.shape[2..], &w.shape)?;
        let mut shape = vec![xf.shape[0], w.shape[0]];
        shape.extend(win.output(&xf.shape[2..], false)?);
        Ok(vec![Fact::new(xf.dtype, shape)])
    }
    fn eval(&self, op: &Op, ins: &[Option<T>]) -> Result<Vec<T>> {
        let Op::Conv(a) = op else { return Err(not_mine(self, op)) };
        let (xt, w) = (super::torch::req(ins, 0)?, super::torch::req(ins, 1)?);
        let (xd, wd) = (dims(xt), dims(w));
        ensure!(xd.len() >= 3 && wd.len() == xd.len(), "input {:?} and weight {:?} must be [N, C, spatial…] of one rank", xd, wd);
        let win = Window::conv(a, &xd[2..], &wd)?;
        let (xp, pad) = split_pads(xt, &win.pads, 0.0)?;
        let n = win.kernel.len();
        one(xp.f_convolution(w, opt(ins, 2), i64s(&win.strides), &pad, i64s(&win.dilations), false, vec![0; n], a.group.max(1) as i64)?)
    }
    fn macs(&self, _op: &Op, shape: &dyn Fn(usize) -> Vec<usize>, out_numel: u64) -> u64 {
        let w = shape(1);
        if w.len() >= 2 {
            out_numel * w[1..].iter().product::<usize>() as u64
        } else {
            0
        }
    }
    fn param_inputs(&self, _op: &Op) -> &'static [usize] {
        &[1, 2]
    }
}

#[cfg(test)]
mod tests {
    use super::super::conformance::{data, roundtrip, shapes_agree};
    use crate::ir::{AutoPad, ConvAttrs, Op};

    fn cases() -> Vec<(Op, Vec<usize>, Vec<usize>)> {
        let c = |a: ConvAttrs| Op::Conv(ConvAttrs { group: a.group.max(1), ..a });
        vec![
            (c(ConvAttrs::default()), vec![1, 4, 9, 10], vec![6, 4, 3, 3]),
            (c(ConvAttrs { strides: vec![2, 2], pads: vec![0, 1, 2, 1], ..Default::default() }), vec![2, 4, 9, 10], vec![6, 4, 3, 3]),
            (
                c(ConvAttrs { dilations: vec![2, 2], kernel_shape: Some(vec![3, 3]), ..Default::default() }),
                vec![1, 4, 9, 9],
                vec![6, 4, 3, 3],
            ),
            (
                c(ConvAttrs { group: 4, auto_pad: AutoPad::SameUpper, strides: vec![2, 2], ..Default::default() }),
                vec![1, 4, 7, 8],
                vec![4, 1, 3, 3],
            ),
            (c(ConvAttrs { strides: vec![2], ..Default::default() }), vec![1, 3, 11], vec![5, 3, 3]),
        ]
    }

    #[test]
    fn conv_round_trips_and_infers_what_runs() {
        for (op, x, w) in cases() {
            for opset in [9, 11, 13, 17, 21] {
                roundtrip(&op, &["x", "w", "b"], &[], opset);
            }
            let bias = Some(super::super::conformance::Input::Data(vec![w[0]]));
            shapes_agree(&op, &[data(&x), data(&w), bias]);
        }
    }
}
