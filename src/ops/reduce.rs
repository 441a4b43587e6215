//! ReduceMean (axes an attribute before opset 18, an input from 18 on — the reader resolves a
//! constant axes input into the attribute, `onnx::read::resolve_reduce_axes`).

use anyhow::{ensure, Result};
use tch::{Kind, Tensor as T};

use super::attrs::{a_int, a_ints, EmitCx, ParseCx};
use super::shapes::{norm_axis, req};
use super::torch::one;
use super::{not_mine, Family};
use crate::ir::{Fact, Op};

pub struct Reduce;

impl Family for Reduce {
    fn name(&self) -> &'static str {
        "reduce"
    }
    fn op_types(&self) -> &'static [&'static str] {
        &["ReduceMean"]
    }
    fn parse(&self, _op_type: &str, a: &mut ParseCx) -> Result<Op> {
        let keepdims = a.int("keepdims")?.unwrap_or(1) != 0;
        let mut axes = a.ints("axes")?;
        if a.opset >= 18 {
            ensure!(a.int("noop_with_empty_axes")?.unwrap_or(0) == 0, "noop_with_empty_axes=1 is not supported");
            if a.inputs.len() > 1 && !a.inputs[1].is_empty() {
                // Resolved by the reader once initializers are known (see read::resolve_reduce_axes).
                axes = None;
            }
        }
        Ok(Op::ReduceMean { axes, keepdims })
    }
    fn emit(&self, op: &Op, cx: &mut EmitCx) -> Result<()> {
        let Op::ReduceMean { axes, keepdims } = op else { return Err(not_mine(self, op)) };
        cx.push(a_int("keepdims", *keepdims as i64));
        cx.ins.truncate(1);
        if let Some(axes) = axes {
            ensure!(cx.opset < 18, "ReduceMean with axes for opset ≥ 18 needs an axes input; write opset ≤ 17");
            cx.push(a_ints("axes", axes));
        }
        Ok(())
    }
    fn infer(&self, op: &Op, ins: &[Option<&Fact>]) -> Result<Vec<Fact>> {
        let Op::ReduceMean { axes, keepdims } = op else { return Err(not_mine(self, op)) };
        let f = req(ins, 0)?;
        let r = f.shape.len();
        let axes: Vec<usize> = match axes {
            None => (0..r).collect(),
            Some(a) => a.iter().map(|&a| norm_axis(a, r)).collect::<Result<_>>()?,
        };
        let shape = (0..r).filter_map(|i| if axes.contains(&i) { keepdims.then_some(1) } else { Some(f.shape[i]) }).collect();
        Ok(vec![Fact::new(f.dtype, shape)])
    }
    fn eval(&self, op: &Op, ins: &[Option<T>]) -> Result<Vec<T>> {
        let Op::ReduceMean { axes, keepdims } = op else { return Err(not_mine(self, op)) };
        let xt = super::torch::req(ins, 0)?;
        let r = xt.dim();
        let axes: Vec<i64> = match axes {
            Some(a) => a.iter().map(|&a| norm_axis(a, r).map(|v| v as i64)).collect::<Result<_>>()?,
            None => (0..r as i64).collect(),
        };
        one(xt.f_mean_dim(axes.as_slice(), *keepdims, None::<Kind>)?)
    }
}

#[cfg(test)]
mod tests {
    use super::super::conformance::{data, roundtrip, shapes_agree};
    use crate::ir::Op;

    #[test]
    fn reduce_mean_round_trips_and_infers_what_runs() {
        for op in [Op::ReduceMean { axes: Some(vec![2, -1]), keepdims: true }, Op::ReduceMean { axes: None, keepdims: false }] {
            for opset in [9, 13, 17] {
                roundtrip(&op, &["x"], &[], opset);
            }
            shapes_agree(&op, &[data(&[2, 3, 4, 5])]);
        }
    }
}
