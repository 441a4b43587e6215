//! The tch executor: runs an IR graph with frozen weights on `cpu` or `cuda:N` and returns the
//! graph outputs plus any named intermediate tensors ("taps", used to cut a teacher into blocks).

pub mod fused;

use std::collections::{HashMap, HashSet};

use anyhow::{anyhow, bail, Context, Result};
use tch::{Device, Kind};

/// The tch ⇄ IR conversions live with the op semantics that need them ([`crate::ops::convert`]).
pub use crate::ops::convert;
pub use crate::ops::convert::{device_arg, from_tch, parse_device, to_tch};

use crate::ir::{Graph, Node, Op};
use crate::ops;

/// Shape inference with constant folding is op semantics: it lives in [`crate::ops::infer`].
pub use crate::ops::infer::{fold_node, infer};

/// Gives a 4-D tensor NHWC strides (PyTorch's channels_last memory format), which makes
/// libtorch pick its oneDNN convolution kernels; values and logical shape are unchanged.
pub fn channels_last(t: &tch::Tensor) -> Result<tch::Tensor> {
    if t.dim() != 4 {
        return Ok(t.shallow_clone());
    }
    Ok(t.f_permute([0, 2, 3, 1])?.f_contiguous()?.f_permute([0, 3, 1, 2])?)
}

/// A graph loaded onto a device with frozen weights.
pub struct Executor {
    graph: Graph,
    device: Device,
    consts: HashMap<String, tch::Tensor>,
    plan: Plan,
    /// The plan without convolution+activation fusion, for runs that tap a fused convolution.
    unfused: Plan,
    /// Fused convolutions by node index (CPU; see [`fused`]).
    fused: HashMap<usize, fused::FusedConv>,
    /// The only data input and the batch it fixes, if it does: other batches run in chunks.
    fixed_batch: Option<(String, i64)>,
}

impl Executor {
    /// Loads `graph` onto `device`. Refuses graphs with unsupported ops, listing all of them.
    pub fn new(graph: Graph, device: Device) -> Result<Executor> {
        graph.check()?;
        let unsupported = graph.unsupported_ops();
        if !unsupported.is_empty() {
            let list: Vec<String> = unsupported.iter().map(|(op, node)| format!("{op} (first at node '{node}')")).collect();
            bail!("the graph uses ops dnas cannot execute: {}", list.join(", "));
        }
        if let Device::Cuda(i) = device {
            if !tch::Cuda::is_available() || i >= tch::Cuda::device_count() as usize {
                bail!("device cuda:{i} is not available (CUDA devices visible: {})", tch::Cuda::device_count());
            }
        }
        let mut consts = HashMap::new();
        for (name, t) in &graph.initializers {
            let v = to_tch(t, device).with_context(|| format!("initializer '{name}'"))?;
            consts.insert(name.clone(), channels_last(&v)?);
        }
        let mut plan = Plan::for_inference(&graph);
        let unfused = plan.clone();
        let mut fused = HashMap::new();
        // CPU only; DNAS_EXEC_FUSE=0 turns fusion off (for comparisons).
        if device == Device::Cpu && fused::available() && std::env::var("DNAS_EXEC_FUSE").map_or(true, |v| v != "0") {
            for (c, (a, act)) in fused::pairs(&graph, &plan.uses) {
                let node = &graph.nodes[c];
                let (Some(w), bias) = (node.inputs.get(1).and_then(|w| consts.get(w)), node.inputs.get(2).and_then(|b| consts.get(b)))
                else {
                    continue;
                };
                let f = fused::FusedConv::new(&node.op, w, bias, act).with_context(|| format!("node '{}' (Conv, fused)", node.name))?;
                if let Some(f) = f {
                    fused.insert(c, f);
                    plan.conv_act.insert(c, a);
                    plan.fused_act.insert(a);
                }
            }
        }
        let data: Vec<&crate::ir::ValueInfo> = graph.data_inputs().collect();
        let fixed_batch = match data.as_slice() {
            [vi] => match vi.shape.as_deref() {
                Some([crate::ir::Dim::Fixed(b), ..]) if *b > 0 => Some((vi.name.clone(), *b as i64)),
                _ => None,
            },
            _ => None,
        };
        Ok(Executor { graph, device, consts, plan, unfused, fused, fixed_batch })
    }

