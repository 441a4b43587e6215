//! The tch executor: runs an IR graph with frozen weights on `cpu` or `cuda:N` and returns the
//! graph outputs plus any named intermediate tensors ("taps", used to cut a teacher into blocks).

pub mod convert;
pub mod ops;

use std::collections::HashMap;

use anyhow::{anyhow, bail, Context, Result};
use tch::{Device, Kind};

pub use convert::{from_tch, parse_device, to_tch};

use crate::ir::{infer_with, Facts, Graph, Node, Tensor};

/// Shape inference for `g` with small constant subgraphs folded through the executor.
pub fn infer(g: &Graph, input_shapes: &HashMap<String, Vec<usize>>) -> Result<Facts> {
    infer_with(g, input_shapes, &fold_node)
}

/// Evaluates one node on constant inputs on the CPU (the folding hook of shape inference).
pub fn fold_node(node: &Node, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
    let _guard = tch::no_grad_guard();
    let ins: Vec<Option<tch::Tensor>> = inputs.iter().map(|t| t.map(|t| to_tch(t, Device::Cpu)).transpose()).collect::<Result<_>>()?;
    ops::eval(&node.op, &ins)?.iter().map(from_tch).collect()
}

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
        let plan = Plan::new(&graph);
        Ok(Executor { graph, device, consts, plan })
    }

    pub fn device(&self) -> Device {
        self.device
    }

    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// Runs the graph. `inputs` are moved to the executor's device; the result holds every graph
    /// output and every tensor named in `taps`. Intermediates are freed after their last use.
    pub fn run(&self, inputs: &[(&str, &tch::Tensor)], taps: &[&str]) -> Result<HashMap<String, tch::Tensor>> {
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
        let mut kept = interpret(&self.graph, env, &lookup, &keep, &self.plan, &mut |node, ins| ops::eval(&node.op, ins))?;
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

/// Evaluates one node given its inputs (the executor's `ops::eval`, or a training-mode variant).
pub type NodeEval<'a> = dyn FnMut(&Node, &[Option<tch::Tensor>]) -> Result<Vec<tch::Tensor>> + 'a;

/// How [`interpret`] walks a graph: use counts (to free values after their last use) and the
/// swish pairs it fuses. `Sigmoid(x) → Mul(x, ·)`, the sigmoid used only there, is how every
/// exporter writes swish/SiLU; it runs as one `silu` kernel (one pass over the tensor forward
/// and backward instead of three), while the IR and the exported ONNX keep the two ops.
pub struct Plan {
    uses: HashMap<String, usize>,
    /// Mul node index → (its sigmoid's node index, position of `x` among the Mul's inputs).
    swish_mul: HashMap<usize, (usize, usize)>,
    /// Sigmoid node index → its Mul's node index.
    swish_sigmoid: HashMap<usize, usize>,
}

impl Plan {
    pub fn new(graph: &Graph) -> Plan {
        let uses: HashMap<String, usize> = graph.use_counts().into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        let producer: HashMap<&str, usize> =
            graph.nodes.iter().enumerate().flat_map(|(k, n)| n.outputs.iter().map(move |o| (o.as_str(), k))).collect();
        let (mut swish_mul, mut swish_sigmoid) = (HashMap::new(), HashMap::new());
        for (m, node) in graph.nodes.iter().enumerate() {
            if !matches!(node.op, crate::ir::Op::Mul) || node.inputs.len() != 2 {
                continue;
            }
            for pos in 0..2 {
                let (x, s) = (&node.inputs[pos], &node.inputs[1 - pos]);
                let Some(&k) = producer.get(s.as_str()) else { continue };
                let sig = &graph.nodes[k];
                if matches!(sig.op, crate::ir::Op::Sigmoid) && sig.inputs.first() == Some(x) && uses.get(s.as_str()) == Some(&1) {
                    swish_mul.insert(m, (k, pos));
                    swish_sigmoid.insert(k, m);
                    break;
                }
            }
        }
        Plan { uses, swish_mul, swish_sigmoid }
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
        let skip = plan.swish_sigmoid.get(&k).is_some_and(|_| fused(k));
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
        let outs = match swish {
            Some(pos) => {
                let x = ins[pos].as_ref().ok_or_else(|| anyhow!("input '{}' is undefined", node.inputs[pos]))?;
                vec![x.f_silu().with_context(|| format!("node '{}' (swish)", node.name))?]
            }
            None => eval(node, &ins).with_context(|| format!("node '{}' ({})", node.name, node.op.name()))?,
        };
        drop(ins);
        for i in node.inputs.iter().filter(|i| !i.is_empty()) {
            if let Some(n) = left.get_mut(i.as_str()) {
                *n -= 1;
                if *n == 0 && !keep(i) {
                    env.remove(i.as_str());
                }
            }
        }
        for (name, t) in node.outputs.iter().zip(outs) {
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
