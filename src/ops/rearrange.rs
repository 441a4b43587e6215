//! DepthToSpace (DCR, and CRD from opset 11) and SpaceToDepth: channels ⇄ spatial blocks.

use anyhow::{anyhow, bail, ensure, Result};
#[cfg(feature = "torch")]
use tch::Tensor as T;

use super::attrs::{a_int, a_str, EmitCx, ParseCx};
use super::shapes::req;
#[cfg(feature = "torch")]
use super::torch::one;
use super::{not_mine, Family};
use crate::ir::{Fact, Op};

pub struct Rearrange;

impl Family for Rearrange {
    fn name(&self) -> &'static str {
        "rearrange"
    }
    fn op_types(&self) -> &'static [&'static str] {
        &["DepthToSpace", "SpaceToDepth"]
    }
    fn parse(&self, op_type: &str, a: &mut ParseCx) -> Result<Op> {
        let b = a.int("blocksize")?.ok_or_else(|| anyhow!("attribute 'blocksize' is required"))?;
        ensure!(b > 0, "attribute 'blocksize' must be positive, got {b}");
        let blocksize = b as usize;
        if op_type == "SpaceToDepth" {
            return Ok(Op::SpaceToDepth { blocksize });
        }
        let crd = match a.string("mode")?.as_deref() {
            None | Some("DCR") => false,
            Some("CRD") => true,
            Some(m) => bail!("attribute 'mode' has unknown value '{m}' (DCR, CRD)"),
        };
        Ok(Op::DepthToSpace { blocksize, crd })
    }
    fn emit(&self, op: &Op, cx: &mut EmitCx) -> Result<()> {
        match op {
            Op::DepthToSpace { blocksize, crd } => {
                cx.push(a_int("blocksize", *blocksize as i64));
                if *crd {
                    cx.need(11)?;
                    cx.push(a_str("mode", "CRD"));
                }
            }
            Op::SpaceToDepth { blocksize } => cx.push(a_int("blocksize", *blocksize as i64)),
            _ => return Err(not_mine(self, op)),
        }
        Ok(())
    }
    fn infer(&self, op: &Op, ins: &[Option<&Fact>]) -> Result<Vec<Fact>> {
        let f = req(ins, 0)?;
        ensure!(f.shape.len() == 4, "input must be [N, C, H, W], got {:?}", f.shape);
        let [n, c, h, w] = [f.shape[0], f.shape[1], f.shape[2], f.shape[3]];
        let shape = match op {
            Op::DepthToSpace { blocksize: b, .. } => {
                ensure!(c % (b * b) == 0, "{c} channels are not divisible by blocksize² = {}", b * b);
                vec![n, c / (b * b), h * b, w * b]
            }
            Op::SpaceToDepth { blocksize: b } => {
                ensure!(h % b == 0 && w % b == 0, "{h}×{w} is not divisible by blocksize {b}");
                vec![n, c * b * b, h / b, w / b]
            }
            _ => return Err(not_mine(self, op)),
        };
        Ok(vec![Fact::new(f.dtype, shape)])
    }
    #[cfg(feature = "torch")]
    fn eval(&self, op: &Op, ins: &[Option<T>]) -> Result<Vec<T>> {
        let x = super::torch::req(ins, 0)?;
        let s = x.size();
        ensure!(s.len() == 4, "input must be [N, C, H, W], got {s:?}");
        let [n, c, h, w] = [s[0], s[1], s[2], s[3]];
        one(match *op {
            Op::DepthToSpace { blocksize, crd } => {
                let b = blocksize as i64;
                ensure!(c % (b * b) == 0, "{c} channels are not divisible by blocksize² = {}", b * b);
                let t = if crd {
                    x.f_reshape([n, c / (b * b), b, b, h, w])?.f_permute([0, 1, 4, 2, 5, 3])?
                } else {
                    x.f_reshape([n, b, b, c / (b * b), h, w])?.f_permute([0, 3, 4, 1, 5, 2])?
                };
                t.f_reshape([n, c / (b * b), h * b, w * b])?
            }
            Op::SpaceToDepth { blocksize } => {
                let b = blocksize as i64;
                ensure!(h % b == 0 && w % b == 0, "{h}×{w} is not divisible by blocksize {b}");
                x.f_reshape([n, c, h / b, b, w / b, b])?.f_permute([0, 3, 5, 1, 2, 4])?.f_reshape([n, c * b * b, h / b, w / b])?
            }
            _ => return Err(not_mine(self, op)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::conformance::{data, roundtrip, runtimes_agree, shapes_agree};
    use crate::ir::Op;

    #[test]
    fn depth_and_space_rearrangements_agree_with_ort_and_tract() {
        for op in
            [Op::DepthToSpace { blocksize: 2, crd: false }, Op::DepthToSpace { blocksize: 2, crd: true }, Op::SpaceToDepth { blocksize: 2 }]
        {
            for opset in [11, 13, 17] {
                roundtrip(&op, &["x"], &[], opset);
            }
            let x = if matches!(op, Op::SpaceToDepth { .. }) { [2, 3, 4, 6] } else { [2, 8, 3, 2] };
            shapes_agree(&op, &[data(&x)]);
            runtimes_agree(&format!("{op:?}"), &op, &[], &x, 13, false);
        }
    }
}
