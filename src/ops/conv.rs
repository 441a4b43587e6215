//! Conv (1-D and 2-D, grouped and depthwise, explicit or automatic padding) and ConvTranspose
//! (explicit, possibly asymmetric pads, output_padding, groups, dilations; no output_shape or
//! auto_pad).

use anyhow::{bail, ensure, Result};
#[cfg(feature = "torch")]
use tch::Tensor as T;

use super::attrs::{a_int, a_usizes, emit_window, EmitCx, ParseCx};
use super::shapes::{req, Window};
#[cfg(feature = "torch")]
use super::torch::{dims, i64s, one, opt, split_pads};
use super::{not_mine, Family};
use crate::ir::{ConvAttrs, ConvTransposeAttrs, Fact, Op};

pub struct Conv;

/// ConvTranspose's resolved window and output spatial size (read by the evaluation).
#[cfg_attr(not(feature = "torch"), allow(dead_code))]
struct Transposed {
    strides: Vec<usize>,
    dilations: Vec<usize>,
    pads: Vec<usize>,
    output_padding: Vec<usize>,
    out: Vec<usize>,
}

fn transposed(t: &ConvTransposeAttrs, x: &[usize], w: &[usize]) -> Result<Transposed> {
    ensure!(x.len() >= 3 && w.len() == x.len(), "input {:?} and weight {:?} must be [N, C, spatial…] of one rank", x, w);
    let g = t.group.max(1);
    ensure!(x[1] == w[0], "input has {} channels but the weight {:?} takes {}", x[1], w, w[0]);
    ensure!(w[0].is_multiple_of(g), "input channels {} not divisible by group {g}", w[0]);
    let n = x.len() - 2;
    let kernel = t.kernel_shape.clone().unwrap_or_else(|| w[2..].to_vec());
    ensure!(kernel.as_slice() == &w[2..], "kernel_shape {:?} does not match weight shape {:?}", kernel, w);
    let fill = |v: &[usize], d: usize, what: &str| -> Result<Vec<usize>> {
        match v.len() {
            0 => Ok(vec![d; n]),
            l if l == n => Ok(v.to_vec()),
            _ => bail!("{what} {v:?} must have {n} entries"),
        }
    };
    let strides = fill(&t.strides, 1, "strides")?;
    let dilations = fill(&t.dilations, 1, "dilations")?;
    let output_padding = fill(&t.output_padding, 0, "output_padding")?;
    let pads = if t.pads.is_empty() { vec![0; 2 * n] } else { t.pads.clone() };
    ensure!(pads.len() == 2 * n, "pads {:?} must have {} entries", pads, 2 * n);
    ensure!(strides.iter().chain(&dilations).all(|&v| v > 0), "strides and dilations must be positive");
    ensure!(kernel.iter().chain(&x[2..]).all(|&v| v > 0), "kernel {:?} and input {:?} must have no empty spatial axis", kernel, x);
    // Bounded so that the arithmetic below cannot overflow; inference then refuses large outputs.
    let limit = 1usize << 31;
    ensure!(
        strides.iter().chain(&dilations).chain(&output_padding).chain(&pads).chain(&kernel).all(|&v| v <= limit),
        "strides {strides:?}, dilations {dilations:?}, pads {pads:?} or output_padding {output_padding:?} are larger than any tensor dnas runs"
    );
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let full = strides[i] * (x[2 + i] - 1) + (kernel[i] - 1) * dilations[i] + 1 + output_padding[i];
        ensure!(full > pads[i] + pads[n + i], "pads {:?} remove the whole output on axis {i}", pads);
        out.push(full - pads[i] - pads[n + i]);
    }
    Ok(Transposed { strides, dilations, pads, output_padding, out })
}

