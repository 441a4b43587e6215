//! A trainable tch module made from an IR graph: float initializers become parameters (autograd
//! on), BatchNorm running statistics become buffers updated in training mode, everything else is
//! a constant. The same interpreter as the frozen executor runs it, so what trains is exactly what
//! exports: `to_graph` writes the current values back into the IR.

use std::collections::{BTreeMap, HashMap};

use anyhow::{anyhow, bail, Context, Result};
use tch::{Device, Kind, Tensor as T};

use crate::exec::{channels_last, interpret, to_tch, Plan};
use crate::ir::{Graph, Op};
use crate::ops;

pub struct Trainable {
    graph: Graph,
    device: Device,
    /// Ordered by name; `true` = weight decay applies (conv/gemm weights, rank ≥ 2).
    params: BTreeMap<String, (T, bool)>,
    buffers: BTreeMap<String, T>,
    consts: HashMap<String, T>,
    plan: Plan,
    /// PyTorch convention: running = (1 − m)·running + m·batch.
    pub bn_momentum: f64,
}

impl Trainable {
    pub fn new(graph: Graph, device: Device) -> Result<Trainable> {
        graph.check()?;
        if let Some((op, node)) = graph.unsupported_ops().first() {
            bail!("cannot train a graph with op {op} (node '{node}')");
        }
        let mut buffer_names = std::collections::HashSet::new();
        for n in &graph.nodes {
            if matches!(n.op, Op::BatchNormalization { .. }) {
                buffer_names.extend(n.inputs.iter().skip(3).cloned());
            }
        }
        let (mut params, mut buffers, mut consts) = (BTreeMap::new(), BTreeMap::new(), HashMap::new());
        for (name, t) in &graph.initializers {
            let v = to_tch(t, device).with_context(|| format!("initializer '{name}'"))?;
            if !t.dtype.is_float() {
                consts.insert(name.clone(), v);
            } else if buffer_names.contains(name) {
                buffers.insert(name.clone(), v);
            } else {
                let decay = t.dims.len() >= 2;
                params.insert(name.clone(), (channels_last(&v)?.set_requires_grad(true), decay));
            }
        }
        let plan = Plan::new(&graph);
        Ok(Trainable { graph, device, params, buffers, consts, plan, bn_momentum: 0.1 })
    }

    pub fn device(&self) -> Device {
        self.device
    }

    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// (name, tensor, weight decay?) of every parameter, in name order.
    pub fn parameters(&self) -> Vec<(String, T, bool)> {
        self.params.iter().map(|(k, (t, d))| (k.clone(), t.shallow_clone(), *d)).collect()
    }

    /// Number of parameters (as `parameters().len()`, without building the list).
    pub fn param_count(&self) -> usize {
        self.params.len()
    }

    /// Parameters and buffers: everything a checkpoint must hold.
    pub fn state(&self) -> Vec<(String, T)> {
        self.params
            .iter()
            .map(|(k, (t, _))| (k.clone(), t.shallow_clone()))
            .chain(self.buffers.iter().map(|(k, t)| (k.clone(), t.shallow_clone())))
            .collect()
    }

    /// BatchNorm running statistics (name, tensor), in name order.
    pub fn buffers(&self) -> Vec<(String, T)> {
        self.buffers.iter().map(|(k, t)| (k.clone(), t.shallow_clone())).collect()
    }

    /// Copies values into the named buffers (a subset is fine; unknown names are an error).
    pub fn load_buffers(&mut self, named: &[(String, T)]) -> Result<()> {
        let _g = tch::no_grad_guard();
        for (name, src) in named {
            let dst = self.buffers.get_mut(name).ok_or_else(|| anyhow!("the module has no buffer '{name}'"))?;
            dst.f_copy_(src)?;
        }
        Ok(())
    }

    /// Copies values into the parameters and buffers (names must match; shapes are checked).
    pub fn load_state(&mut self, named: &HashMap<String, T>) -> Result<()> {
        let _g = tch::no_grad_guard();
        for (name, mut dst) in self.state() {
            let src = named.get(&name).ok_or_else(|| anyhow!("the checkpoint has no tensor '{name}'"))?;
            if src.size() != dst.size() {
                bail!("tensor '{name}': checkpoint shape {:?}, model shape {:?}", src.size(), dst.size());
            }
            dst.f_copy_(&src.f_to_device(self.device)?)?;
        }
        Ok(())
    }

    /// Runs the graph on `x`. `train` evaluates BatchNorm with batch statistics and updates its
    /// running statistics; otherwise the running statistics are used. Returns the graph outputs
    /// and `taps`.
    pub fn run(&self, inputs: &[(&str, &T)], taps: &[&str], train: bool) -> Result<HashMap<String, T>> {
        let mut env = HashMap::new();
        for (name, t) in inputs {
            let t = if t.kind() == Kind::Float { channels_last(&t.f_to_device(self.device)?)? } else { t.shallow_clone() };
            env.insert(name.to_string(), t);
        }
        let keep = |n: &str| taps.contains(&n) || self.graph.outputs.iter().any(|o| o.name == n);
        let lookup = |n: &str| {
            self.params
                .get(n)
                .map(|p| p.0.shallow_clone())
                .or_else(|| self.buffers.get(n).map(|t| t.shallow_clone()))
                .or_else(|| self.consts.get(n).map(|t| t.shallow_clone()))
        };
        let momentum = self.bn_momentum;
        interpret(&self.graph, env, &lookup, &keep, &self.plan, &mut |_, node, ins| match (&node.op, train) {
            (Op::BatchNormalization { epsilon }, true) => {
                let get = |k: usize| ins.get(k).and_then(|t| t.as_ref()).ok_or_else(|| anyhow!("BatchNormalization needs 5 inputs"));
                let y = get(0)?.f_batch_norm(
                    Some(get(1)?),
                    Some(get(2)?),
                    Some(get(3)?),
                    Some(get(4)?),
                    true,
                    momentum,
                    *epsilon as f64,
                    true,
                )?;
                Ok(vec![y])
            }
            (op, _) => ops::eval(op, ins),
        })
    }

    /// Single input → first output.
    pub fn forward(&self, x: &T, train: bool) -> Result<T> {
        let input = self.graph.data_inputs().next().ok_or_else(|| anyhow!("the graph has no data input"))?.name.clone();
        let output = self.graph.outputs.first().ok_or_else(|| anyhow!("the graph has no output"))?.name.clone();
        self.run(&[(&input, x)], &[], train)?.remove(&output).ok_or_else(|| anyhow!("output '{output}' was not computed"))
    }

    /// The IR graph with the current parameter and buffer values.
    pub fn to_graph(&self) -> Result<Graph> {
        let mut g = self.graph.clone();
        for (name, t) in self.state() {
            let v = crate::exec::from_tch(&t.detach())?;
            g.initializers.insert(name, v);
        }
        Ok(g)
    }
}
