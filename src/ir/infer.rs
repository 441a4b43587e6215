//! Shape inference for a fixed input shape, with constant folding of shape subgraphs.
//!
//! Every value gets a [`Fact`]: element type, concrete shape, and — when it can be computed
//! without running the network — its value. Values are known for initializers, `Constant`,
//! `Shape` of a value with a known shape, and the small integer ops that exporters chain after
//! it (Gather, Concat, Unsqueeze, Slice, Cast, arithmetic, …). That is what makes the
//! `Shape→Gather→Unsqueeze→Concat→Reshape` pattern of torch.onnx.export resolvable, and what
//! lets block cuts ignore shape-only side branches.
//!
//! Errors always name the node and op: `node 'conv1' (Conv): …`.

use std::collections::HashMap;

use anyhow::{anyhow, bail, ensure, Context, Result};

use super::graph::{Dim, Graph, Node};
use super::op::{AutoPad, ConvAttrs, Op, PoolAttrs};
use super::tensor::{DType, Data, Tensor};

/// What is known about one value.
#[derive(Clone, Debug, PartialEq)]
pub struct Fact {
    pub dtype: DType,
    pub shape: Vec<usize>,
    /// Known value (constant or folded).
    pub value: Option<Tensor>,
}

impl Fact {
    pub fn new(dtype: DType, shape: Vec<usize>) -> Fact {
        Fact { dtype, shape, value: None }
    }
    pub fn konst(t: Tensor) -> Fact {
        Fact { dtype: t.dtype, shape: t.dims.clone(), value: Some(t) }
    }
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

pub type Facts = HashMap<String, Fact>;

/// Fixed shapes of the graph's data inputs: symbolic dims become `batch`. Errors name the input.
pub fn fixed_input_shapes(g: &Graph, batch: usize) -> Result<HashMap<String, Vec<usize>>> {
    let mut out = HashMap::new();
    for i in g.data_inputs() {
        let shape = i.shape.as_ref().ok_or_else(|| anyhow!("graph input '{}' declares no shape; pass one explicitly", i.name))?;
        let dims = shape
            .iter()
            .enumerate()
            .map(|(k, d)| match d {
                Dim::Fixed(v) => Ok(*v),
                Dim::Sym(_) if k == 0 => Ok(batch),
                Dim::Sym(s) => Err(anyhow!("graph input '{}' has symbolic dimension '{}' at axis {}; pass a fixed shape", i.name, s, k)),
            })
            .collect::<Result<Vec<_>>>()?;
        out.insert(i.name.clone(), dims);
    }
    Ok(out)
}

/// Evaluates one node on known constant inputs (the tch executor provides this), so that shape
/// subgraphs fold with exactly the executor's semantics.
pub type Folder<'a> = &'a dyn Fn(&Node, &[Option<&Tensor>]) -> Result<Vec<Tensor>>;

/// Largest output (elements) that is folded: shape computations, never activations.
const FOLD_LIMIT: usize = 4096;

/// Infers a fact for every value of `g` given the shapes of its data inputs, folding small
/// constant subgraphs through `fold`.
pub fn infer_with(g: &Graph, input_shapes: &HashMap<String, Vec<usize>>, fold: Folder) -> Result<Facts> {
    let mut facts: Facts = HashMap::new();
    for (name, t) in &g.initializers {
        facts.insert(name.clone(), Fact::konst(t.clone()));
    }
    for i in g.data_inputs() {
        let shape = input_shapes.get(&i.name).ok_or_else(|| anyhow!("no shape given for graph input '{}'", i.name))?;
        if let Some(decl) = &i.shape {
            ensure!(
                decl.len() == shape.len(),
                "graph input '{}': expected rank {} ({}), got shape {:?}",
                i.name,
                decl.len(),
                fmt_dims(decl),
                shape
            );
            for (k, (d, &s)) in decl.iter().zip(shape).enumerate() {
                if let Dim::Fixed(v) = d {
                    ensure!(*v == s, "graph input '{}': axis {} must be {}, got {} (shape {:?})", i.name, k, v, s, shape);
                }
            }
        }
        facts.insert(i.name.clone(), Fact::new(i.dtype, shape.clone()));
    }
    for node in &g.nodes {
        let ins: Vec<Option<&Fact>> = node
            .inputs
            .iter()
            .map(|i| if i.is_empty() { Ok(None) } else { facts.get(i).map(Some).ok_or_else(|| anyhow!("input '{i}' is undefined")) })
            .collect::<Result<_>>()
            .with_context(|| format!("node '{}' ({})", node.name, node.op.name()))?;
        let ctx = || format!("node '{}' ({})", node.name, node.op.name());
        let mut outs = infer_node(node, &ins).with_context(ctx)?;
        let foldable = !ins.is_empty() && ins.iter().all(|f| f.is_none_or(|f| f.value.is_some()));
        if foldable && outs.iter().all(|f| f.value.is_none() && f.numel() <= FOLD_LIMIT) {
            let vals: Vec<Option<&Tensor>> = ins.iter().map(|f| f.and_then(|f| f.value.as_ref())).collect();
            let folded = fold(node, &vals).with_context(ctx)?;
            for (f, v) in outs.iter_mut().zip(folded) {
                ensure!(f.shape == v.dims, "{}: inferred shape {:?} but evaluation gave {:?}", ctx(), f.shape, v.dims);
                f.value = Some(v);
            }
        }
        for (name, f) in node.outputs.iter().zip(outs) {
            if !name.is_empty() {
                facts.insert(name.clone(), f);
            }
        }
    }
    Ok(facts)
}

fn fmt_dims(d: &[Dim]) -> String {
    let parts: Vec<String> = d
        .iter()
        .map(|d| match d {
            Dim::Fixed(v) => v.to_string(),
            Dim::Sym(s) => s.clone(),
        })
        .collect();
    format!("[{}]", parts.join(", "))
}

fn req<'a>(ins: &[Option<&'a Fact>], k: usize) -> Result<&'a Fact> {
    ins.get(k).copied().flatten().ok_or_else(|| anyhow!("missing required input #{k}"))
}

