//! Shape and data movement: Flatten, Reshape, Squeeze/Unsqueeze (axes an attribute before opset
//! 13, an input after), Concat, Transpose, Shape (start/end from opset 15), Gather, Slice (inputs
//! from opset 10), Cast, and the identities (Identity; Dropout at inference, no mask output).

use anyhow::{anyhow, ensure, Result};
#[cfg(feature = "torch")]
use tch::{Kind, Tensor as T};

use super::attrs::{a_int, a_ints, EmitCx, ParseCx};
use super::shapes::{const_ints, norm_axis, req, reshape_target, slice_indices};
#[cfg(feature = "torch")]
use super::torch::{dims, i64s, ints, kind_of, one, opt, same_device};
use super::{not_mine, Family};
use crate::ir::{DType, Fact, Op, Tensor};

pub struct Shape;

/// Shape's `start`/`end` clamped to the rank (ONNX rule).
fn shape_range(start: i64, end: Option<i64>, rank: usize) -> (usize, usize) {
    let r = rank as i64;
    let clamp = |v: i64| if v < 0 { (v + r).max(0) } else { v.min(r) } as usize;
    let (s, e) = (clamp(start), clamp(end.unwrap_or(r)));
    (s, e.max(s))
}

/// Split's part sizes along an axis of `dim`: the given sizes (which must add up), or
/// `outputs` equal parts (the last one smaller when `dim` does not divide, as opset 18 allows).
fn split_sizes(dim: usize, given: Option<Vec<i64>>, outputs: usize) -> Result<Vec<usize>> {
    if let Some(g) = given {
        ensure!(g.iter().all(|&v| v >= 0), "negative split size in {g:?}");
        let sizes: Vec<usize> = g.iter().map(|&v| v as usize).collect();
        ensure!(sizes.iter().sum::<usize>() == dim, "split sizes {sizes:?} do not add up to the axis size {dim}");
        ensure!(sizes.len() == outputs, "{} split sizes for {outputs} outputs", sizes.len());
        return Ok(sizes);
    }
    ensure!(outputs > 0, "Split has no outputs");
    let part = dim.div_ceil(outputs);
    ensure!(part * (outputs - 1) < dim || dim == 0, "an axis of {dim} cannot be split into {outputs} parts");
    Ok((0..outputs).map(|i| part.min(dim - (part * i).min(dim))).collect())
}

