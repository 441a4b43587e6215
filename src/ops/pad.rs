//! Pad (constant, reflect, edge; pads and value attributes before opset 11, inputs after).

use anyhow::{anyhow, bail, ensure, Result};
#[cfg(feature = "torch")]
use tch::Tensor as T;

use super::attrs::{a_float, a_ints, a_str, EmitCx, ParseCx};
use super::shapes::{const_ints, req};
#[cfg(feature = "torch")]
use super::torch::{ints, one, opt, scalar, torch_pads};
use super::{not_mine, Family};
use crate::ir::{Fact, Op, PadMode, Tensor};

pub struct Pad;

/// torch's reflect/replicate padding only pads trailing (spatial) axes: drop the zero pairs of
/// leading axes, refuse a non-zero one.
#[cfg(feature = "torch")]
fn trim_leading_zeros(p: &[i64], rank: usize) -> Result<Vec<i64>> {
    let spatial = rank.saturating_sub(2);
    ensure!(p[2 * spatial..].iter().all(|&v| v == 0), "reflect/edge padding of the batch or channel axis is not supported");
    Ok(p[..2 * spatial].to_vec())
}

impl Family for Pad {
    fn name(&self) -> &'static str {
        "pad"
    }
    fn op_types(&self) -> &'static [&'static str] {
        &["Pad"]
    }
    fn parse(&self, _op_type: &str, a: &mut ParseCx) -> Result<Op> {
        let mode = match a.string("mode")?.as_deref() {
            None | Some("constant") => PadMode::Constant,
            Some("reflect") => PadMode::Reflect,
            Some("edge") => PadMode::Edge,
            Some(m) => bail!("pad mode '{m}' is not supported"),
        };
        if a.opset < 11 {
            let pads = a.ints("pads")?.ok_or_else(|| anyhow!("attribute 'pads' is required"))?;
            let value = a.float("value")?.unwrap_or(0.0);
            a.const_input("pads", Tensor::i64(vec![pads.len()], pads), 1);
            a.const_input("value", Tensor::f32(vec![], vec![value]), 2);
        }
        ensure!(a.inputs.len() < 4 || a.inputs[3].is_empty(), "Pad with an 'axes' input is not supported");
        Ok(Op::Pad { mode })
    }
    fn emit(&self, op: &Op, cx: &mut EmitCx) -> Result<()> {
        let Op::Pad { mode } = op else { return Err(not_mine(self, op)) };
        cx.push(a_str("mode", mode.onnx_name()));
        if cx.opset < 11 {
            let pads = cx.const_ints(1)?;
            cx.push(a_ints("pads", &pads));
            if cx.inputs.len() > 2 && !cx.inputs[2].is_empty() {
                let v = (cx.consts)(&cx.inputs[2]).ok_or_else(|| anyhow!("Pad value must be constant for opset {}", cx.opset))?;
                cx.push(a_float("value", v.scalar_f64()? as f32));
            }
            cx.ins.truncate(1);
        }
        Ok(())
    }
    fn infer(&self, _op: &Op, ins: &[Option<&Fact>]) -> Result<Vec<Fact>> {
        let f = req(ins, 0)?;
        let pads = const_ints(ins, 1, "pads")?.ok_or_else(|| anyhow!("missing pads input"))?;
        let r = f.shape.len();
        ensure!(pads.len() == 2 * r, "pads has {} entries, expected {} for rank {}", pads.len(), 2 * r, r);
        let shape = (0..r)
            .map(|i| {
                let v = (f.shape[i] as i64).checked_add(pads[i]).and_then(|v| v.checked_add(pads[r + i]));
                let v = v.ok_or_else(|| anyhow!("pads {pads:?} overflow on axis {i}"))?;
                ensure!(v >= 0, "pads {pads:?} give a negative output size on axis {i}");
                Ok(v as usize)
            })
            .collect::<Result<_>>()?;
        Ok(vec![Fact::new(f.dtype, shape)])
    }
    #[cfg(feature = "torch")]
    fn eval(&self, op: &Op, ins: &[Option<T>]) -> Result<Vec<T>> {
        let Op::Pad { mode } = op else { return Err(not_mine(self, op)) };
        let xt = super::torch::req(ins, 0)?;
        let pads = ints(super::torch::req(ins, 1)?)?;
        ensure!(pads.len() == 2 * xt.dim(), "pads {:?} must have {} entries", pads, 2 * xt.dim());
        let value = opt(ins, 2).map(scalar).transpose()?.unwrap_or(0.0);
        let p = torch_pads(&pads);
        one(match mode {
            PadMode::Constant if value == 0.0 => xt.f_constant_pad_nd(&p)?,
            PadMode::Constant => xt.f_pad(&p, "constant", value)?,
            PadMode::Reflect => xt.f_pad(trim_leading_zeros(&p, xt.dim())?, "reflect", None)?,
            PadMode::Edge => xt.f_pad(trim_leading_zeros(&p, xt.dim())?, "replicate", None)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::conformance::{data, ints, roundtrip, scalar, shapes_agree};
    use crate::ir::{Op, PadMode, Tensor};

    #[test]
    fn pad_moves_pads_between_attributes_and_inputs() {
        let consts = [("p", Tensor::i64(vec![8], vec![0, 0, 1, 2, 0, 0, 2, 1])), ("v", Tensor::f32(vec![], vec![0.5]))];
        for mode in [PadMode::Constant, PadMode::Reflect, PadMode::Edge] {
            for opset in [9, 11, 13, 17] {
                roundtrip(&Op::Pad { mode }, &["x", "p", "v"], &consts, opset);
            }
            shapes_agree(&Op::Pad { mode }, &[data(&[1, 2, 5, 6]), ints(&[0, 0, 1, 2, 0, 0, 2, 1]), scalar(0.5)]);
        }
    }
}
