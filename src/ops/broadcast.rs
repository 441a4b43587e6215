//! Expand (bidirectional broadcast to a shape, opset ≥ 8) and Tile (repeats per axis).

use anyhow::{anyhow, ensure, Result};
#[cfg(feature = "torch")]
use tch::Tensor as T;

use super::attrs::{EmitCx, ParseCx};
use super::shapes::{broadcast, const_ints, req};
#[cfg(feature = "torch")]
use super::torch::{dims, i64s, ints, one};
use super::{not_mine, Family};
use crate::ir::{Fact, Op};

pub struct Broadcast;

fn target(spec: &[i64]) -> Result<Vec<usize>> {
    spec.iter().map(|&d| usize::try_from(d).map_err(|_| anyhow!("negative dimension {d} in {spec:?}"))).collect()
}

impl Family for Broadcast {
    fn name(&self) -> &'static str {
        "broadcast"
    }
    fn op_types(&self) -> &'static [&'static str] {
        &["Expand", "Tile"]
    }
    fn parse(&self, op_type: &str, _a: &mut ParseCx) -> Result<Op> {
        Ok(if op_type == "Expand" { Op::Expand } else { Op::Tile })
    }
    fn emit(&self, op: &Op, cx: &mut EmitCx) -> Result<()> {
        match op {
            Op::Expand => cx.need(8),
            Op::Tile => cx.need(6),
            _ => Err(not_mine(self, op)),
        }
    }
    fn infer(&self, op: &Op, ins: &[Option<&Fact>]) -> Result<Vec<Fact>> {
        let f = req(ins, 0)?;
        let spec =
            const_ints(ins, 1, if matches!(op, Op::Expand) { "shape" } else { "repeats" })?.ok_or_else(|| anyhow!("missing input #1"))?;
        let shape = match op {
            Op::Expand => broadcast(&f.shape, &target(&spec)?)?,
            Op::Tile => {
                ensure!(spec.len() == f.shape.len(), "repeats {spec:?} must have one entry per axis of {:?}", f.shape);
                let tiled: Option<Vec<usize>> = f.shape.iter().zip(target(&spec)?).map(|(d, r)| d.checked_mul(r)).collect();
                tiled.ok_or_else(|| anyhow!("tiling {:?} by {spec:?} overflows", f.shape))?
            }
            _ => return Err(not_mine(self, op)),
        };
        Ok(vec![Fact::new(f.dtype, shape)])
    }
    #[cfg(feature = "torch")]
    fn eval(&self, op: &Op, ins: &[Option<T>]) -> Result<Vec<T>> {
        let x = super::torch::req(ins, 0)?;
        let spec = ints(super::torch::req(ins, 1)?)?;
        match op {
            Op::Expand => one(x.f_broadcast_to(i64s(&broadcast(&dims(x), &target(&spec)?)?))?.f_contiguous()?),
            Op::Tile => {
                ensure!(spec.len() == x.dim(), "repeats {spec:?} must have one entry per axis");
                one(x.f_repeat(spec.as_slice())?)
            }
            _ => Err(not_mine(self, op)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::conformance::{data, ints, roundtrip, runtimes_agree, shapes_agree};
    use crate::ir::{Op, Tensor};

    #[test]
    fn expand_and_tile_agree_with_ort_and_tract() {
        for opset in [8, 13, 17] {
            roundtrip(&Op::Expand, &["x", "s"], &[], opset);
            roundtrip(&Op::Tile, &["x", "r"], &[], opset);
        }
        shapes_agree(&Op::Expand, &[data(&[3, 1]), ints(&[2, 3, 4])]);
        shapes_agree(&Op::Tile, &[data(&[2, 3]), ints(&[2, 1])]);
        runtimes_agree("Expand", &Op::Expand, &[("s", Tensor::i64(vec![3], vec![2, 1, 4]))], &[3, 1], 13, false);
        runtimes_agree("Tile", &Op::Tile, &[("r", Tensor::i64(vec![3], vec![1, 2, 3]))], &[2, 3, 1], 13, false);
    }
}