    pub fn device(&self) -> Device {
        self.device
    }

    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// Runs the graph. `inputs` are moved to the executor's device; the result holds every graph
    /// output and every tensor named in `taps`. Intermediates are freed after their last use.
    /// A graph whose only data input fixes its batch (a model that bakes it into its Reshapes)
    /// runs any other batch in chunks of its size, the last padded by repeating its last image.
    pub fn run(&self, inputs: &[(&str, &tch::Tensor)], taps: &[&str]) -> Result<HashMap<String, tch::Tensor>> {
        let Some((name, b)) = self.fixed_batch.as_ref().map(|(n, b)| (n.as_str(), *b)) else { return self.run_once(inputs, taps) };
        let Some((_, x)) = inputs.iter().find(|(n, _)| *n == name) else { return self.run_once(inputs, taps) };
        let n = x.size().first().copied().unwrap_or(b);
        if n == b || n == 0 || x.dim() == 0 {
            return self.run_once(inputs, taps);
        }
        let mut parts: HashMap<String, Vec<tch::Tensor>> = HashMap::new();
        for start in (0..n).step_by(b as usize) {
            let len = b.min(n - start);
            let mut chunk = x.f_narrow(0, start, len)?;
            if len < b {
                let last = x.f_narrow(0, n - 1, 1)?.f_expand([b - len].iter().chain(&x.size()[1..]).copied().collect::<Vec<_>>(), false)?;
                chunk = tch::Tensor::f_cat(&[chunk, last], 0)?;
            }
            let ins: Vec<(&str, &tch::Tensor)> = inputs.iter().map(|(k, t)| if *k == name { (*k, &chunk) } else { (*k, *t) }).collect();
            for (k, v) in self.run_once(&ins, taps)? {
                parts.entry(k).or_default().push(v);
            }
        }
        parts
            .into_iter()
            .map(|(k, vs)| {
                let batched = vs.iter().all(|v| v.dim() > 0 && v.size()[0] == b);
                let v = if batched { tch::Tensor::f_cat(&vs, 0)?.f_narrow(0, 0, n)? } else { vs[0].shallow_clone() };
                Ok((k, v))
            })
            .collect()
    }

    fn run_once(&self, inputs: &[(&str, &tch::Tensor)], taps: &[&str]) -> Result<HashMap<String, tch::Tensor>> {
        let _guard = tch::no_grad_guard();
        let mut env: HashMap<String, tch::Tensor> = HashMap::new();
        for vi in self.graph.data_inputs() {
            let (_, t) =
                inputs.iter().find(|(n, _)| *n == vi.name).ok_or_else(|| anyhow!("no value given for graph input '{}'", vi.name))?;
            if let Some(decl) = &vi.shape {
                if decl.len() != t.dim() {
                    bail!("graph input '{}': expected rank {}, got shape {:?}", vi.name, decl.len(), t.size());
                }
            }
            let t = if t.kind() == Kind::Float { channels_last(&t.f_to_device(self.device)?)? } else { t.shallow_clone() };
            env.insert(vi.name.clone(), t);
        }
        let keep = |name: &str| taps.contains(&name) || self.graph.outputs.iter().any(|o| o.name == name);
        let lookup = |name: &str| self.consts.get(name).map(|t| t.shallow_clone());
        // A tapped convolution output must exist: such runs go without fusion.
        let tapped = |k: &usize| self.graph.nodes[*k].outputs.iter().any(|o| taps.contains(&o.as_str()));
        let fuse = !self.fused.is_empty() && !self.plan.conv_act.keys().any(tapped);
        let plan = if fuse { &self.plan } else { &self.unfused };
        let mut kept = interpret(&self.graph, env, &lookup, &keep, plan, &mut |k, node, ins| match self.fused.get(&k).filter(|_| fuse) {
            Some(f) => {
                let x = ins.first().and_then(|x| x.as_ref()).ok_or_else(|| anyhow!("missing input"))?;
                Ok(vec![f.run(x)?])
            }
            None => ops::eval(&node.op, ins),
        })?;
        for tap in taps {
            if !kept.contains_key(*tap) {
                let t = lookup(tap).ok_or_else(|| anyhow!("tap '{tap}' is not a value of the graph"))?;
                kept.insert(tap.to_string(), t);
            }
        }
        Ok(kept)
    }

