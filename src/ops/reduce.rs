//! Reductions over axes: ReduceMean, ReduceSum, ReduceMax, ReduceMin, ReduceL2 (axes an
//! attribute until ReduceSum's opset 13 / the others' 18, an input after — the reader folds a
//! constant axes input into the attribute, `onnx::read::resolve_reduce_axes`, and the writer
//! turns it back into an input, `onnx::lower`), and ArgMax.

use anyhow::{bail, ensure, Result};
#[cfg(feature = "torch")]
use tch::{Kind, Tensor as T};

use super::attrs::{a_int, a_ints, EmitCx, ParseCx};
use super::shapes::{norm_axis, req};
#[cfg(feature = "torch")]
use super::torch::one;
use super::{not_mine, Family};
use crate::ir::{DType, Fact, Op, Reduction};

pub struct Reduce;

/// The opset from which `op`'s axes are an input.
pub fn axes_input_from(op: &Op) -> Option<i64> {
    match op {
        Op::ReduceMean { .. } => Some(18),
        Op::Reduce { kind, .. } => Some(kind.axes_input_from()),
        _ => None,
    }
}

/// The axes and keepdims of a reduction op.
fn parts(op: &Op) -> Option<(&Option<Vec<i64>>, bool)> {
    match op {
        Op::ReduceMean { axes, keepdims } | Op::Reduce { axes, keepdims, .. } => Some((axes, *keepdims)),
        _ => None,
    }
}

fn axes_of(axes: &Option<Vec<i64>>, rank: usize) -> Result<Vec<usize>> {
    match axes {
        None => Ok((0..rank).collect()),
        Some(a) => a.iter().map(|&a| norm_axis(a, rank)).collect(),
    }
}

