//! Normalisation: BatchNormalization (inference form: X, scale, bias, mean, var),
//! InstanceNormalization (X, scale, B) and LRN (across channels).

use anyhow::{anyhow, ensure, Result};
#[cfg(feature = "torch")]
use tch::{Kind, Tensor as T};

use super::attrs::{a_float, a_int, EmitCx, ParseCx};
use super::shapes::req;
#[cfg(feature = "torch")]
use super::torch::{one, same_device};
use super::{not_mine, Family};
use crate::ir::{Fact, Op};

pub struct Normalization;

#[cfg(feature = "torch")]
/// A per-channel vector [C] shaped to broadcast over [N, C, spatial…].
fn per_channel(v: &T, rank: usize) -> Result<T> {
    let mut shape = vec![1i64, -1];
    shape.extend(std::iter::repeat_n(1, rank.saturating_sub(2)));
    Ok(v.f_reshape(shape)?)
}

impl Family for Normalization {
    fn name(&self) -> &'static str {
        "normalization"
    }
    fn op_types(&self) -> &'static [&'static str] {
        &["BatchNormalization", "InstanceNormalization", "LRN"]
    }
    fn parse(&self, op_type: &str, a: &mut ParseCx) -> Result<Op> {
        match op_type {
            "InstanceNormalization" => Ok(Op::InstanceNormalization { epsilon: a.float("epsilon")?.unwrap_or(1e-5) }),
            "LRN" => {
                let size = a.int("size")?.ok_or_else(|| anyhow!("attribute 'size' is required"))?;
                ensure!(size > 0, "attribute 'size' must be positive, got {size}");
                Ok(Op::Lrn {
                    alpha: a.float("alpha")?.unwrap_or(1e-4),
                    beta: a.float("beta")?.unwrap_or(0.75),
                    bias: a.float("bias")?.unwrap_or(1.0),
                    size: size as usize,
                })
            }
            _ => {
                a.float("momentum")?;
                a.int("spatial")?;
                ensure!(a.int("training_mode")?.unwrap_or(0) == 0, "training_mode=1 is not supported (inference only)");
                ensure!(a.only_first_output(), "training outputs (running mean/var) are not supported");
                Ok(Op::BatchNormalization { epsilon: a.float("epsilon")?.unwrap_or(1e-5) })
            }
        }
    }
    fn emit(&self, op: &Op, cx: &mut EmitCx) -> Result<()> {
        match op {
            Op::BatchNormalization { epsilon } | Op::InstanceNormalization { epsilon } => cx.push(a_float("epsilon", *epsilon)),
            Op::Lrn { alpha, beta, bias, size } => {
                cx.push(a_float("alpha", *alpha));
                cx.push(a_float("beta", *beta));
                cx.push(a_float("bias", *bias));
                cx.push(a_int("size", *size as i64));
            }
            _ => return Err(not_mine(self, op)),
        }
        Ok(())
    }
    fn infer(&self, op: &Op, ins: &[Option<&Fact>]) -> Result<Vec<Fact>> {
        let xf = req(ins, 0)?;
        ensure!(xf.shape.len() >= 2, "input X must be [N, C, …], got shape {:?}", xf.shape);
        let params = match op {
            Op::BatchNormalization { .. } => 1..5,
            Op::InstanceNormalization { .. } => 1..3,
            _ => 1..1,
        };
        for k in params {
            let p = req(ins, k)?;
            ensure!(p.shape == [xf.shape[1]], "input #{} has shape {:?}, expected [{}]", k, p.shape, xf.shape[1]);
        }
        Ok(vec![Fact::new(xf.dtype, xf.shape.clone())])
    }
    #[cfg(feature = "torch")]
    fn eval(&self, op: &Op, ins: &[Option<T>]) -> Result<Vec<T>> {
        let x = super::torch::req(ins, 0)?;
        match op {
            Op::BatchNormalization { epsilon } => {
                let p = |k| super::torch::req(ins, k).map(Some);
                one(x.f_batch_norm(p(1)?, p(2)?, p(3)?, p(4)?, false, 0.0, *epsilon as f64, true)?)
            }
            Op::InstanceNormalization { epsilon } => {
                let r = x.dim();
                let axes: Vec<i64> = (2..r as i64).collect();
                let mean = x.f_mean_dim(axes.as_slice(), true, None::<Kind>)?;
                let d = x.f_sub(&mean)?;
                let var = d.f_pow_tensor_scalar(2)?.f_mean_dim(axes.as_slice(), true, None::<Kind>)?;
                let scale = per_channel(&same_device(x, super::torch::req(ins, 1)?)?, r)?;
                let bias = per_channel(&same_device(x, super::torch::req(ins, 2)?)?, r)?;
                one(d.f_div(&var.f_add_scalar(*epsilon as f64)?.f_sqrt()?)?.f_mul(&scale)?.f_add(&bias)?)
            }
            Op::Lrn { alpha, beta, bias, size } => {
                // Σ x² over channels [c − ⌊(size−1)/2⌋, c + ⌈(size−1)/2⌉], zero outside.
                let (c, r) = (x.size()[1], x.dim());
                let (before, after) = ((size - 1) / 2, (size - 1).div_ceil(2));
                let mut pads = vec![0i64; 2 * (r - 2)];
                pads.extend([before as i64, after as i64]);
                let sq = x.f_pow_tensor_scalar(2)?.f_constant_pad_nd(pads.as_slice())?;
                let mut sum = sq.f_narrow(1, 0, c)?;
                for k in 1..*size as i64 {
                    sum = sum.f_add(&sq.f_narrow(1, k, c)?)?;
                }
                let den = sum.f_mul_scalar(*alpha as f64 / *size as f64)?.f_add_scalar(*bias as f64)?.f_pow_tensor_scalar(*beta as f64)?;
                one(x.f_div(&den)?)
            }
            _ => Err(not_mine(self, op)),
        }
    }
    fn param_inputs(&self, _op: &Op) -> &'static [usize] {
        &[1, 2]
    }
}