    /// Runs a single-input graph and returns its first output.
    pub fn forward(&self, x: &tch::Tensor) -> Result<tch::Tensor> {
        let input = self.graph.data_inputs().next().ok_or_else(|| anyhow!("the graph has no data input"))?.name.clone();
        let output = self.graph.outputs.first().ok_or_else(|| anyhow!("the graph has no output"))?.name.clone();
        let mut out = self.run(&[(&input, x)], &[])?;
        out.remove(&output).ok_or_else(|| anyhow!("output '{output}' was not computed"))
    }
}

/// Evaluates node `k` given its inputs (the executor's `ops::eval`, or a training-mode variant).
pub type NodeEval<'a> = dyn FnMut(usize, &Node, &[Option<tch::Tensor>]) -> Result<Vec<tch::Tensor>> + 'a;

/// How [`interpret`] walks a graph: use counts (to free values after their last use), the
/// swish pairs it fuses and, for inference, the nodes that may overwrite an input.
///
/// `Sigmoid(x) → Mul(x, ·)`, the sigmoid used only there, is how every exporter writes
/// swish/SiLU; it runs as one `silu` kernel (one pass over the tensor forward and backward
/// instead of three), while the IR and the exported ONNX keep the two ops.
///
/// In-place (frozen inference only, never under autograd): an activation or elementwise node
/// whose input is an intermediate used by nobody else writes its result into that input's
/// memory (`relu_`, `clamp_`, `add_`, …) instead of allocating a new tensor — one pass over
/// memory instead of a read, an allocation and a write. Safe only when no other live value
/// shares that storage, so the input must come from an op that always allocates its output
/// (convolution, pooling, arithmetic; not a view such as Reshape or Identity), it must be its
/// only use (the graph's outputs count as uses), and at run time it must not be a tap.
#[derive(Clone)]
pub struct Plan {
    uses: HashMap<String, usize>,
    /// Mul node index → (its sigmoid's node index, position of `x` among the Mul's inputs).
    swish_mul: HashMap<usize, (usize, usize)>,
    /// Sigmoid node index → its Mul's node index.
    swish_sigmoid: HashMap<usize, usize>,
    /// Node index → position of the input it may overwrite (empty unless for inference).
    inplace: HashMap<usize, usize>,
    /// Convolution node → the activation node fused into it (the executor's [`fused`] kernels);
    /// the convolution's result takes the activation's output name and the activation is skipped.
    conv_act: HashMap<usize, usize>,
    fused_act: HashSet<usize>,
}

impl Plan {
    pub fn new(graph: &Graph) -> Plan {
        let uses: HashMap<String, usize> = graph.use_counts().into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        let producer = graph.producers();
        let (mut swish_mul, mut swish_sigmoid) = (HashMap::new(), HashMap::new());
        for (m, node) in graph.nodes.iter().enumerate() {
            if !matches!(node.op, Op::Mul) || node.inputs.len() != 2 {
                continue;
            }
            for pos in 0..2 {
                let (x, s) = (&node.inputs[pos], &node.inputs[1 - pos]);
                let Some(&k) = producer.get(s.as_str()) else { continue };
                let sig = &graph.nodes[k];
                if matches!(sig.op, Op::Sigmoid) && sig.inputs.first() == Some(x) && uses.get(s.as_str()) == Some(&1) {
                    swish_mul.insert(m, (k, pos));
                    swish_sigmoid.insert(k, m);
                    break;
                }
            }
        }
        Plan { uses, swish_mul, swish_sigmoid, inplace: HashMap::new(), conv_act: HashMap::new(), fused_act: HashSet::new() }
    }