impl Family for Shape {
    fn name(&self) -> &'static str {
        "shape"
    }
    fn op_types(&self) -> &'static [&'static str] {
        &[
            "Flatten",
            "Reshape",
            "Squeeze",
            "Unsqueeze",
            "Concat",
            "Transpose",
            "Shape",
            "Gather",
            "Identity",
            "Dropout",
            "Cast",
            "Slice",
            "Split",
        ]
    }
    fn parse(&self, op_type: &str, a: &mut ParseCx) -> Result<Op> {
        Ok(match op_type {
            "Flatten" => Op::Flatten { axis: a.int("axis")?.unwrap_or(1) },
            "Reshape" => Op::Reshape { allowzero: a.int("allowzero")?.unwrap_or(0) != 0 },
            "Squeeze" | "Unsqueeze" => {
                if a.opset < 13 {
                    if let Some(axes) = a.ints("axes")? {
                        a.const_input("axes", Tensor::i64(vec![axes.len()], axes), 1);
                    }
                }
                if op_type == "Squeeze" {
                    Op::Squeeze
                } else {
                    Op::Unsqueeze
                }
            }
            "Concat" => Op::Concat { axis: a.int("axis")?.ok_or_else(|| anyhow!("attribute 'axis' is required"))? },
            "Transpose" => Op::Transpose { perm: a.ints("perm")? },
            "Shape" => Op::Shape { start: a.int("start")?.unwrap_or(0), end: a.int("end")? },
            "Gather" => Op::Gather { axis: a.int("axis")?.unwrap_or(0) },
            "Identity" => Op::Identity,
            "Dropout" => {
                a.float("ratio")?;
                a.int("seed")?;
                a.int("is_test")?;
                // A mask output is dropped by the reader when nothing reads it (refused otherwise).
                Op::Dropout
            }
            "Cast" => {
                let to = a.int("to")?.ok_or_else(|| anyhow!("attribute 'to' is required"))?;
                a.int("saturate")?;
                Op::Cast { to: DType::from_onnx(to as i32).ok_or_else(|| anyhow!("Cast to unsupported element type {to}"))? }
            }
            "Split" => {
                let axis = a.int("axis")?.unwrap_or(0);
                if a.opset < 13 {
                    if let Some(split) = a.ints("split")? {
                        a.const_input("split", Tensor::i64(vec![split.len()], split), 1);
                    }
                } else if a.opset >= 18 {
                    a.int("num_outputs")?;
                }
                Op::Split { axis, outputs: a.node.output.len() }
            }
            _ => {
                ensure!(a.opset >= 10, "Slice before opset 10 is not supported");
                Op::Slice
            }
        })
    }
    fn emit(&self, op: &Op, cx: &mut EmitCx) -> Result<()> {
        match op {
            Op::Identity | Op::Dropout => {}
            Op::Flatten { axis } => cx.push(a_int("axis", *axis)),
            Op::Reshape { allowzero } => {
                if *allowzero {
                    cx.need(14)?;
                    cx.push(a_int("allowzero", 1));
                }
            }
            Op::Squeeze | Op::Unsqueeze => {
                if cx.opset < 13 {
                    if cx.inputs.len() > 1 && !cx.inputs[1].is_empty() {
                        let axes = cx.const_ints(1)?;
                        cx.push(a_ints("axes", &axes));
                    }
                    cx.ins.truncate(1);
                }
            }
            Op::Concat { axis } => cx.push(a_int("axis", *axis)),
            Op::Transpose { perm } => {
                if let Some(p) = perm {
                    cx.push(a_ints("perm", p));
                }
            }
            Op::Shape { start, end } => {
                if *start != 0 || end.is_some() {
                    cx.need(15)?;
                    cx.push(a_int("start", *start));
                    if let Some(e) = end {
                        cx.push(a_int("end", *e));
                    }
                }
            }
            Op::Gather { axis } => cx.push(a_int("axis", *axis)),
            Op::Cast { to } => cx.push(a_int("to", to.onnx_code() as i64)),
            Op::Slice => cx.need(10)?,
            Op::Split { axis, outputs } => {
                cx.push(a_int("axis", *axis));
                let sized = cx.inputs.len() > 1 && !cx.inputs[1].is_empty();
                if cx.opset < 13 {
                    if sized {
                        let split = cx.const_ints(1)?;
                        cx.push(a_ints("split", &split));
                    }
                    cx.ins.truncate(1);
                } else if cx.opset >= 18 && !sized {
                    cx.push(a_int("num_outputs", *outputs as i64));
                }
            }
            _ => return Err(not_mine(self, op)),
        }
        Ok(())
    }
    fn infer(&self, op: &Op, ins: &[Option<&Fact>]) -> Result<Vec<Fact>> {
        let x = || req(ins, 0);
        if let Op::Split { axis, outputs } = op {
            let f = x()?;
            let a = norm_axis(*axis, f.shape.len())?;
            let sizes = split_sizes(f.shape[a], const_ints(ins, 1, "split")?, *outputs)?;
            return Ok(sizes
                .into_iter()
                .map(|s| {
                    let mut shape = f.shape.clone();
                    shape[a] = s;
                    Fact::new(f.dtype, shape)
                })
                .collect());
        }
        let out = match op {
            Op::Identity | Op::Dropout => {
                let f = x()?;
                Fact::new(f.dtype, f.shape.clone())
            }
            Op::Flatten { axis } => {
                let f = x()?;
                let a = if *axis == f.shape.len() as i64 { f.shape.len() } else { norm_axis(*axis, f.shape.len())? };
                Fact::new(f.dtype, vec![f.shape[..a].iter().product(), f.shape[a..].iter().product()])
            }
            Op::Reshape { allowzero } => {
                let f = x()?;
                let spec = const_ints(ins, 1, "shape")?.ok_or_else(|| anyhow!("missing shape input"))?;
                Fact::new(f.dtype, reshape_target(&f.shape, &spec, *allowzero)?)
            }
            Op::Squeeze => {
                let f = x()?;
                let axes = match const_ints(ins, 1, "axes")? {
                    Some(a) => a.iter().map(|&a| norm_axis(a, f.shape.len())).collect::<Result<Vec<_>>>()?,
                    None => (0..f.shape.len()).filter(|&i| f.shape[i] == 1).collect(),
                };
                for &a in &axes {
                    ensure!(f.shape[a] == 1, "cannot squeeze axis {} of size {} (shape {:?})", a, f.shape[a], f.shape);
                }
                Fact::new(f.dtype, (0..f.shape.len()).filter(|i| !axes.contains(i)).map(|i| f.shape[i]).collect())
            }
            Op::Unsqueeze => {
                let f = x()?;
                let spec = const_ints(ins, 1, "axes")?.ok_or_else(|| anyhow!("missing axes input"))?;
                let r = f.shape.len() + spec.len();
                let mut axes = spec.iter().map(|&a| norm_axis(a, r)).collect::<Result<Vec<_>>>()?;
                axes.sort_unstable();
                ensure!(axes.windows(2).all(|w| w[0] != w[1]), "axes {spec:?} name an axis twice");
                let mut shape = f.shape.clone();
                for a in axes {
                    shape.insert(a, 1);
                }
                Fact::new(f.dtype, shape)
            }
            Op::Concat { axis } => {
                let parts: Vec<&Fact> = ins.iter().map(|f| f.ok_or_else(|| anyhow!("empty input name"))).collect::<Result<_>>()?;
                ensure!(!parts.is_empty(), "Concat needs at least one input");
                let r = parts[0].shape.len();
                let a = norm_axis(*axis, r)?;
                let mut shape = parts[0].shape.clone();
                for p in &parts[1..] {
                    ensure!(p.shape.len() == r, "inputs have ranks {} and {}", r, p.shape.len());
                    let same_outside_axis = p.shape.iter().zip(&shape).enumerate().all(|(i, (x, y))| i == a || x == y);
                    ensure!(same_outside_axis, "inputs {:?} and {:?} differ outside axis {}", parts[0].shape, p.shape, a);
                    shape[a] += p.shape[a];
                }
                Fact::new(parts[0].dtype, shape)
            }
            Op::Transpose { perm } => {
                let f = x()?;
                let r = f.shape.len();
                let p: Vec<usize> = match perm {
                    Some(p) => p.iter().map(|&a| norm_axis(a, r)).collect::<Result<_>>()?,
                    None => (0..r).rev().collect(),
                };
                let mut sorted = p.clone();
                sorted.sort_unstable();
                ensure!(sorted == (0..r).collect::<Vec<_>>(), "perm {:?} is not a permutation of 0..{}", p, r);
                Fact::new(f.dtype, p.iter().map(|&i| f.shape[i]).collect())
            }
            Op::Shape { start, end } => {
                let f = x()?;
                let (s, e) = shape_range(*start, *end, f.shape.len());
                let v: Vec<i64> = f.shape[s..e].iter().map(|&d| d as i64).collect();
                Fact::konst(Tensor::i64(vec![v.len()], v))
            }
            Op::Gather { axis } => {
                let (d, idx) = (x()?, req(ins, 1)?);
                ensure!(matches!(idx.dtype, DType::I64 | DType::I32), "indices must be int32/int64, got {:?}", idx.dtype);
                let a = norm_axis(*axis, d.shape.len())?;
                let mut shape = d.shape[..a].to_vec();
                shape.extend(&idx.shape);
                shape.extend(&d.shape[a + 1..]);
                Fact::new(d.dtype, shape)
            }
            Op::Cast { to } => Fact::new(*to, x()?.shape.clone()),
            Op::Slice => {
                let f = x()?;
                let starts = const_ints(ins, 1, "starts")?.ok_or_else(|| anyhow!("missing starts"))?;
                let ends = const_ints(ins, 2, "ends")?.ok_or_else(|| anyhow!("missing ends"))?;
                let r = f.shape.len();
                let axes = const_ints(ins, 3, "axes")?.unwrap_or_else(|| (0..starts.len() as i64).collect());
                let steps = const_ints(ins, 4, "steps")?.unwrap_or_else(|| vec![1; starts.len()]);
                ensure!(
                    starts.len() == ends.len() && axes.len() == starts.len() && steps.len() == starts.len(),
                    "starts/ends/axes/steps lengths differ"
                );
                let mut shape = f.shape.clone();
                for k in 0..starts.len() {
                    let a = norm_axis(axes[k], r)?;
                    shape[a] = slice_indices(f.shape[a], starts[k], ends[k], steps[k])?.len();
                }
                Fact::new(f.dtype, shape)
            }
            _ => return Err(not_mine(self, op)),
        };
        Ok(vec![out])
    }
    #[cfg(feature = "torch")]
    fn eval(&self, op: &Op, ins: &[Option<T>]) -> Result<Vec<T>> {
        if let Op::Concat { axis } = op {
            let parts: Vec<&T> = ins.iter().map(|t| t.as_ref().ok_or_else(|| anyhow!("empty input"))).collect::<Result<_>>()?;
            ensure!(!parts.is_empty(), "Concat needs an input");
            let a = norm_axis(*axis, parts[0].dim())? as i64;
            let parts: Vec<T> = parts.iter().map(|p| same_device(parts[0], p)).collect::<Result<_>>()?;
            return one(T::f_cat(&parts, a)?);
        }
        let xt = super::torch::req(ins, 0)?;
        match op {
            Op::Split { axis, outputs } => {
                let a = norm_axis(*axis, xt.dim())?;
                let given = opt(ins, 1).map(ints).transpose()?;
                let sizes = split_sizes(xt.size()[a] as usize, given, *outputs)?;
                Ok(xt.f_split_with_sizes(i64s(&sizes), a as i64)?)
            }
            Op::Identity | Op::Dropout => one(xt.shallow_clone()),
            Op::Flatten { axis } => {
                let d = dims(xt);
                let a = if *axis == d.len() as i64 { d.len() } else { norm_axis(*axis, d.len())? };
                one(xt.f_reshape([d[..a].iter().product::<usize>() as i64, d[a..].iter().product::<usize>() as i64])?)
            }
            Op::Reshape { allowzero } => {
                let shape = reshape_target(&dims(xt), &ints(super::torch::req(ins, 1)?)?, *allowzero)?;
                one(xt.f_reshape(i64s(&shape))?)
            }
            Op::Squeeze => {
                let d = dims(xt);
                let axes: Vec<usize> = match opt(ins, 1) {
                    Some(a) => ints(a)?.iter().map(|&a| norm_axis(a, d.len())).collect::<Result<_>>()?,
                    None => (0..d.len()).filter(|&i| d[i] == 1).collect(),
                };
                let shape: Vec<i64> = (0..d.len()).filter(|i| !axes.contains(i)).map(|i| d[i] as i64).collect();
                one(xt.f_reshape(shape)?)
            }
            Op::Unsqueeze => {
                let mut d = i64s(&dims(xt));
                let spec = ints(super::torch::req(ins, 1)?)?;
                let r = d.len() + spec.len();
                let mut axes = spec.iter().map(|&a| norm_axis(a, r)).collect::<Result<Vec<_>>>()?;
                axes.sort_unstable();
                for a in axes {
                    d.insert(a, 1);
                }
                one(xt.f_reshape(d)?)
            }
            Op::Transpose { perm } => {
                let r = xt.dim();
                let p: Vec<i64> = match perm {
                    Some(p) => p.iter().map(|&a| norm_axis(a, r).map(|v| v as i64)).collect::<Result<_>>()?,
                    None => (0..r as i64).rev().collect(),
                };
                one(xt.f_permute(p)?)
            }
            Op::Shape { start, end } => {
                let d = xt.size();
                let (s, e) = shape_range(*start, *end, d.len());
                one(T::f_from_slice(&d[s..e])?)
            }
            Op::Gather { axis } => {
                let idx = super::torch::req(ins, 1)?;
                let a = norm_axis(*axis, xt.dim())?;
                let n = xt.size()[a];
                let idx = idx.f_to_kind(Kind::Int64)?;
                let wrapped = idx.f_remainder(n)?; // maps -1 → n-1; valid indices unchanged
                let bad = idx.f_ge(n)?.f_logical_or(&idx.f_lt(-n)?)?.f_any()?;
                ensure!(!bool::try_from(&bad)?, "an index is out of range for axis {} of size {}", a, n);
                let sel = xt.f_index_select(a as i64, &same_device(xt, &wrapped.f_flatten(0, -1)?)?)?;
                let mut shape = xt.size()[..a].to_vec();
                shape.extend(idx.size());
                shape.extend(&xt.size()[a + 1..]);
                one(sel.f_reshape(shape)?)
            }
            Op::Cast { to } => one(xt.f_to_kind(kind_of(*to))?),
            Op::Slice => {
                let starts = ints(super::torch::req(ins, 1)?)?;
                let ends = ints(super::torch::req(ins, 2)?)?;
                let axes = match opt(ins, 3) {
                    Some(t) => ints(t)?,
                    None => (0..starts.len() as i64).collect(),
                };
                let steps = match opt(ins, 4) {
                    Some(t) => ints(t)?,
                    None => vec![1; starts.len()],
                };
                ensure!(
                    ends.len() == starts.len() && axes.len() == starts.len() && steps.len() == starts.len(),
                    "starts/ends/axes/steps lengths differ"
                );
                let mut y = xt.shallow_clone();
                for k in 0..starts.len() {
                    let a = norm_axis(axes[k], xt.dim())?;
                    let d = y.size()[a] as usize;
                    if steps[k] > 0 {
                        let idx = slice_indices(d, starts[k], ends[k], steps[k])?;
                        let (s, e) = (idx.first().copied().unwrap_or(0) as i64, idx.last().map_or(0, |&l| l as i64 + 1));
                        y = y.f_slice(a as i64, s, e, steps[k])?;
                    } else {
                        let idx: Vec<i64> = slice_indices(d, starts[k], ends[k], steps[k])?.iter().map(|&i| i as i64).collect();
                        y = y.f_index_select(a as i64, &same_device(&y, &T::f_from_slice(&idx)?)?)?;
                    }
                }
                one(y)
            }
            _ => Err(not_mine(self, op)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::conformance::{data, ints, roundtrip, shapes_agree};
    use crate::ir::{DType, Op, Tensor};

    #[test]
    fn shape_ops_round_trip_and_infer_what_runs() {
        let x = [2, 3, 1, 4];
        let axes = [("a", Tensor::i64(vec![1], vec![2]))];
        type Case = (Op, Vec<&'static str>, i64, Vec<Option<super::super::conformance::Input>>);
        let cases: Vec<Case> = vec![
            (Op::Flatten { axis: 2 }, vec!["x"], 9, vec![data(&x)]),
            (Op::Reshape { allowzero: false }, vec!["x", "s"], 9, vec![data(&x), ints(&[0, -1])]),
            (Op::Reshape { allowzero: true }, vec!["x", "s"], 14, vec![data(&x), ints(&[6, 4])]),
            (Op::Squeeze, vec!["x", "a"], 11, vec![data(&x), ints(&[2])]),
            (Op::Squeeze, vec!["x", "a"], 13, vec![data(&x), ints(&[2])]),
            (Op::Squeeze, vec!["x"], 13, vec![data(&x)]),
            (Op::Unsqueeze, vec!["x", "a"], 11, vec![data(&x), ints(&[0, -1])]),
            (Op::Unsqueeze, vec!["x", "a"], 17, vec![data(&x), ints(&[0, -1])]),
            (Op::Concat { axis: 1 }, vec!["x", "x2"], 9, vec![data(&x), data(&[2, 5, 1, 4])]),
            (Op::Transpose { perm: Some(vec![0, 3, 1, 2]) }, vec!["x"], 9, vec![data(&x)]),
            (Op::Transpose { perm: None }, vec!["x"], 9, vec![data(&x)]),
            (Op::Shape { start: 0, end: None }, vec!["x"], 9, vec![data(&x)]),
            (Op::Shape { start: 1, end: Some(-1) }, vec!["x"], 15, vec![data(&x)]),
            (Op::Gather { axis: 1 }, vec!["x", "i"], 9, vec![data(&x), ints(&[2, -1])]),
            (Op::Identity, vec!["x"], 9, vec![data(&x)]),
            (Op::Dropout, vec!["x"], 13, vec![data(&x)]),
            (Op::Cast { to: DType::I64 }, vec!["x"], 9, vec![data(&x)]),
            (
                Op::Slice,
                vec!["x", "st", "en", "ax", "sp"],
                10,
                vec![data(&x), ints(&[-1, 0]), ints(&[-100, 3]), ints(&[1, 3]), ints(&[-1, 2])],
            ),
        ];
        for (op, inputs, min_opset, ins) in cases {
            let consts: Vec<(&str, Tensor)> = if inputs.contains(&"a") {
                axes.to_vec()
            } else if inputs.contains(&"sz") {
                vec![("sz", Tensor::i64(vec![2], vec![2, 4]))]
            } else {
                vec![]
            };
            for opset in [min_opset, 13.max(min_opset), 17, 21] {
                if matches!(op, Op::Squeeze | Op::Unsqueeze) && inputs.len() > 1 && opset >= 13 && min_opset < 13 {
                    continue;
                }
                roundtrip(&op, &inputs, &consts, opset);
            }
            shapes_agree(&op, &ins);
        }
    }
}