fn const_ints(ins: &[Option<&Fact>], k: usize, what: &str) -> Result<Option<Vec<i64>>> {
    match ins.get(k).copied().flatten() {
        None => Ok(None),
        Some(f) => match &f.value {
            Some(v) => Ok(Some(v.as_i64s().with_context(|| format!("input '{what}'"))?)),
            None => bail!("input '{what}' must be constant (or computable from shapes) for dnas"),
        },
    }
}

/// Normalises a possibly negative axis for rank `rank`.
pub fn norm_axis(axis: i64, rank: usize) -> Result<usize> {
    let r = rank as i64;
    ensure!(axis >= -r && axis < r.max(1), "axis {axis} is out of range for rank {rank}");
    Ok(if axis < 0 { (axis + r) as usize } else { axis as usize })
}

/// Resolves explicit or automatic padding to `[begin…, end…]` for the given spatial input size.
pub fn resolve_pads(
    auto_pad: AutoPad,
    pads: &[usize],
    input: &[usize],
    kernel: &[usize],
    strides: &[usize],
    dilations: &[usize],
) -> Vec<usize> {
    let n = input.len();
    match auto_pad {
        AutoPad::NotSet => {
            if pads.is_empty() {
                vec![0; 2 * n]
            } else {
                pads.to_vec()
            }
        }
        AutoPad::Valid => vec![0; 2 * n],
        AutoPad::SameUpper | AutoPad::SameLower => {
            let mut out = vec![0; 2 * n];
            for i in 0..n {
                let (s, d) = (strides[i], dilations[i]);
                let out_len = input[i].div_ceil(s);
                let total = ((out_len - 1) * s + (kernel[i] - 1) * d + 1).saturating_sub(input[i]);
                let small = total / 2;
                let (b, e) = if auto_pad == AutoPad::SameUpper { (small, total - small) } else { (total - small, small) };
                out[i] = b;
                out[n + i] = e;
            }
            out
        }
    }
}

/// Spatial attributes with defaults filled in, for conv-like ops.
pub struct Window {
    pub kernel: Vec<usize>,
    pub strides: Vec<usize>,
    pub dilations: Vec<usize>,
    pub pads: Vec<usize>,
}