impl Family for Reduce {
    fn name(&self) -> &'static str {
        "reduce"
    }
    fn op_types(&self) -> &'static [&'static str] {
        &["ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceL2", "ArgMax"]
    }
    fn parse(&self, op_type: &str, a: &mut ParseCx) -> Result<Op> {
        let keepdims = a.int("keepdims")?.unwrap_or(1) != 0;
        if op_type == "ArgMax" {
            ensure!(a.int("select_last_index")?.unwrap_or(0) == 0, "select_last_index=1 is not supported");
            return Ok(Op::ArgMax { axis: a.int("axis")?.unwrap_or(0), keepdims });
        }
        let kind = Reduction::parse(op_type);
        let from = kind.map_or(18, |k| k.axes_input_from());
        let mut axes = a.ints("axes")?;
        if a.opset >= from {
            ensure!(a.int("noop_with_empty_axes")?.unwrap_or(0) == 0, "noop_with_empty_axes=1 is not supported");
            if a.inputs.len() > 1 && !a.inputs[1].is_empty() {
                // Resolved by the reader once initializers are known (see read::resolve_reduce_axes).
                axes = None;
            }
        }
        Ok(match kind {
            Some(kind) => Op::Reduce { kind, axes, keepdims },
            None => Op::ReduceMean { axes, keepdims },
        })
    }
    fn emit(&self, op: &Op, cx: &mut EmitCx) -> Result<()> {
        if let Op::ArgMax { axis, keepdims } = op {
            cx.push(a_int("axis", *axis));
            cx.push(a_int("keepdims", *keepdims as i64));
            return Ok(());
        }
        let (Some((axes, keepdims)), Some(from)) = (parts(op), axes_input_from(op)) else { return Err(not_mine(self, op)) };
        cx.push(a_int("keepdims", keepdims as i64));
        let has_input = cx.inputs.len() > 1 && !cx.inputs[1].is_empty();
        match axes {
            Some(axes) if cx.opset < from => {
                cx.ins.truncate(1);
                cx.push(a_ints("axes", axes));
            }
            // The writer's lowering added the axes as a constant input.
            Some(_) if has_input => {}
            Some(_) => bail!("{} with axes for opset ≥ {from} needs an axes input (onnx::lower adds it)", op.name()),
            None => cx.ins.truncate(1),
        }
        Ok(())
    }
    fn infer(&self, op: &Op, ins: &[Option<&Fact>]) -> Result<Vec<Fact>> {
        let f = req(ins, 0)?;
        let r = f.shape.len();
        if let Op::ArgMax { axis, keepdims } = op {
            let a = norm_axis(*axis, r)?;
            let shape = (0..r).filter_map(|i| if i == a { keepdims.then_some(1) } else { Some(f.shape[i]) }).collect();
            return Ok(vec![Fact::new(DType::I64, shape)]);
        }
        let (axes, keepdims) = parts(op).ok_or_else(|| not_mine(self, op))?;
        let axes = axes_of(axes, r)?;
        let shape = (0..r).filter_map(|i| if axes.contains(&i) { keepdims.then_some(1) } else { Some(f.shape[i]) }).collect();
        Ok(vec![Fact::new(f.dtype, shape)])
    }
    #[cfg(feature = "torch")]
    fn eval(&self, op: &Op, ins: &[Option<T>]) -> Result<Vec<T>> {
        let xt = super::torch::req(ins, 0)?;
        let r = xt.dim();
        if let Op::ArgMax { axis, keepdims } = op {
            return one(xt.f_argmax(norm_axis(*axis, r)? as i64, *keepdims)?);
        }
        let (axes, keepdims) = parts(op).ok_or_else(|| not_mine(self, op))?;
        let axes: Vec<i64> = axes_of(axes, r)?.into_iter().map(|a| a as i64).collect();
        one(match op {
            Op::ReduceMean { .. } => xt.f_mean_dim(axes.as_slice(), keepdims, None::<Kind>)?,
            Op::Reduce { kind: Reduction::Sum, .. } => xt.f_sum_dim_intlist(axes.as_slice(), keepdims, None::<Kind>)?,
            Op::Reduce { kind: Reduction::Max, .. } => xt.f_amax(axes.as_slice(), keepdims)?,
            Op::Reduce { kind: Reduction::Min, .. } => xt.f_amin(axes.as_slice(), keepdims)?,
            Op::Reduce { kind: Reduction::L2, .. } => {
                xt.f_pow_tensor_scalar(2)?.f_sum_dim_intlist(axes.as_slice(), keepdims, None::<Kind>)?.f_sqrt()?
            }
            _ => return Err(not_mine(self, op)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::conformance::{data, roundtrip, runtimes_agree, shapes_agree};
    use crate::ir::{Op, Reduction};

    #[test]
    fn reduce_mean_round_trips_and_infers_what_runs() {
        for op in [Op::ReduceMean { axes: Some(vec![2, -1]), keepdims: true }, Op::ReduceMean { axes: None, keepdims: false }] {
            for opset in [9, 13, 17] {
                roundtrip(&op, &["x"], &[], opset);
            }
            shapes_agree(&op, &[data(&[2, 3, 4, 5])]);
        }
    }

    #[test]
    fn reductions_and_argmax_agree_with_ort_and_tract_on_both_sides_of_the_axes_move() {
        for kind in Reduction::ALL {
            for (axes, keepdims) in [(Some(vec![1, -1]), true), (Some(vec![2]), false), (None, false)] {
                let op = Op::Reduce { kind, axes, keepdims };
                roundtrip(&op, &["x"], &[], 11);
                shapes_agree(&op, &[data(&[2, 3, 4, 5])]);
                // Attribute form (11), input form (ReduceSum from 13, the others from 18).
                for opset in [11, 13, 18] {
                    runtimes_agree(&format!("{op:?} at opset {opset}"), &op, &[], &[2, 3, 4, 5], opset, false);
                }
            }
        }
        let op = Op::ReduceMean { axes: Some(vec![2, 3]), keepdims: true };
        runtimes_agree("ReduceMean at opset 18", &op, &[], &[2, 3, 4, 5], 18, false);
        for op in [Op::ArgMax { axis: 1, keepdims: true }, Op::ArgMax { axis: -1, keepdims: false }] {
            for opset in [11, 13, 17] {
                roundtrip(&op, &["x"], &[], opset);
            }
            shapes_agree(&op, &[data(&[2, 3, 4])]);
        }
    }
}
