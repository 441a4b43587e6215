//! Arithmetic with numpy broadcasting: Add, Sub, Mul, Div (integer Div truncates), Pow, and the
//! variadic Sum, Mean, Max, Min (broadcasting since opset 8).

use anyhow::{ensure, Result};
#[cfg(feature = "torch")]
use tch::Tensor as T;

use super::attrs::{EmitCx, ParseCx};
#[cfg(feature = "torch")]
use super::not_mine;
use super::shapes::{broadcast, req};
#[cfg(feature = "torch")]
use super::torch::{one, same_device};
use super::Family;
use crate::ir::{Fact, Op, Variadic};

pub struct Elementwise;

#[cfg(feature = "torch")]
/// Whether `b` broadcasts onto `a`'s shape without changing it (so `a op= b` is `a op b`).
fn broadcasts_into(b: &T, a: &T) -> bool {
    let (a, b) = (a.size(), b.size());
    b.len() <= a.len() && b.iter().rev().zip(a.iter().rev()).all(|(&x, &y)| x == y || x == 1)
}

impl Family for Elementwise {
    fn name(&self) -> &'static str {
        "elementwise"
    }
    fn op_types(&self) -> &'static [&'static str] {
        &["Add", "Sub", "Mul", "Div", "Pow", "Sum", "Mean", "Max", "Min"]
    }
    fn parse(&self, op_type: &str, _a: &mut ParseCx) -> Result<Op> {
        Ok(match op_type {
            "Add" => Op::Add,
            "Sub" => Op::Sub,
            "Mul" => Op::Mul,
            "Div" => Op::Div,
            "Pow" => Op::Pow,
            other => Op::Variadic(Variadic::parse(other).ok_or_else(|| anyhow::anyhow!("internal: '{other}' is not elementwise"))?),
        })
    }
    fn emit(&self, op: &Op, cx: &mut EmitCx) -> Result<()> {
        match op {
            Op::Pow => cx.need(7),
            Op::Variadic(_) => cx.need(8),
            _ => Ok(()),
        }
    }
    fn infer(&self, op: &Op, ins: &[Option<&Fact>]) -> Result<Vec<Fact>> {
        if let Op::Variadic(_) = op {
            let parts: Vec<&Fact> = ins.iter().map(|f| f.ok_or_else(|| anyhow::anyhow!("empty input name"))).collect::<Result<_>>()?;
            ensure!(!parts.is_empty(), "{} needs at least one input", op.name());
            let mut shape = parts[0].shape.clone();
            for p in &parts[1..] {
                ensure!(p.dtype == parts[0].dtype, "inputs have different types {:?} and {:?}", parts[0].dtype, p.dtype);
                shape = broadcast(&shape, &p.shape)?;
            }
            return Ok(vec![Fact::new(parts[0].dtype, shape)]);
        }
        let (a, b) = (req(ins, 0)?, req(ins, 1)?);
        if !matches!(op, Op::Pow) {
            ensure!(a.dtype == b.dtype, "operands have different types {:?} and {:?}", a.dtype, b.dtype);
        }
        Ok(vec![Fact::new(a.dtype, broadcast(&a.shape, &b.shape)?)])
    }
    #[cfg(feature = "torch")]
    fn eval(&self, op: &Op, ins: &[Option<T>]) -> Result<Vec<T>> {
        if let Op::Variadic(v) = op {
            let parts: Vec<&T> = ins.iter().map(|t| t.as_ref().ok_or_else(|| anyhow::anyhow!("empty input"))).collect::<Result<_>>()?;
            ensure!(!parts.is_empty(), "{} needs at least one input", op.name());
            let mut acc = parts[0].shallow_clone();
            for p in &parts[1..] {
                let p = same_device(&acc, p)?;
                acc = match v {
                    Variadic::Sum | Variadic::Mean => acc.f_add(&p)?,
                    Variadic::Max => acc.f_maximum(&p)?,
                    Variadic::Min => acc.f_minimum(&p)?,
                };
            }
            if *v == Variadic::Mean {
                acc = acc.f_div_scalar(parts.len() as f64)?;
            }
            // One input hands it back (a view: the in-place plan never writes through it).
            return one(acc);
        }
        let a = super::torch::req(ins, 0)?;
        let b = same_device(a, super::torch::req(ins, 1)?)?;
        one(match op {
            Op::Add => a.f_add(&b)?,
            Op::Sub => a.f_sub(&b)?,
            Op::Mul => a.f_mul(&b)?,
            Op::Div if a.is_floating_point() => a.f_div(&b)?,
            Op::Div => a.f_div_tensor_mode(&b, "trunc")?,
            Op::Pow if a.is_floating_point() => a.f_pow(&b.f_to_kind(a.kind())?)?,
            Op::Pow => a.f_pow(&b)?.f_to_kind(a.kind())?,
            _ => return Err(not_mine(self, op)),
        })
    }
    #[cfg(feature = "torch")]
    fn eval_inplace(&self, op: &Op, ins: &[Option<T>], pos: usize) -> Result<Option<T>> {
        if !matches!(op, Op::Add | Op::Sub | Op::Mul | Op::Div) {
            return Ok(None);
        }
        let mut x = super::torch::req(ins, pos)?.shallow_clone();
        if !x.is_floating_point() {
            return Ok(None);
        }
        let other = same_device(&x, super::torch::req(ins, 1 - pos)?)?;
        if other.kind() != x.kind() || !broadcasts_into(&other, &x) || (pos == 1 && !matches!(op, Op::Add | Op::Mul)) {
            return Ok(None);
        }
        Ok(Some(match op {
            Op::Add => x.f_add_(&other)?,
            Op::Sub => x.f_sub_(&other)?,
            Op::Mul => x.f_mul_(&other)?,
            Op::Div => x.f_div_(&other)?,
            _ => return Err(not_mine(self, op)),
        }))
    }
    fn param_inputs(&self, op: &Op) -> &'static [usize] {
        match op {
            Op::Add | Op::Sub | Op::Mul | Op::Div => &[0, 1],
            _ => &[],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::conformance::{data, roundtrip, shapes_agree};
    use crate::ir::Op;

    #[test]
    fn arithmetic_round_trips_and_broadcasts_as_it_runs() {
        for op in [Op::Add, Op::Sub, Op::Mul, Op::Div] {
            for opset in [9, 13, 17] {
                roundtrip(&op, &["a", "b"], &[], opset);
            }
            shapes_agree(&op, &[data(&[2, 1, 5]), data(&[3, 1])]);
        }
    }

    #[test]
    fn pow_and_variadic_ops_round_trip_infer_and_agree_with_ort_and_tract() {
        use super::super::conformance::{runtimes_agree, Input};
        use crate::ir::{Tensor, Variadic};
        let y = Tensor::f32(vec![3, 1], vec![2.0, 0.5, 3.0]);
        let z = Tensor::f32(vec![5], vec![0.1, -0.2, 0.3, 0.0, 1.0]);
        for opset in [7, 13, 17] {
            roundtrip(&Op::Pow, &["a", "b"], &[], opset);
        }
        shapes_agree(&Op::Pow, &[data(&[2, 3, 5]), Some(Input::Const(y.clone()))]);
        runtimes_agree("Pow", &Op::Pow, &[("e", y.clone())], &[2, 3, 5], 17, true);
        for v in Variadic::ALL {
            let op = Op::Variadic(v);
            for opset in [8, 13, 17] {
                roundtrip(&op, &["a", "b", "c"], &[], opset);
            }
            shapes_agree(&op, &[data(&[2, 3, 5]), Some(Input::Const(y.clone())), Some(Input::Const(z.clone()))]);
            runtimes_agree(v.name(), &op, &[("e", y.clone()), ("f", z.clone())], &[2, 3, 5], 17, false);
            runtimes_agree(&format!("{} of one", v.name()), &op, &[], &[2, 3], 17, false);
        }
    }
}
