//! Binary arithmetic with numpy broadcasting: Add, Sub, Mul, Div (integer Div truncates).

use anyhow::{ensure, Result};
use tch::Tensor as T;

use super::attrs::{EmitCx, ParseCx};
use super::shapes::{broadcast, req};
use super::torch::{one, same_device};
use super::{not_mine, Family};
use crate::ir::{Fact, Op};

pub struct Elementwise;

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
        &["Add", "Sub", "Mul", "Div"]
    }
    fn parse(&self, op_type: &str, _a: &mut ParseCx) -> Result<Op> {
        Ok(match op_type {
            "Add" => Op::Add,
            "Sub" => Op::Sub,
            "Mul" => Op::Mul,
            _ => Op::Div,
        })
    }
    fn emit(&self, _op: &Op, _cx: &mut EmitCx) -> Result<()> {
        Ok(())
    }
    fn infer(&self, _op: &Op, ins: &[Option<&Fact>]) -> Result<Vec<Fact>> {
        let (a, b) = (req(ins, 0)?, req(ins, 1)?);
        ensure!(a.dtype == b.dtype, "operands have different types {:?} and {:?}", a.dtype, b.dtype);
        Ok(vec![Fact::new(a.dtype, broadcast(&a.shape, &b.shape)?)])
    }
    fn eval(&self, op: &Op, ins: &[Option<T>]) -> Result<Vec<T>> {
        let a = super::torch::req(ins, 0)?;
        let b = same_device(a, super::torch::req(ins, 1)?)?;
        one(match op {
            Op::Add => a.f_add(&b)?,
            Op::Sub => a.f_sub(&b)?,
            Op::Mul => a.f_mul(&b)?,
            Op::Div if a.is_floating_point() => a.f_div(&b)?,
            Op::Div => a.f_div_tensor_mode(&b, "trunc")?,
            _ => return Err(not_mine(self, op)),
        })
    }
    fn eval_inplace(&self, op: &Op, ins: &[Option<T>], pos: usize) -> Result<Option<T>> {
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
    fn param_inputs(&self, _op: &Op) -> &'static [usize] {
        &[0, 1]
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
}
