//! Comparisons (Equal, Greater, Less: broadcasting, bool result) and Where (condition, X, Y).

use anyhow::{bail, ensure, Result};
#[cfg(feature = "torch")]
use tch::Tensor as T;

use super::attrs::{EmitCx, ParseCx};
use super::shapes::{broadcast, req};
#[cfg(feature = "torch")]
use super::torch::{one, same_device};
use super::{not_mine, Family};
use crate::ir::{Comparison, DType, Fact, Op};

pub struct Logic;

impl Family for Logic {
    fn name(&self) -> &'static str {
        "logic"
    }
    fn op_types(&self) -> &'static [&'static str] {
        &["Equal", "Greater", "Less", "Where"]
    }
    fn parse(&self, op_type: &str, _a: &mut ParseCx) -> Result<Op> {
        if op_type == "Where" {
            return Ok(Op::Where);
        }
        match Comparison::parse(op_type) {
            Some(c) => Ok(Op::Compare(c)),
            None => bail!("internal: '{op_type}' is not a comparison"),
        }
    }
    fn emit(&self, op: &Op, cx: &mut EmitCx) -> Result<()> {
        match op {
            Op::Where => cx.need(9),
            Op::Compare(_) => cx.need(7),
            _ => Err(not_mine(self, op)),
        }
    }
    fn infer(&self, op: &Op, ins: &[Option<&Fact>]) -> Result<Vec<Fact>> {
        let (a, b) = (req(ins, 0)?, req(ins, 1)?);
        match op {
            Op::Compare(_) => Ok(vec![Fact::new(DType::Bool, broadcast(&a.shape, &b.shape)?)]),
            Op::Where => {
                let c = req(ins, 2)?;
                ensure!(b.dtype == c.dtype, "X and Y have different types {:?} and {:?}", b.dtype, c.dtype);
                Ok(vec![Fact::new(b.dtype, broadcast(&broadcast(&a.shape, &b.shape)?, &c.shape)?)])
            }
            _ => Err(not_mine(self, op)),
        }
    }
    #[cfg(feature = "torch")]
    fn eval(&self, op: &Op, ins: &[Option<T>]) -> Result<Vec<T>> {
        let a = super::torch::req(ins, 0)?;
        let b = same_device(a, super::torch::req(ins, 1)?)?;
        match op {
            Op::Compare(c) => one(match c {
                Comparison::Equal => a.f_eq_tensor(&b)?,
                Comparison::Greater => a.f_gt_tensor(&b)?,
                Comparison::Less => a.f_lt_tensor(&b)?,
            }),
            Op::Where => {
                let y = same_device(&b, super::torch::req(ins, 2)?)?;
                let cond = same_device(&b, a)?.f_to_kind(tch::Kind::Bool)?;
                one(b.f_where_self(&cond, &y)?)
            }
            _ => Err(not_mine(self, op)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::conformance::{data, roundtrip, runtimes_agree, shapes_agree, Input};
    use crate::ir::{Comparison, Op, Tensor};

    #[test]
    fn comparisons_and_where_agree_with_ort_and_tract() {
        let t = Tensor::f32(vec![3, 1], vec![-0.5, 0.0, 0.25]);
        for c in Comparison::ALL {
            let op = Op::Compare(c);
            for opset in [9, 13, 17] {
                roundtrip(&op, &["a", "b"], &[], opset);
            }
            shapes_agree(&op, &[data(&[2, 3, 5]), Some(Input::Const(t.clone()))]);
            runtimes_agree(&format!("{c:?}"), &op, &[("t", t.clone())], &[2, 3, 5], 13, false);
        }
        // Where(constant mask, x, y): inference against evaluation.
        let mask = Tensor { dtype: crate::ir::DType::Bool, dims: vec![5], data: crate::ir::Data::I64(vec![1, 0, 1, 1, 0]) };
        let other = Tensor::f32(vec![3, 1], vec![7.0, 8.0, 9.0]);
        roundtrip(&Op::Where, &["c", "x", "y"], &[], 13);
        shapes_agree(&Op::Where, &[Some(Input::Const(mask)), data(&[2, 3, 5]), Some(Input::Const(other.clone()))]);
        // Through the runtimes: y = Where(Greater(x, t), x, other).
        let mut g = super::super::conformance::single_node(&Op::Compare(Comparison::Greater), &[("t", t)], &[2, 3, 5], 13);
        g.nodes.truncate(1);
        g.nodes[0].outputs = vec!["c".into()];
        g.initializers.insert("other".into(), other);
        g.nodes.push(crate::ir::Node {
            name: "where".into(),
            op: Op::Where,
            inputs: vec!["c".into(), "x".into(), "other".into()],
            outputs: vec!["y".into()],
        });
        super::super::conformance::graph_runtimes_agree("Where(Greater(x, t), x, other)", g, &[2, 3, 5], false, true);
    }
}