#[cfg(test)]
mod tests {
    use super::super::conformance::{data, roundtrip, runtimes_agree, shapes_agree, Input};
    use crate::ir::{Op, Tensor};

    #[test]
    fn batchnorm_round_trips_and_infers_what_runs() {
        let op = Op::BatchNormalization { epsilon: 1e-3 };
        for opset in [9, 13, 17] {
            roundtrip(&op, &["x", "s", "b", "m", "v"], &[], opset);
        }
        shapes_agree(&op, &[data(&[2, 3, 4, 4]), data(&[3]), data(&[3]), data(&[3]), data(&[3])]);
    }

    #[test]
    fn instance_norm_and_lrn_agree_with_ort_and_tract() {
        let (scale, bias) = (Tensor::f32(vec![3], vec![1.0, 0.5, -2.0]), Tensor::f32(vec![3], vec![0.0, 0.1, 0.2]));
        let op = Op::InstanceNormalization { epsilon: 1e-5 };
        for opset in [9, 13, 17] {
            roundtrip(&op, &["x", "s", "b"], &[], opset);
        }
        shapes_agree(&op, &[data(&[2, 3, 4, 5]), Some(Input::Const(scale.clone())), Some(Input::Const(bias.clone()))]);
        runtimes_agree("InstanceNormalization", &op, &[("s", scale), ("b", bias)], &[2, 3, 4, 5], 13, false);
        // ONNX Runtime implements odd sizes only.
        for size in [3, 5] {
            let op = Op::Lrn { alpha: 1e-2, beta: 0.75, bias: 1.0, size };
            for opset in [9, 13, 17] {
                roundtrip(&op, &["x"], &[], opset);
            }
            shapes_agree(&op, &[data(&[2, 6, 3, 3])]);
            runtimes_agree(&format!("LRN size {size}"), &op, &[], &[2, 6, 3, 3], 13, false);
        }
    }
}