    /// The plan of a frozen graph: as [`Plan::new`], plus the in-place nodes.
    pub fn for_inference(graph: &Graph) -> Plan {
        let mut plan = Plan::new(graph);
        // Values that own their storage: outputs of ops that always allocate, and of in-place
        // nodes writing into such a value (its only use, so nothing else sees the change).
        let mut owned: std::collections::HashSet<&str> = std::collections::HashSet::new();
        for (k, node) in graph.nodes.iter().enumerate() {
            let single = |i: &str| owned.contains(i) && plan.uses.get(i) == Some(&1);
            let target = match &node.op {
                Op::Relu | Op::Sigmoid | Op::HardSwish | Op::Clip => node.inputs.first().filter(|i| single(i)).map(|_| 0),
                Op::Add | Op::Sub | Op::Mul | Op::Div if node.inputs.len() == 2 => {
                    if let Some(&(_, pos)) = plan.swish_mul.get(&k) {
                        // swish: x feeds the sigmoid and the Mul, nothing else.
                        let x = node.inputs[pos].as_str();
                        (owned.contains(x) && plan.uses.get(x) == Some(&2)).then_some(pos)
                    } else {
                        // Sub and Div are not symmetric: only their first input may be overwritten.
                        let symmetric = matches!(node.op, Op::Add | Op::Mul);
                        (0..2).find(|&p| (p == 0 || symmetric) && node.inputs[0] != node.inputs[1] && single(&node.inputs[p]))
                    }
                }
                _ => None,
            };
            if let Some(pos) = target {
                plan.inplace.insert(k, pos);
            }
            let allocates = match &node.op {
                Op::Conv(_)
                | Op::BatchNormalization { .. }
                | Op::Relu
                | Op::Sigmoid
                | Op::HardSwish
                | Op::HardSigmoid { .. }
                | Op::Add
                | Op::Sub
                | Op::Mul
                | Op::Div
                | Op::Gemm { .. }
                | Op::MatMul
                | Op::GlobalAveragePool
                | Op::AveragePool(_)
                | Op::MaxPool(_) => true,
                // Clip without bounds hands back its input.
                Op::Clip => node.inputs.iter().skip(1).any(|i| !i.is_empty()),
                _ => false,
            };
            if allocates || target.is_some() {
                owned.extend(node.outputs.iter().map(String::as_str));
            }
        }
        plan
    }
}