impl Family for Conv {
    fn name(&self) -> &'static str {
        "conv"
    }
    fn op_types(&self) -> &'static [&'static str] {
        &["Conv", "ConvTranspose"]
    }
    fn parse(&self, op_type: &str, a: &mut ParseCx) -> Result<Op> {
        if op_type == "ConvTranspose" {
            ensure!(a.ints("output_shape")?.is_none(), "ConvTranspose with 'output_shape' is not supported (give pads)");
            ensure!(
                matches!(a.auto_pad()?, crate::ir::AutoPad::NotSet | crate::ir::AutoPad::Valid),
                "ConvTranspose with SAME auto_pad is not supported (give pads)"
            );
            return Ok(Op::ConvTranspose(ConvTransposeAttrs {
                kernel_shape: a.opt_usizes("kernel_shape")?,
                strides: a.usizes("strides")?,
                pads: a.usizes("pads")?,
                dilations: a.usizes("dilations")?,
                output_padding: a.usizes("output_padding")?,
                group: group(a)?,
            }));
        }
        Ok(Op::Conv(ConvAttrs {
            kernel_shape: a.opt_usizes("kernel_shape")?,
            strides: a.usizes("strides")?,
            pads: a.usizes("pads")?,
            dilations: a.usizes("dilations")?,
            group: group(a)?,
            auto_pad: a.auto_pad()?,
        }))
    }
    fn emit(&self, op: &Op, cx: &mut EmitCx) -> Result<()> {
        if let Op::ConvTranspose(t) = op {
            if let Some(k) = &t.kernel_shape {
                cx.push(a_usizes("kernel_shape", k));
            }
            for (name, v) in
                [("strides", &t.strides), ("pads", &t.pads), ("dilations", &t.dilations), ("output_padding", &t.output_padding)]
            {
                if !v.is_empty() {
                    cx.push(a_usizes(name, v));
                }
            }
            cx.push(a_int("group", t.group.max(1) as i64));
            return Ok(());
        }
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
        if let Op::ConvTranspose(t) = op {
            let (xf, w) = (req(ins, 0)?, req(ins, 1)?);
            let g = transposed(t, &xf.shape, &w.shape)?;
            let mut shape = vec![xf.shape[0], w.shape[1] * t.group.max(1)];
            shape.extend(g.out);
            return Ok(vec![Fact::new(xf.dtype, shape)]);
        }
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
    #[cfg(feature = "torch")]
    fn eval(&self, op: &Op, ins: &[Option<T>]) -> Result<Vec<T>> {
        if let Op::ConvTranspose(t) = op {
            let (xt, w) = (super::torch::req(ins, 0)?, super::torch::req(ins, 1)?);
            let g = transposed(t, &dims(xt), &dims(w))?;
            let n = g.out.len();
            // Unpadded transposed convolution (every position a kernel reaches), then the
            // output_padding rows (no contribution: zeros), then the pads cropped.
            let mut y =
                xt.f_convolution(w, None::<&T>, i64s(&g.strides), vec![0; n], i64s(&g.dilations), true, vec![0; n], t.group.max(1) as i64)?;
            let extra: Vec<i64> = (0..n).rev().flat_map(|i| [0, g.output_padding[i] as i64]).collect();
            if extra.iter().any(|&e| e > 0) {
                y = y.f_constant_pad_nd(extra.as_slice())?;
            }
            for i in 0..n {
                y = y.f_narrow(2 + i as i64, g.pads[i] as i64, g.out[i] as i64)?;
            }
            if let Some(b) = opt(ins, 2) {
                let mut shape = vec![1i64, -1];
                shape.extend(std::iter::repeat_n(1, n));
                y = y.f_add(&b.f_reshape(shape)?)?;
            }
            return one(y);
        }
        let Op::Conv(a) = op else { return Err(not_mine(self, op)) };
        let (xt, w) = (super::torch::req(ins, 0)?, super::torch::req(ins, 1)?);
        let (xd, wd) = (dims(xt), dims(w));
        ensure!(xd.len() >= 3 && wd.len() == xd.len(), "input {:?} and weight {:?} must be [N, C, spatial…] of one rank", xd, wd);
        let win = Window::conv(a, &xd[2..], &wd)?;
        let (xp, pad) = split_pads(xt, &win.pads, 0.0)?;
        let n = win.kernel.len();
        one(xp.f_convolution(w, opt(ins, 2), i64s(&win.strides), &pad, i64s(&win.dilations), false, vec![0; n], a.group.max(1) as i64)?)
    }
    fn macs(&self, op: &Op, shape: &dyn Fn(usize) -> Vec<usize>, out_numel: u64) -> u64 {
        let w = shape(1);
        if let Op::ConvTranspose(_) = op {
            // Every input element meets every weight of its group: N·C_in·spatial_in · C_out/g · k.
            let x = shape(0);
            return if w.len() >= 2 { x.iter().product::<usize>() as u64 * w[1..].iter().product::<usize>() as u64 } else { 0 };
        }
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

/// The `group` attribute (default 1); 0 or negative is refused, as ONNX Runtime does.
fn group(a: &mut ParseCx) -> Result<usize> {
    let g = a.int("group")?.unwrap_or(1);
    ensure!(g >= 1, "attribute 'group' must be at least 1, got {g}");
    Ok(g as usize)
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

    #[test]
    fn conv_transpose_agrees_with_ort_and_tract() {
        use super::super::conformance::runtimes_agree;
        use crate::ir::{ConvTransposeAttrs, Tensor};
        let w = |dims: Vec<usize>| {
            let n: usize = dims.iter().product();
            Tensor::f32(dims, (0..n).map(|i| ((i * 37 % 17) as f32 - 8.0) / 8.0).collect())
        };
        let cases = [
            (ConvTransposeAttrs { strides: vec![2, 2], group: 1, ..Default::default() }, vec![3, 4, 3, 3]),
            (
                ConvTransposeAttrs {
                    strides: vec![2, 2],
                    pads: vec![1, 0, 0, 1],
                    output_padding: vec![1, 1],
                    group: 1,
                    ..Default::default()
                },
                vec![3, 4, 3, 3],
            ),
            (ConvTransposeAttrs { dilations: vec![2, 2], pads: vec![1, 1, 1, 1], group: 3, ..Default::default() }, vec![3, 2, 3, 3]),
        ];
        for (attrs, wd) in cases {
            let cout = wd[1] * attrs.group;
            let op = Op::ConvTranspose(attrs);
            for opset in [9, 11, 13, 17] {
                roundtrip(&op, &["x", "w", "b"], &[], opset);
            }
            let bias = Tensor::f32(vec![cout], vec![0.25; cout]);
            shapes_agree(&op, &[data(&[2, 3, 5, 4]), data(&wd), Some(super::super::conformance::Input::Const(bias.clone()))]);
            runtimes_agree(&format!("{op:?}"), &op, &[("w", w(wd)), ("b", bias)], &[2, 3, 5, 4], 13, false);
        }
    }
}