impl Window {
    fn build(
        auto_pad: AutoPad,
        kernel: Vec<usize>,
        strides: &[usize],
        pads: &[usize],
        dilations: &[usize],
        input: &[usize],
    ) -> Result<Window> {
        let n = kernel.len();
        ensure!(input.len() == n, "input has {} spatial dims but the kernel has {}", input.len(), n);
        let strides = if strides.is_empty() { vec![1; n] } else { strides.to_vec() };
        let dilations = if dilations.is_empty() { vec![1; n] } else { dilations.to_vec() };
        ensure!(strides.len() == n, "strides {:?} do not match kernel rank {}", strides, n);
        ensure!(dilations.len() == n, "dilations {:?} do not match kernel rank {}", dilations, n);
        ensure!(pads.is_empty() || pads.len() == 2 * n, "pads {:?} must have {} entries", pads, 2 * n);
        ensure!(strides.iter().chain(&dilations).all(|&v| v > 0), "strides and dilations must be positive");
        let pads = resolve_pads(auto_pad, pads, input, &kernel, &strides, &dilations);
        Ok(Window { kernel, strides, dilations, pads })
    }

    pub fn conv(a: &ConvAttrs, input: &[usize], weight: &[usize]) -> Result<Window> {
        let kernel = a.kernel_shape.clone().unwrap_or_else(|| weight[2..].to_vec());
        ensure!(kernel.as_slice() == &weight[2..], "kernel_shape {:?} does not match weight shape {:?}", kernel, weight);
        Window::build(a.auto_pad, kernel, &a.strides, &a.pads, &a.dilations, input)
    }

    pub fn pool(a: &PoolAttrs, input: &[usize]) -> Result<Window> {
        Window::build(a.auto_pad, a.kernel_shape.clone(), &a.strides, &a.pads, &a.dilations, input)
    }

    /// Output spatial size.
    pub fn output(&self, input: &[usize], ceil_mode: bool) -> Result<Vec<usize>> {
        let n = input.len();
        (0..n)
            .map(|i| {
                let padded = input[i] + self.pads[i] + self.pads[n + i];
                let span = (self.kernel[i] - 1) * self.dilations[i] + 1;
                ensure!(
                    padded >= span,
                    "spatial axis {} of size {} (padded {}) is smaller than the kernel span {}",
                    i,
                    input[i],
                    padded,
                    span
                );
                let s = self.strides[i];
                let mut o = if ceil_mode { (padded - span).div_ceil(s) + 1 } else { (padded - span) / s + 1 };
                // PyTorch/ONNX rule: the last window must start inside the input or left padding.
                if ceil_mode && (o - 1) * s >= input[i] + self.pads[i] {
                    o -= 1;
                }
                Ok(o)
            })
            .collect()
    }
}

/// Numpy-style broadcast of two shapes.
pub fn broadcast(a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    let n = a.len().max(b.len());
    let mut out = vec![0; n];
    for i in 0..n {
        let da = if i + a.len() >= n { a[i + a.len() - n] } else { 1 };
        let db = if i + b.len() >= n { b[i + b.len() - n] } else { 1 };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => bail!("shapes {:?} and {:?} cannot be broadcast", a, b),
        };
    }
    Ok(out)
}