/// Walks `graph`'s nodes in order: `env` holds the graph inputs, `consts` resolves initializers,
/// `eval` computes one node. Values are freed after their last use unless `keep` says otherwise;
/// the kept values (graph outputs, taps) are returned. Shared by the frozen [`Executor`] and the
/// trainable module (which evaluates BatchNorm in training mode).
pub fn interpret(
    graph: &Graph,
    mut env: HashMap<String, tch::Tensor>,
    consts: &dyn Fn(&str) -> Option<tch::Tensor>,
    keep: &dyn Fn(&str) -> bool,
    plan: &Plan,
    eval: &mut NodeEval,
) -> Result<HashMap<String, tch::Tensor>> {
    let mut left: HashMap<&str, usize> = plan.uses.iter().map(|(k, &v)| (k.as_str(), v)).collect();
    let mut kept: HashMap<String, tch::Tensor> = HashMap::new();
    for (name, t) in &env {
        if keep(name) {
            kept.insert(name.clone(), t.shallow_clone());
        }
    }
    // A fused pair runs as one silu unless a caller wants the sigmoid's own output.
    let fused = |sigmoid: usize| graph.nodes[sigmoid].outputs.first().is_some_and(|o| !keep(o));
    for (k, node) in graph.nodes.iter().enumerate() {
        let skip = plan.swish_sigmoid.get(&k).is_some_and(|_| fused(k)) || plan.fused_act.contains(&k);
        let swish = plan.swish_mul.get(&k).filter(|(s, _)| fused(*s)).map(|&(_, pos)| pos);
        if skip {
            // Computed by its Mul; only release the use of its input.
            for i in node.inputs.iter().filter(|i| !i.is_empty()) {
                if let Some(n) = left.get_mut(i.as_str()) {
                    *n -= 1;
                }
            }
            continue;
        }
        let ins: Vec<Option<tch::Tensor>> = node
            .inputs
            .iter()
            .map(|i| {
                if i.is_empty() || (swish.is_some() && !env.contains_key(i.as_str()) && consts(i).is_none()) {
                    return Ok(None);
                }
                env.get(i.as_str())
                    .map(|t| t.shallow_clone())
                    .or_else(|| consts(i))
                    .map(Some)
                    .ok_or_else(|| anyhow!("input '{i}' is undefined"))
            })
            .collect::<Result<_>>()
            .with_context(|| format!("node '{}' ({})", node.name, node.op.name()))?;
        // In place when planned and the value to overwrite is not wanted by the caller.
        let inplace = plan.inplace.get(&k).copied().filter(|&p| !keep(&node.inputs[p]));
        let outs = match swish {
            Some(pos) => {
                let x = ins[pos].as_ref().ok_or_else(|| anyhow!("input '{}' is undefined", node.inputs[pos]))?;
                let y = if inplace.is_some() { x.shallow_clone().f_silu_() } else { x.f_silu() };
                vec![y.with_context(|| format!("node '{}' (swish)", node.name))?]
            }
            None => match inplace
                .map(|p| {
                    ops::eval_inplace(&node.op, &ins, p).with_context(|| format!("node '{}' ({}, in place)", node.name, node.op.name()))
                })
                .transpose()?
                .flatten()
            {
                Some(y) => vec![y],
                None => eval(k, node, &ins).with_context(|| format!("node '{}' ({})", node.name, node.op.name()))?,
            },
        };
        // A fused convolution's result is its activation's output.
        let names = plan.conv_act.get(&k).map_or(&node.outputs, |&a| &graph.nodes[a].outputs);
        drop(ins);
        for i in node.inputs.iter().filter(|i| !i.is_empty()) {
            if let Some(n) = left.get_mut(i.as_str()) {
                *n -= 1;
                if *n == 0 && !keep(i) {
                    env.remove(i.as_str());
                }
            }
        }
        for (name, t) in names.iter().zip(outs) {
            if name.is_empty() {
                continue;
            }
            if keep(name) {
                kept.insert(name.clone(), t.shallow_clone());
            }
            env.insert(name.clone(), t);
        }
    }
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::builder::Builder;
    use crate::ir::Tensor;

    /// `exec`'s graph on input `x` through the plain interpreter: no in-place nodes, no fusion.
    fn plain_run(exec: &Executor, x: &tch::Tensor, taps: &[&str]) -> HashMap<String, tch::Tensor> {
        let _g = tch::no_grad_guard();
        let graph = &exec.graph;
        let env = HashMap::from([("x".to_string(), channels_last(x).unwrap())]);
        let keep = |n: &str| taps.contains(&n) || graph.outputs.iter().any(|o| o.name == n);
        let lookup = |n: &str| exec.consts.get(n).map(|t| t.shallow_clone());
        interpret(graph, env, &lookup, &keep, &Plan::new(graph), &mut |_, node, ins| ops::eval(&node.op, ins)).unwrap()
    }

    /// conv → relu → swish → +x (residual) → flatten (a view) → relu, with the residual's output
    /// also clipped: the in-place plan must cover exactly the safe nodes, and with any tap the
    /// executor must give what the plain (allocating) interpreter gives.
    #[test]
    fn in_place_nodes_are_planned_safely_and_change_nothing() {
        let mut b = Builder::new("t", "x", [4, 5, 5], 7);
        let c = b.conv("c", "x", 4, 4, 3, 1, 1, true);
        let r = b.node("r", Op::Relu, vec![c.clone()]);
        let s = b.swish("s", &r);
        let a = b.node("a", Op::Add, vec![s.clone(), "x".into()]);
        let f = b.node("f", Op::Flatten { axis: 1 }, vec![a.clone()]);
        let g = b.node("g", Op::Relu, vec![f]);
        let lo = b.init("lo".into(), Tensor::f32(vec![], vec![-0.5]));
        let hi = b.init("hi".into(), Tensor::f32(vec![], vec![0.5]));
        let k = b.node("k", Op::Clip, vec![a, lo, hi]);
        let graph = b.finish(&[&g, &k]);

        let plan = Plan::for_inference(&graph);
        let planned: Vec<&str> = plan.inplace.keys().map(|&i| graph.nodes[i].name.as_str()).collect();
        let mut planned = planned;
        planned.sort();
        // r overwrites the conv output, the swish Mul overwrites r, the Add overwrites the swish;
        // g reads a view (not owned) and k's input also feeds the view: neither may.
        assert_eq!(planned, ["a", "r", "s.swish"]);

        let exec = Executor::new(graph, Device::Cpu).unwrap();
        // Given in channels_last strides, so the executor takes it as it is (no copy to hide behind).
        let x = channels_last(&tch::Tensor::randn([2, 4, 5, 5], (Kind::Float, Device::Cpu))).unwrap();
        let x0 = x.copy();
        let plain = |taps: &[&str]| plain_run(&exec, &x, taps);
        for taps in [vec![], vec!["c"], vec!["c", "r", "s.swish"]] {
            let got = exec.run(&[("x", &x)], &taps).unwrap();
            let want = plain(&taps);
            assert_eq!(got.len(), want.len());
            for (name, w) in &want {
                let d = (&got[name] - w).abs().max().double_value(&[]);
                assert!(d < 1e-6, "value '{name}' with taps {taps:?} differs by {d}");
            }
        }
        // The caller's input is never written.
        assert_eq!((&x - &x0).abs().max().double_value(&[]), 0.0);
        let again = exec.run(&[("x", &x)], &[]).unwrap();
        assert!((&again["k"] - &plain(&[])["k"]).abs().max().double_value(&[]) < 1e-6);
    }

    /// conv → Clip(0, 6) (bounds from Constant nodes, as torch exports ReLU6) → conv → Relu: both
    /// pairs fuse on the CPU, give what the unfused interpreter gives, and a tap on a fused
    /// convolution's own output still gets that output (the run falls back to the unfused plan).
    #[test]
    fn fused_convolutions_match_the_unfused_graph() {
        if !fused::available() {
            return;
        }
        let mut b = Builder::new("t", "x", [8, 9, 9], 3);
        let c1 = b.conv("c1", "x", 8, 16, 3, 2, 1, true);
        let lo = b.node("lo", Op::Constant { value: Tensor::f32(vec![], vec![0.0]) }, vec![]);
        let hi = b.node("hi", Op::Constant { value: Tensor::f32(vec![], vec![0.25]) }, vec![]);
        let k1 = b.node("k1", Op::Clip, vec![c1.clone(), lo, hi]);
        let c2 = b.conv("c2", &k1, 16, 16, 3, 1, 16, false);
        let r2 = b.node("r2", Op::Relu, vec![c2]);
        let graph = b.finish(&[&r2]);
        let exec = Executor::new(graph, Device::Cpu).unwrap();
        assert_eq!(exec.fused.len(), 2, "both convolutions fuse");
        let x = tch::Tensor::randn([2, 8, 9, 9], (Kind::Float, Device::Cpu));
        let plain = |taps: &[&str]| plain_run(&exec, &x, taps);
        for taps in [vec![], vec!["k1"], vec!["c1"]] {
            let got = exec.run(&[("x", &x)], &taps).unwrap();
            let want = plain(&taps);
            assert_eq!(got.len(), want.len(), "taps {taps:?}");
            for (name, w) in &want {
                let d = (&got[name] - w).abs().max().double_value(&[]);
                assert!(d < 1e-5, "value '{name}' with taps {taps:?} differs by {d}");
            }
        }
        // The clip bound is applied (many values sit at 0.25) and a bad input is an error, not an abort.
        let k1v = exec.run(&[("x", &x)], &["k1"]).unwrap().remove("k1").unwrap();
        assert!(k1v.eq(0.25).sum(Kind::Int64).int64_value(&[]) > 0);
        let f = exec.fused.values().next().unwrap();
        let err = f.run(&tch::Tensor::zeros([3, 3], (Kind::Float, Device::Cpu))).unwrap_err();
        assert!(err.to_string().contains("oneDNN fused convolution"), "{err}");
    }
}
