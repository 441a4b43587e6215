//! Element-wise math without attributes: Tanh, Exp, Log, Sqrt, Neg, Abs, Reciprocal (opsets
//! 6/13: types only), Erf (opset ≥ 9), Softplus, and Mish (opset ≥ 18).

use anyhow::{bail, Result};
#[cfg(feature = "torch")]
use tch::Tensor as T;

use super::attrs::{EmitCx, ParseCx};
use super::shapes::req;
#[cfg(feature = "torch")]
use super::torch::one;
use super::{not_mine, Family};
use crate::ir::{Fact, Op, Unary};

pub struct Math;

impl Family for Math {
    fn name(&self) -> &'static str {
        "unary"
    }
    fn op_types(&self) -> &'static [&'static str] {
        &["Tanh", "Exp", "Log", "Sqrt", "Neg", "Abs", "Reciprocal", "Erf", "Softplus", "Mish"]
    }
    fn parse(&self, op_type: &str, _a: &mut ParseCx) -> Result<Op> {
        match Unary::parse(op_type) {
            Some(u) => Ok(Op::Unary(u)),
            None => bail!("internal: '{op_type}' is not a unary op"),
        }
    }
    fn emit(&self, op: &Op, cx: &mut EmitCx) -> Result<()> {
        match op {
            Op::Unary(Unary::Erf) => cx.need(9),
            Op::Unary(Unary::Mish) => cx.need(18),
            Op::Unary(_) => Ok(()),
            _ => Err(not_mine(self, op)),
        }
    }
    fn infer(&self, _op: &Op, ins: &[Option<&Fact>]) -> Result<Vec<Fact>> {
        let f = req(ins, 0)?;
        Ok(vec![Fact::new(f.dtype, f.shape.clone())])
    }
    #[cfg(feature = "torch")]
    fn eval(&self, op: &Op, ins: &[Option<T>]) -> Result<Vec<T>> {
        let Op::Unary(u) = op else { return Err(not_mine(self, op)) };
        let x = super::torch::req(ins, 0)?;
        one(match u {
            Unary::Tanh => x.f_tanh()?,
            Unary::Exp => x.f_exp()?,
            Unary::Log => x.f_log()?,
            Unary::Sqrt => x.f_sqrt()?,
            Unary::Neg => x.f_neg()?,
            Unary::Abs => x.f_abs()?,
            Unary::Reciprocal => x.f_reciprocal()?,
            Unary::Erf => x.f_erf()?,
            // ln(1 + eˣ) (torch switches to x above 20, a difference below 2e-9).
            Unary::Softplus => x.f_softplus()?,
            Unary::Mish => x.f_mish()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::conformance::{data, roundtrip, runtimes_agree, shapes_agree};
    use crate::ir::{Op, Unary};

    #[test]
    fn unary_ops_round_trip_infer_and_agree_with_ort_and_tract() {
        for u in Unary::ALL {
            let op = Op::Unary(u);
            let min = match u {
                Unary::Erf => 9,
                Unary::Mish => 18,
                _ => 7,
            };
            for opset in [min, 13.max(min), 17.max(min), 21] {
                roundtrip(&op, &["x"], &[], opset);
            }
            shapes_agree(&op, &[data(&[2, 3, 4])]);
            // Log, Sqrt and Reciprocal on positive inputs (the harness feeds x in [−1, 1)).
            let positive = matches!(u, Unary::Log | Unary::Sqrt | Unary::Reciprocal);
            runtimes_agree(&format!("{u:?}"), &op, &[], &[2, 3, 5], 17.max(min), positive);
        }
    }
}