fn infer_node(node: &Node, ins: &[Option<&Fact>]) -> Result<Vec<Fact>> {
    let x = || req(ins, 0);
    let same = || -> Result<Vec<Fact>> {
        let f = x()?;
        Ok(vec![Fact::new(f.dtype, f.shape.clone())])
    };
    let out = match &node.op {
        Op::Conv(a) => {
            let (xf, w) = (x()?, req(ins, 1)?);
            ensure!(xf.shape.len() >= 3, "input X must be [N, C, spatial…], got shape {:?}", xf.shape);
            ensure!(w.shape.len() == xf.shape.len(), "weight shape {:?} has a different rank than input {:?}", w.shape, xf.shape);
            let g = a.group.max(1);
            ensure!(
                xf.shape[1] == w.shape[1] * g,
                "input has {} channels but weight {:?} with group {} expects {}",
                xf.shape[1],
                w.shape,
                g,
                w.shape[1] * g
            );
            ensure!(w.shape[0] % g == 0, "output channels {} not divisible by group {}", w.shape[0], g);
            if let Some(b) = ins.get(2).copied().flatten() {
                ensure!(b.shape == [w.shape[0]], "bias shape {:?} must be [{}]", b.shape, w.shape[0]);
            }
            let win = Window::conv(a, &xf.shape[2..], &w.shape)?;
            let mut shape = vec![xf.shape[0], w.shape[0]];
            shape.extend(win.output(&xf.shape[2..], false)?);
            vec![Fact::new(xf.dtype, shape)]
        }
        Op::BatchNormalization { .. } => {
            let xf = x()?;
            ensure!(xf.shape.len() >= 2, "input X must be [N, C, …], got shape {:?}", xf.shape);
            for k in 1..5 {
                let p = req(ins, k)?;
                ensure!(p.shape == [xf.shape[1]], "input #{} has shape {:?}, expected [{}]", k, p.shape, xf.shape[1]);
            }
            same()?
        }
        Op::Relu | Op::Sigmoid | Op::HardSigmoid { .. } | Op::HardSwish | Op::Clip | Op::Identity | Op::Dropout => {
            let f = x()?;
            vec![Fact::new(f.dtype, f.shape.clone())]
        }
        Op::Softmax { axis, .. } => {
            norm_axis(*axis, x()?.shape.len())?;
            same()?
        }
        Op::Add | Op::Sub | Op::Mul | Op::Div => {
            let (a, b) = (x()?, req(ins, 1)?);
            ensure!(a.dtype == b.dtype, "operands have different types {:?} and {:?}", a.dtype, b.dtype);
            vec![Fact::new(a.dtype, broadcast(&a.shape, &b.shape)?)]
        }
        Op::Gemm { trans_a, trans_b, .. } => {
            let (a, b) = (x()?, req(ins, 1)?);
            ensure!(a.shape.len() == 2 && b.shape.len() == 2, "Gemm needs 2-D A and B, got {:?} and {:?}", a.shape, b.shape);
            let (m, ka) = if *trans_a { (a.shape[1], a.shape[0]) } else { (a.shape[0], a.shape[1]) };
            let (kb, n) = if *trans_b { (b.shape[1], b.shape[0]) } else { (b.shape[0], b.shape[1]) };
            ensure!(ka == kb, "inner dimensions differ: A {:?} and B {:?} (transA={}, transB={})", a.shape, b.shape, trans_a, trans_b);
            if let Some(c) = ins.get(2).copied().flatten() {
                broadcast(&[m, n], &c.shape).context("bias C")?;
            }
            vec![Fact::new(a.dtype, vec![m, n])]
        }
        Op::MatMul => {
            let (a, b) = (x()?, req(ins, 1)?);
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
            vec![Fact::new(a.dtype, shape)]
        }
        Op::GlobalAveragePool => {
            let f = x()?;
            ensure!(f.shape.len() >= 3, "input must be [N, C, spatial…], got {:?}", f.shape);
            let mut s = f.shape[..2].to_vec();
            s.extend(std::iter::repeat_n(1, f.shape.len() - 2));
            vec![Fact::new(f.dtype, s)]
        }
        Op::AveragePool(a) | Op::MaxPool(a) => {
            let f = x()?;
            ensure!(f.shape.len() >= 3, "input must be [N, C, spatial…], got {:?}", f.shape);
            let win = Window::pool(a, &f.shape[2..])?;
            let mut s = f.shape[..2].to_vec();
            s.extend(win.output(&f.shape[2..], a.ceil_mode)?);
            vec![Fact::new(f.dtype, s)]
        }
        Op::ReduceMean { axes, keepdims } => {
            let f = x()?;
            let r = f.shape.len();
            let axes: Vec<usize> = match axes {
                None => (0..r).collect(),
                Some(a) => a.iter().map(|&a| norm_axis(a, r)).collect::<Result<_>>()?,
            };
            let shape = (0..r).filter_map(|i| if axes.contains(&i) { keepdims.then_some(1) } else { Some(f.shape[i]) }).collect();
            vec![Fact::new(f.dtype, shape)]
        }
        Op::Flatten { axis } => {
            let f = x()?;
            let a = if *axis == f.shape.len() as i64 { f.shape.len() } else { norm_axis(*axis, f.shape.len())? };
            vec![Fact::new(f.dtype, vec![f.shape[..a].iter().product(), f.shape[a..].iter().product()])]
        }
        Op::Reshape { allowzero } => {
            let f = x()?;
            let spec = const_ints(ins, 1, "shape")?.ok_or_else(|| anyhow!("missing shape input"))?;
            let shape = reshape_target(&f.shape, &spec, *allowzero)?;
            vec![Fact::new(f.dtype, shape)]
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
            let shape: Vec<usize> = (0..f.shape.len()).filter(|i| !axes.contains(i)).map(|i| f.shape[i]).collect();
            vec![Fact::new(f.dtype, shape)]
        }
        Op::Unsqueeze => {
            let f = x()?;
            let spec = const_ints(ins, 1, "axes")?.ok_or_else(|| anyhow!("missing axes input"))?;
            let r = f.shape.len() + spec.len();
            let mut axes = spec.iter().map(|&a| norm_axis(a, r)).collect::<Result<Vec<_>>>()?;
            axes.sort_unstable();
            let mut shape = f.shape.clone();
            for a in axes {
                shape.insert(a, 1);
            }
            vec![Fact::new(f.dtype, shape)]
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
            vec![Fact::new(parts[0].dtype, shape)]
        }
        Op::Pad { .. } => {
            let f = x()?;
            let pads = const_ints(ins, 1, "pads")?.ok_or_else(|| anyhow!("missing pads input"))?;
            let r = f.shape.len();
            ensure!(pads.len() == 2 * r, "pads has {} entries, expected {} for rank {}", pads.len(), 2 * r, r);
            let shape = (0..r)
                .map(|i| {
                    let v = f.shape[i] as i64 + pads[i] + pads[r + i];
                    ensure!(v >= 0, "negative output size on axis {i}");
                    Ok(v as usize)
                })
                .collect::<Result<_>>()?;
            vec![Fact::new(f.dtype, shape)]
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
            vec![Fact::new(f.dtype, p.iter().map(|&i| f.shape[i]).collect())]
        }
        Op::Constant { value } => vec![Fact::konst(value.clone())],
        Op::ConstantOfShape { value } => {
            let dims = const_ints(ins, 0, "input")?.ok_or_else(|| anyhow!("missing shape input"))?;
            ensure!(dims.iter().all(|&d| d >= 0), "negative dimension in {:?}", dims);
            let dims: Vec<usize> = dims.iter().map(|&d| d as usize).collect();
            let fill = value.clone().unwrap_or_else(|| Tensor::f32(vec![1], vec![0.0]));
            let n: usize = dims.iter().product();
            let data = match &fill.data {
                Data::F32(v) => Data::F32(vec![v[0]; n]),
                Data::F64(v) => Data::F64(vec![v[0]; n]),
                Data::I64(v) => Data::I64(vec![v[0]; n]),
            };
            vec![Fact::konst(Tensor { dtype: fill.dtype, dims, data })]
        }
        Op::Shape { start, end } => {
            let f = x()?;
            let r = f.shape.len() as i64;
            let clamp = |v: i64| if v < 0 { (v + r).max(0) } else { v.min(r) } as usize;
            let (s, e) = (clamp(*start), clamp(end.unwrap_or(r)));
            let v: Vec<i64> = f.shape[s..e.max(s)].iter().map(|&d| d as i64).collect();
            vec![Fact::konst(Tensor::i64(vec![v.len()], v))]
        }
        Op::Gather { axis } => {
            let (d, idx) = (x()?, req(ins, 1)?);
            ensure!(matches!(idx.dtype, DType::I64 | DType::I32), "indices must be int32/int64, got {:?}", idx.dtype);
            let a = norm_axis(*axis, d.shape.len())?;
            let mut shape = d.shape[..a].to_vec();
            shape.extend(&idx.shape);
            shape.extend(&d.shape[a + 1..]);
            vec![Fact::new(d.dtype, shape)]
        }
        Op::Cast { to } => {
            let f = x()?;
            vec![Fact::new(*to, f.shape.clone())]
        }
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
            vec![Fact::new(f.dtype, shape)]
        }
        Op::Unknown { op_type, domain } => {
            bail!("unsupported op '{}{}'", if domain.is_empty() { String::new() } else { format!("{domain}::") }, op_type)
        }
    };
    Ok(out)
}

