//! Activations: Relu, Sigmoid, HardSigmoid, HardSwish, Clip (bounds as inputs since opset 11,
//! attributes before), Softmax, LogSoftmax and Hardmax (opset < 13: the input coerced to 2-D at `axis`;
//! the writer lowers such a legacy op to Flatten → Softmax → Reshape for opset ≥ 13,
//! `onnx::lower`).

use anyhow::{ensure, Result};
#[cfg(feature = "torch")]
use tch::{Kind, Tensor as T};

use super::attrs::{a_float, a_int, EmitCx, ParseCx};
use super::shapes::{norm_axis, req};
#[cfg(feature = "torch")]
use super::torch::{one, opt, scalar};
use super::{not_mine, Family};
use crate::ir::{Fact, Op, Tensor};

pub struct Activation;

#[cfg(feature = "torch")]
/// Clip's optional `min` and `max` inputs as numbers.
fn clip_bounds(ins: &[Option<T>]) -> Result<(Option<f64>, Option<f64>)> {
    let bound = |k: usize| opt(ins, k).map(scalar).transpose();
    Ok((bound(1)?, bound(2)?))
}

impl Family for Activation {
    fn name(&self) -> &'static str {
        "activation"
    }
    fn op_types(&self) -> &'static [&'static str] {
        &["Relu", "Sigmoid", "HardSwish", "HardSigmoid", "Clip", "Softmax", "LogSoftmax", "Hardmax"]
    }
    fn parse(&self, op_type: &str, a: &mut ParseCx) -> Result<Op> {
        Ok(match op_type {
            "Relu" => Op::Relu,
            "Sigmoid" => Op::Sigmoid,
            "HardSwish" => Op::HardSwish,
            "HardSigmoid" => Op::HardSigmoid { alpha: a.float("alpha")?.unwrap_or(0.2), beta: a.float("beta")?.unwrap_or(0.5) },
            "Clip" => {
                if a.opset < 11 {
                    let lo = a.float("min")?.unwrap_or(f32::MIN);
                    let hi = a.float("max")?.unwrap_or(f32::MAX);
                    a.const_input("min", Tensor::f32(vec![], vec![lo]), 1);
                    a.const_input("max", Tensor::f32(vec![], vec![hi]), 2);
                }
                Op::Clip
            }
            _ => {
                let legacy = a.opset < 13;
                let axis = a.int("axis")?.unwrap_or(if legacy { 1 } else { -1 });
                match op_type {
                    "LogSoftmax" => Op::LogSoftmax { axis, legacy },
                    "Hardmax" => Op::Hardmax { axis, legacy },
                    _ => Op::Softmax { axis, legacy },
                }
            }
        })
    }
    fn emit(&self, op: &Op, cx: &mut EmitCx) -> Result<()> {
        match op {
            Op::Relu | Op::Sigmoid => {}
            Op::HardSwish => cx.need(14)?,
            Op::HardSigmoid { alpha, beta } => {
                cx.push(a_float("alpha", *alpha));
                cx.push(a_float("beta", *beta));
            }
            Op::Clip => {
                if cx.opset < 11 {
                    let (inputs, consts, opset) = (cx.inputs, cx.consts, cx.opset);
                    let scalar = |k: usize| -> Result<Option<f32>> {
                        match inputs.get(k).filter(|n| !n.is_empty()) {
                            None => Ok(None),
                            Some(n) => Ok(Some(
                                consts(n)
                                    .ok_or_else(|| anyhow::anyhow!("Clip bound '{n}' must be constant for opset {opset}"))?
                                    .scalar_f64()? as f32,
                            )),
                        }
                    };
                    if let Some(v) = scalar(1)? {
                        cx.push(a_float("min", v));
                    }
                    if let Some(v) = scalar(2)? {
                        cx.push(a_float("max", v));
                    }
                    cx.ins.truncate(1);
                }
            }
            Op::Softmax { axis, legacy } | Op::LogSoftmax { axis, legacy } | Op::Hardmax { axis, legacy } => {
                ensure!(
                    !*legacy || cx.opset < 13 || *axis == -1,
                    "legacy (opset < 13) {} on axis {axis} cannot be written for opset {} as one node (onnx::lower rewrites it)",
                    op.name(),
                    cx.opset
                );
                ensure!(
                    *legacy || cx.opset >= 13 || *axis == -1,
                    "{} on axis {axis} (opset ≥ 13 semantics) cannot be written for opset {} < 13 unless it is the last axis",
                    op.name(),
                    cx.opset
                );
                cx.push(a_int("axis", *axis));
            }
            _ => return Err(not_mine(self, op)),
        }
        Ok(())
    }
    fn infer(&self, op: &Op, ins: &[Option<&Fact>]) -> Result<Vec<Fact>> {
        let f = req(ins, 0)?;
        if let Op::Softmax { axis, .. } | Op::LogSoftmax { axis, .. } | Op::Hardmax { axis, .. } = op {
            norm_axis(*axis, f.shape.len())?;
        }
        Ok(vec![Fact::new(f.dtype, f.shape.clone())])
    }
    #[cfg(feature = "torch")]
    fn eval(&self, op: &Op, ins: &[Option<T>]) -> Result<Vec<T>> {
        let x = super::torch::req(ins, 0)?;
        match op {
            Op::Relu => one(x.f_relu()?),
            Op::Sigmoid => one(x.f_sigmoid()?),
            Op::HardSwish => one(x.f_hardswish()?),
            Op::HardSigmoid { alpha, beta } => one((x * (*alpha as f64) + (*beta as f64)).f_clamp(0.0, 1.0)?),
            Op::Clip => {
                let (lo, hi) = clip_bounds(ins)?;
                one(match (lo, hi) {
                    (Some(l), Some(h)) => x.f_clamp(l, h)?,
                    (Some(l), None) => x.f_clamp_min(l)?,
                    (None, Some(h)) => x.f_clamp_max(h)?,
                    (None, None) => x.shallow_clone(),
                })
            }
            Op::Softmax { axis, legacy } | Op::LogSoftmax { axis, legacy } | Op::Hardmax { axis, legacy } => {
                let f = |t: &T, dim: i64| -> Result<T> {
                    Ok(match op {
                        Op::LogSoftmax { .. } => t.f_log_softmax(dim, None::<Kind>)?,
                        Op::Hardmax { .. } => t.f_zeros_like()?.f_scatter_value(dim, &t.f_argmax(dim, true)?, 1.0)?,
                        _ => t.f_softmax(dim, None::<Kind>)?,
                    })
                };
                let a = norm_axis(*axis, x.dim())?;
                if *legacy && a + 1 != x.dim() {
                    let d = x.size();
                    let flat = x.f_reshape([d[..a].iter().product::<i64>(), -1])?;
                    one(f(&flat, 1)?.f_reshape(&d)?)
                } else {
                    one(f(x, a as i64)?)
                }
            }
            _ => Err(not_mine(self, op)),
        }
    }
    #[cfg(feature = "torch")]
    fn eval_inplace(&self, op: &Op, ins: &[Option<T>], pos: usize) -> Result<Option<T>> {
        let mut x = super::torch::req(ins, pos)?.shallow_clone();
        if !x.is_floating_point() {
            return Ok(None);
        }
        Ok(Some(match op {
            Op::Relu => x.f_relu_()?,
            Op::Sigmoid => x.f_sigmoid_()?,
            Op::HardSwish => x.f_hardswish_()?,
            Op::Clip => match clip_bounds(ins)? {
                (Some(l), Some(h)) => x.f_clamp_(l, h)?,
                (Some(l), None) => x.f_clamp_min_(l)?,
                (None, Some(h)) => x.f_clamp_max_(h)?,
                (None, None) => return Ok(None),
            },
            _ => return Ok(None),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::super::conformance::{data, roundtrip, scalar, shapes_agree};
    use crate::ir::{Op, Tensor};

    #[test]
    fn activations_round_trip_and_infer_what_runs() {
        for op in [Op::Relu, Op::Sigmoid, Op::HardSigmoid { alpha: 0.25, beta: 0.4 }, Op::Softmax { axis: -1, legacy: false }] {
            for opset in [13, 17] {
                roundtrip(&op, &["x"], &[], opset);
            }
            shapes_agree(&op, &[data(&[2, 5])]);
        }
        roundtrip(&Op::HardSwish, &["x"], &[], 14);
        shapes_agree(&Op::HardSwish, &[data(&[2, 3, 4])]);
        // Legacy Softmax keeps its semantics where it is read and written (opset < 13).
        roundtrip(&Op::Softmax { axis: 1, legacy: true }, &["x"], &[], 11);
        shapes_agree(&Op::Softmax { axis: 1, legacy: true }, &[data(&[2, 3, 4])]);
    }

    #[test]
    fn softmaxes_of_either_definition_are_written_for_any_opset_with_their_meaning() {
        use super::super::conformance::runtimes_agree;
        for legacy in [true, false] {
            for (axis, ok_below_13) in [(1, legacy), (2, true), (-1, true)] {
                for op in [Op::Softmax { axis, legacy }, Op::LogSoftmax { axis, legacy }, Op::Hardmax { axis, legacy }] {
                    for opset in [11, 13, 17] {
                        if opset < 13 && !ok_below_13 {
                            // An opset-13 softmax over a middle axis has no one-node opset-11
                            // form: refused by name, never written with another meaning.
                            let g = super::super::conformance::single_node(&op, &[], &[2, 3, 4], opset);
                            let opts = crate::onnx::WriteOptions { opset, ..Default::default() };
                            let err = crate::onnx::write_model(&g, &opts).expect_err("written with another meaning");
                            assert!(format!("{err:#}").contains("cannot be written for opset 11"), "{op:?}: {err:#}");
                            continue;
                        }
                        runtimes_agree(&format!("{op:?} at opset {opset}"), &op, &[], &[2, 3, 4], opset, false);
                    }
                }
            }
        }
    }

    #[test]
    fn clip_bounds_move_between_attributes_and_inputs() {
        let bounds = [("lo", Tensor::f32(vec![], vec![0.0])), ("hi", Tensor::f32(vec![], vec![6.0]))];
        for opset in [9, 11, 13, 17] {
            roundtrip(&Op::Clip, &["x", "lo", "hi"], &bounds, opset);
        }
        shapes_agree(&Op::Clip, &[data(&[2, 3]), scalar(0.0), scalar(6.0)]);
    }
}
