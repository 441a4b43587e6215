//! Parametric activations: LeakyRelu, Elu, Selu (attributes unchanged since opset 6), PRelu
//! (slope an input, broadcast to X from opset 7), Gelu (opset ≥ 20; exact or tanh).

use anyhow::{bail, ensure, Result};
#[cfg(feature = "torch")]
use tch::Tensor as T;

use super::attrs::{a_float, a_str, EmitCx, ParseCx};
use super::shapes::{broadcast, req};
#[cfg(feature = "torch")]
use super::torch::{one, same_device};
use super::{not_mine, Family};
use crate::ir::{Fact, Op};

pub struct Rectifier;

/// ONNX Selu's defaults (the self-normalising constants).
const SELU_ALPHA: f32 = 1.673_263_2;
const SELU_GAMMA: f32 = 1.050_701;

#[cfg(feature = "torch")]
/// max(x, 0) + slope · min(x, 0), with `slope` broadcast.
fn leaky(x: &T, slope: &T) -> Result<T> {
    Ok(x.f_clamp_min(0.0)?.f_add(&x.f_clamp_max(0.0)?.f_mul(slope)?)?)
}

#[cfg(feature = "torch")]
/// max(x, 0) + α · (exp(min(x, 0)) − 1).
fn elu(x: &T, alpha: f64) -> Result<T> {
    Ok(x.f_clamp_min(0.0)?.f_add(&x.f_clamp_max(0.0)?.f_exp()?.f_sub_scalar(1.0)?.f_mul_scalar(alpha)?)?)
}

impl Family for Rectifier {
    fn name(&self) -> &'static str {
        "rectifier"
    }
    fn op_types(&self) -> &'static [&'static str] {
        &["LeakyRelu", "Elu", "Selu", "PRelu", "Gelu"]
    }
    fn parse(&self, op_type: &str, a: &mut ParseCx) -> Result<Op> {
        Ok(match op_type {
            "LeakyRelu" => Op::LeakyRelu { alpha: a.float("alpha")?.unwrap_or(0.01) },
            "Elu" => Op::Elu { alpha: a.float("alpha")?.unwrap_or(1.0) },
            "Selu" => Op::Selu { alpha: a.float("alpha")?.unwrap_or(SELU_ALPHA), gamma: a.float("gamma")?.unwrap_or(SELU_GAMMA) },
            "PRelu" => Op::PRelu,
            _ => Op::Gelu {
                tanh: match a.string("approximate")?.as_deref() {
                    None | Some("none") => false,
                    Some("tanh") => true,
                    Some(v) => bail!("attribute 'approximate' has unknown value '{v}' (none, tanh)"),
                },
            },
        })
    }
    fn emit(&self, op: &Op, cx: &mut EmitCx) -> Result<()> {
        match op {
            Op::LeakyRelu { alpha } | Op::Elu { alpha } => cx.push(a_float("alpha", *alpha)),
            Op::Selu { alpha, gamma } => {
                cx.push(a_float("alpha", *alpha));
                cx.push(a_float("gamma", *gamma));
            }
            Op::PRelu => cx.need(7)?,
            Op::Gelu { tanh } => {
                cx.need(20)?;
                if *tanh {
                    cx.push(a_str("approximate", "tanh"));
                }
            }
            _ => return Err(not_mine(self, op)),
        }
        Ok(())
    }
    fn infer(&self, op: &Op, ins: &[Option<&Fact>]) -> Result<Vec<Fact>> {
        let f = req(ins, 0)?;
        if let Op::PRelu = op {
            let slope = req(ins, 1)?;
            let b = broadcast(&f.shape, &slope.shape)?;
            ensure!(b == f.shape, "slope {:?} does not broadcast to X {:?}", slope.shape, f.shape);
        }
        Ok(vec![Fact::new(f.dtype, f.shape.clone())])
    }
    #[cfg(feature = "torch")]
    fn eval(&self, op: &Op, ins: &[Option<T>]) -> Result<Vec<T>> {
        let x = super::torch::req(ins, 0)?;
        one(match op {
            Op::LeakyRelu { alpha } => leaky(x, &T::from(*alpha as f64).f_to_device(x.device())?.f_to_kind(x.kind())?)?,
            Op::PRelu => leaky(x, &same_device(x, super::torch::req(ins, 1)?)?)?,
            Op::Elu { alpha } => elu(x, *alpha as f64)?,
            Op::Selu { alpha, gamma } => elu(x, *alpha as f64)?.f_mul_scalar(*gamma as f64)?,
            Op::Gelu { tanh } => x.f_gelu(if *tanh { "tanh" } else { "none" })?,
            _ => return Err(not_mine(self, op)),
        })
    }
    fn param_inputs(&self, op: &Op) -> &'static [usize] {
        match op {
            Op::PRelu => &[1],
            _ => &[],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::conformance::{data, roundtrip, runtimes_agree, shapes_agree};
    use crate::ir::{Op, Tensor};

    #[test]
    fn rectifiers_round_trip_infer_and_agree_with_ort_and_tract() {
        let cases = [
            (Op::LeakyRelu { alpha: 0.1 }, 7),
            (Op::Elu { alpha: 0.7 }, 7),
            (Op::Selu { alpha: super::SELU_ALPHA, gamma: super::SELU_GAMMA }, 7),
            (Op::Gelu { tanh: false }, 20),
            (Op::Gelu { tanh: true }, 20),
        ];
        for (op, min) in cases {
            for opset in [min, 17.max(min), 21] {
                roundtrip(&op, &["x"], &[], opset);
            }
            shapes_agree(&op, &[data(&[2, 3, 4])]);
            runtimes_agree(&format!("{op:?}"), &op, &[], &[2, 3, 5], 17.max(min), false);
        }
        // PRelu with a per-channel slope [C, 1, 1].
        let slope = Tensor::f32(vec![3, 1, 1], vec![0.1, -0.2, 0.5]);
        for opset in [9, 17, 21] {
            roundtrip(&Op::PRelu, &["x", "s"], &[], opset);
        }
        shapes_agree(&Op::PRelu, &[data(&[2, 3, 4, 4]), Some(super::super::conformance::Input::Const(slope.clone()))]);
        runtimes_agree("PRelu", &Op::PRelu, &[("slope", slope)], &[2, 3, 4, 4], 17, false);
    }
}