/// Resolves an ONNX Reshape spec (0 = copy, -1 = infer) against an input shape.
pub fn reshape_target(input: &[usize], spec: &[i64], allowzero: bool) -> Result<Vec<usize>> {
    let total: usize = input.iter().product();
    let mut out = Vec::with_capacity(spec.len());
    let mut infer_at = None;
    for (i, &s) in spec.iter().enumerate() {
        match s {
            -1 => {
                ensure!(infer_at.is_none(), "shape {:?} has more than one -1", spec);
                infer_at = Some(i);
                out.push(1);
            }
            0 if !allowzero => {
                out.push(*input.get(i).ok_or_else(|| anyhow!("shape {:?} copies axis {} of a rank-{} input", spec, i, input.len()))?)
            }
            s if s >= 0 => out.push(s as usize),
            _ => bail!("invalid dimension {s} in shape {:?}", spec),
        }
    }
    let known: usize = out.iter().product();
    if let Some(i) = infer_at {
        ensure!(known > 0 && total.is_multiple_of(known), "cannot reshape {:?} ({} elements) to {:?}", input, total, spec);
        out[i] = total / known;
    }
    ensure!(out.iter().product::<usize>() == total, "cannot reshape {:?} ({} elements) to {:?}", input, total, spec);
    Ok(out)
}

