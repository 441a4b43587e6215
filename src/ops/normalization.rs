//! BatchNormalization (inference form: X, scale, bias, mean, var).

use anyhow::{ensure, Result};
use tch::Tensor as T;

use super::attrs::{a_float, EmitCx, ParseCx};
use super::shapes::req;
use super::torch::one;
use super::{not_mine, Family};
use crate::ir::{Fact, Op};

pub struct Normalization;

impl Family for Normalization {
    fn name(&self) -> &'static str {
        "normalization"
    }
    fn op_types(&self) -> &'static [&'static str] {
        &["BatchNormalization"]
    }
    fn parse(&self, _op_type: &str, a: &mut ParseCx) -> Result<Op> {
        a.float("momentum")?;
        a.int("spatial")?;
        ensure!(a.int("training_mode")?.unwrap_or(0) == 0, "training_mode=1 is not supported (inference only)");
        ensure!(a.only_first_output(), "training outputs (running mean/var) are not supported");
        Ok(Op::BatchNormalization { epsilon: a.float("epsilon")?.unwrap_or(1e-5) })
    }
    fn emit(&self, op: &Op, cx: &mut EmitCx) -> Result<()> {
        let Op::BatchNormalization { epsilon } = op else { return Err(not_mine(self, op)) };
        cx.push(a_float("epsilon", *epsilon));
        Ok(())
    }
    fn infer(&self, _op: &Op, ins: &[Option<&Fact>]) -> Result<Vec<Fact>> {
        let xf = req(ins, 0)?;
        ensure!(xf.shape.len() >= 2, "input X must be [N, C, …], got shape {:?}", xf.shape);
        for k in 1..5 {
            let p = req(ins, k)?;
            ensure!(p.shape == [xf.shape[1]], "input #{} has shape {:?}, expected [{}]", k, p.shape, xf.shape[1]);
        }
        Ok(vec![Fact::new(xf.dtype, xf.shape.clone())])
    }
    fn eval(&self, op: &Op, ins: &[Option<T>]) -> Result<Vec<T>> {
        let Op::BatchNormalization { epsilon } = op else { return Err(not_mine(self, op)) };
        let p = |k| super::torch::req(ins, k).map(Some);
        one(super::torch::req(ins, 0)?.f_batch_norm(p(1)?, p(2)?, p(3)?, p(4)?, false, 0.0, *epsilon as f64, true)?)
    }
    fn param_inputs(&self, _op: &Op) -> &'static [usize] {
        &[1, 2]
    }
}

#[cfg(test)]
mod tests {
    use super::super::conformance::{data, roundtrip, shapes_agree};
    use crate::ir::Op;

    #[test]
    fn batchnorm_round_trips_and_infers_what_runs() {
        let op = Op::BatchNormalization { epsilon: 1e-3 };
        for opset in [9, 13, 17] {
            roundtrip(&op, &["x", "s", "b", "m", "v"], &[], opset);
        }
        shapes_agree(&op, &[data(&[2, 3, 4, 4]), data(&[3]), data(&[3]), data(&[3]), data(&[3])]);
    }
}
