//! Gemm (2-D, optional transposes, alpha/beta, bias C) and MatMul (numpy batching, 1-D operands).

use anyhow::{ensure, Context, Result};
#[cfg(feature = "torch")]
use tch::Tensor as T;

use super::attrs::{a_float, a_int, EmitCx, ParseCx};
use super::shapes::{broadcast, req};
#[cfg(feature = "torch")]
use super::torch::{one, opt};
use super::{not_mine, Family};
use crate::ir::{Fact, Op};

pub struct Linear;

impl Family for Linear {
    fn name(&self) -> &'static str {
        "linear"
    }
    fn op_types(&self) -> &'static [&'static str] {
        &["Gemm", "MatMul"]
    }
    fn parse(&self, op_type: &str, a: &mut ParseCx) -> Result<Op> {
        if op_type == "MatMul" {
            return Ok(Op::MatMul);
        }
        Ok(Op::Gemm {
            alpha: a.float("alpha")?.unwrap_or(1.0),
            beta: a.float("beta")?.unwrap_or(1.0),
            trans_a: a.int("transA")?.unwrap_or(0) != 0,
            trans_b: a.int("transB")?.unwrap_or(0) != 0,
        })
    }
    fn emit(&self, op: &Op, cx: &mut EmitCx) -> Result<()> {
        match op {
            Op::MatMul => {}
            Op::Gemm { alpha, beta, trans_a, trans_b } => {
                cx.push(a_float("alpha", *alpha));
                cx.push(a_float("beta", *beta));
                if *trans_a {
                    cx.push(a_int("transA", 1));
                }
                if *trans_b {
                    cx.push(a_int("transB", 1));
                }
            }
            _ => return Err(not_mine(self, op)),
        }
        Ok(())
    }
    fn infer(&self, op: &Op, ins: &[Option<&Fact>]) -> Result<Vec<Fact>> {
        let (a, b) = (req(ins, 0)?, req(ins, 1)?);
        match op {
            Op::Gemm { trans_a, trans_b, .. } => {
                ensure!(a.shape.len() == 2 && b.shape.len() == 2, "Gemm needs 2-D A and B, got {:?} and {:?}", a.shape, b.shape);
                let (m, ka) = if *trans_a { (a.shape[1], a.shape[0]) } else { (a.shape[0], a.shape[1]) };
                let (kb, n) = if *trans_b { (b.shape[1], b.shape[0]) } else { (b.shape[0], b.shape[1]) };
                ensure!(ka == kb, "inner dimensions differ: A {:?} and B {:?} (transA={}, transB={})", a.shape, b.shape, trans_a, trans_b);
                if let Some(c) = ins.get(2).copied().flatten() {
                    broadcast(&[m, n], &c.shape).context("bias C")?;
                }
                Ok(vec![Fact::new(a.dtype, vec![m, n])])
            }
            Op::MatMul => {
                ensure!(!a.shape.is_empty() && !b.shape.is_empty(), "MatMul operands must not be scalars");
                let (mut sa, mut sb) = (a.shape.clone(), b.shape.clone());
                if sa.len() == 1 {
                    sa.insert(0, 1);
                }
                if sb.len() == 1 {
                    sb.push(1);
                }
                let (ra, rb) = (sa.len(), sb.len());
                ensure!(sa[ra - 1] == sb[rb - 2], "inner dimensions differ: {:?} × {:?}", a.shape, b.shape);
                let mut shape = broadcast(&sa[..ra - 2], &sb[..rb - 2])?;
                if a.shape.len() > 1 {
                    shape.push(sa[ra - 2]);
                }
                if b.shape.len() > 1 {
                    shape.push(sb[rb - 1]);
                }
                Ok(vec![Fact::new(a.dtype, shape)])
            }
            _ => Err(not_mine(self, op)),
        }
    }
    #[cfg(feature = "torch")]
    fn eval(&self, op: &Op, ins: &[Option<T>]) -> Result<Vec<T>> {
        let x = super::torch::req(ins, 0)?;
        match op {
            Op::Gemm { alpha, beta, trans_a, trans_b } => {
                let a = if *trans_a { x.f_tr()? } else { x.shallow_clone() };
                let b = if *trans_b { super::torch::req(ins, 1)?.f_tr()? } else { super::torch::req(ins, 1)?.shallow_clone() };
                let mut y = a.f_matmul(&b)?;
                if *alpha != 1.0 {
                    y *= *alpha as f64;
                }
                if let Some(c) = opt(ins, 2) {
                    y = if *beta == 1.0 { y.f_add(c)? } else { y.f_add(&(c * (*beta as f64)))? };
                }
                one(y)
            }
            Op::MatMul => one(x.f_matmul(super::torch::req(ins, 1)?)?),
            _ => Err(not_mine(self, op)),
        }
    }
    fn macs(&self, op: &Op, shape: &dyn Fn(usize) -> Vec<usize>, out_numel: u64) -> u64 {
        match op {
            Op::Gemm { trans_a, .. } => {
                let a = shape(0);
                if a.len() == 2 {
                    out_numel * if *trans_a { a[0] } else { a[1] } as u64
                } else {
                    0
                }
            }
            _ => shape(0).last().map_or(0, |&k| out_numel * k as u64),
        }
    }
    fn param_inputs(&self, op: &Op) -> &'static [usize] {
        match op {
            Op::MatMul => &[0, 1],
            _ => &[1, 2],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::conformance::{data, roundtrip, shapes_agree};
    use crate::ir::Op;

    #[test]
    fn gemm_and_matmul_round_trip_and_infer_what_runs() {
        let gemm = Op::Gemm { alpha: 0.5, beta: 2.0, trans_a: false, trans_b: true };
        for opset in [9, 13, 17] {
            roundtrip(&gemm, &["a", "b", "c"], &[], opset);
            roundtrip(&Op::MatMul, &["a", "b"], &[], opset);
        }
        shapes_agree(&gemm, &[data(&[4, 3]), data(&[5, 3]), data(&[5])]);
        shapes_agree(&Op::MatMul, &[data(&[2, 4, 3]), data(&[3, 6])]);
        shapes_agree(&Op::MatMul, &[data(&[3]), data(&[2, 3, 6])]);
    }
}