/// The indices an ONNX Slice selects on an axis of size `dim` (any non-zero step).
pub fn slice_indices(dim: usize, start: i64, end: i64, step: i64) -> Result<Vec<usize>> {
    ensure!(step != 0, "Slice step must not be 0");
    let d = dim as i64;
    let (mut s, mut e) = (if start < 0 { start.saturating_add(d) } else { start }, if end < 0 { end.saturating_add(d) } else { end });
    let mut out = Vec::new();
    if step > 0 {
        s = s.clamp(0, d);
        e = e.clamp(0, d);
        let mut i = s;
        while i < e {
            out.push(i as usize);
            i += step;
        }
    } else {
        s = s.clamp(0, d - 1);
        e = e.clamp(-1, d - 1);
        let mut i = s;
        while i > e {
            out.push(i as usize);
            i += step;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_padding_matches_tensorflow() {
        // 224 input, k3 s2: TF pads 0 before and 1 after.
        assert_eq!(resolve_pads(AutoPad::SameUpper, &[], &[224], &[3], &[2], &[1]), vec![0, 1]);
        assert_eq!(resolve_pads(AutoPad::SameLower, &[], &[224], &[3], &[2], &[1]), vec![1, 0]);
        assert_eq!(resolve_pads(AutoPad::SameUpper, &[], &[7], &[5], &[1], &[1]), vec![2, 2]);
    }

    #[test]
    fn reshape_spec_resolves_zero_and_minus_one() {
        assert_eq!(reshape_target(&[8, 3, 4], &[0, -1], false).unwrap(), vec![8, 12]);
        assert!(reshape_target(&[8, 3, 4], &[5, -1], false).is_err());
        assert!(reshape_target(&[2, 2], &[-1, -1], false).is_err());
    }

    #[test]
    fn ceil_mode_drops_a_window_starting_in_right_padding() {
        // Input 5, k2 s2, pads 1/1: ceil gives 4 windows, but the 4th would start at 6 ≥ 5 + 1.
        let w = Window { kernel: vec![2], strides: vec![2], dilations: vec![1], pads: vec![1, 1] };
        assert_eq!(w.output(&[5], true).unwrap(), vec![3]);
        assert_eq!(w.output(&[5], false).unwrap(), vec![3]);
        let w = Window { kernel: vec![3], strides: vec![2], dilations: vec![1], pads: vec![1, 1] };
        assert_eq!(w.output(&[6], true).unwrap(), vec![4]);
        assert_eq!(w.output(&[112], false).unwrap(), vec![56]);
    }

    #[test]
    fn slice_indices_follow_onnx_including_reverse() {
        assert_eq!(slice_indices(4, -1, i64::MIN + 1, -1).unwrap(), vec![3, 2, 1, 0]);
        assert_eq!(slice_indices(5, 1, 100, 2).unwrap(), vec![1, 3]);
        assert_eq!(slice_indices(5, 3, 1, 1).unwrap(), Vec::<usize>::new());
    }

    #[test]
    fn broadcast_follows_numpy() {
        assert_eq!(broadcast(&[8, 1, 5], &[3, 1]).unwrap(), vec![8, 3, 5]);
        assert!(broadcast(&[2, 3], &[4]).is_err());
    }
}
