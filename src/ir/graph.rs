//! The graph: named values, nodes in topological order, initializers.

use std::collections::{BTreeMap, HashMap, HashSet};

use anyhow::{bail, Result};

use super::op::Op;
use super::tensor::{DType, Tensor};

/// One dimension of a declared input/output shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dim {
    Fixed(usize),
    /// Symbolic (e.g. the batch dimension "N").
    Sym(String),
}

/// A graph input or output as declared in the model.
#[derive(Clone, Debug, PartialEq)]
pub struct ValueInfo {
    pub name: String,
    pub dtype: DType,
    /// `None` when the model declares no shape.
    pub shape: Option<Vec<Dim>>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// Unique, non-empty (the importer names anonymous nodes `{op}_{index}`).
    pub name: String,
    pub op: Op,
    /// Empty string = optional input left out.
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
}

/// A model in dnas's IR. Nodes are kept in a valid topological order (checked by [`Graph::check`]).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Graph {
    pub name: String,
    pub inputs: Vec<ValueInfo>,
    pub outputs: Vec<ValueInfo>,
    /// Ordered by name so that writing is deterministic.
    pub initializers: BTreeMap<String, Tensor>,
    pub nodes: Vec<Node>,
    /// The default-domain opset the model was read with (or is meant for).
    pub opset: i64,
    /// Free-form metadata carried to ONNX `metadata_props`.
    pub metadata: BTreeMap<String, String>,
}

impl Graph {
    /// Checks the structural invariants: unique node names and value producers, every input
    /// defined before use (topological order), graph outputs produced. Errors name the node.
    pub fn check(&self) -> Result<()> {
        let mut defined: HashSet<&str> = HashSet::new();
        for i in &self.inputs {
            if !defined.insert(&i.name) {
                bail!("graph input '{}' is declared twice", i.name);
            }
        }
        for name in self.initializers.keys() {
            defined.insert(name);
        }
        // Producers of every value, to tell "missing" from "defined later" (a cycle or bad order).
        let mut producer: HashMap<&str, &str> = HashMap::new();
        let mut names = HashSet::new();
        for n in &self.nodes {
            if !names.insert(n.name.as_str()) {
                bail!("node '{}' ({}): the name is used by two nodes", n.name, n.op.name());
            }
            for o in n.outputs.iter().filter(|o| !o.is_empty()) {
                if let Some(prev) = producer.insert(o, &n.name) {
                    bail!("node '{}' ({}): output '{}' is also produced by node '{}'", n.name, n.op.name(), o, prev);
                }
            }
        }
        for n in &self.nodes {
            for i in n.inputs.iter().filter(|i| !i.is_empty()) {
                if !defined.contains(i.as_str()) {
                    match producer.get(i.as_str()) {
                        Some(p) => bail!(
                            "node '{}' ({}): input '{}' is produced by node '{}' which does not come before it \
                             (the graph has a cycle or is not topologically sorted)",
                            n.name,
                            n.op.name(),
                            i,
                            p
                        ),
                        None => {
                            bail!("node '{}' ({}): input '{}' is not a graph input, initializer or node output", n.name, n.op.name(), i)
                        }
                    }
                }
            }
            for o in n.outputs.iter().filter(|o| !o.is_empty()) {
                defined.insert(o);
            }
        }
        for o in &self.outputs {
            if !defined.contains(o.name.as_str()) {
                bail!("graph output '{}' is not produced by any node", o.name);
            }
        }
        Ok(())
    }

    /// Sorts nodes topologically (stable: keeps file order where it is already valid).
    /// Errors name a node on a cycle or with a missing input.
    pub fn toposort(&mut self) -> Result<()> {
        let mut available: HashSet<String> = self.inputs.iter().map(|i| i.name.clone()).collect();
        available.extend(self.initializers.keys().cloned());
        available.insert(String::new());
        let mut pending: Vec<Node> = std::mem::take(&mut self.nodes);
        let mut sorted = Vec::with_capacity(pending.len());
        while !pending.is_empty() {
            let before = pending.len();
            let mut rest = Vec::new();
            for n in pending {
                if n.inputs.iter().all(|i| available.contains(i)) {
                    available.extend(n.outputs.iter().cloned());
                    sorted.push(n);
                } else {
                    rest.push(n);
                }
            }
            if rest.len() == before {
                self.nodes = sorted;
                self.nodes.extend(rest);
                // Let check() produce the precise message (missing input vs cycle).
                self.check()?;
                bail!("the graph could not be sorted topologically");
            }
            pending = rest;
        }
        self.nodes = sorted;
        Ok(())
    }

    /// The part of the graph needed to compute `outputs`, which become its outputs (a teacher cut
    /// short at its last block cut). Unused initializers are dropped.
    pub fn truncated(&self, outputs: &[String]) -> Result<Graph> {
        let producer = self.producers();
        let is_input = |v: &str| self.inputs.iter().any(|i| i.name == v) || self.initializers.contains_key(v);
        let mut needed = vec![false; self.nodes.len()];
        let mut stack: Vec<&str> = Vec::new();
        for o in outputs {
            if !producer.contains_key(o.as_str()) && !is_input(o) {
                bail!("'{o}' is not a value of graph '{}'", self.name);
            }
            stack.push(o);
        }
        while let Some(v) = stack.pop() {
            if let Some(&k) = producer.get(v) {
                if !needed[k] {
                    needed[k] = true;
                    stack.extend(self.nodes[k].inputs.iter().filter(|i| !i.is_empty()).map(|i| i.as_str()));
                }
            }
        }
        let nodes: Vec<Node> = self.nodes.iter().zip(&needed).filter(|(_, &n)| n).map(|(n, _)| n.clone()).collect();
        let used: HashSet<String> = nodes.iter().flat_map(|n| n.inputs.iter().cloned()).chain(outputs.iter().cloned()).collect();
        let g = Graph {
            name: self.name.clone(),
            inputs: self.inputs.iter().filter(|i| !self.initializers.contains_key(&i.name) || used.contains(&i.name)).cloned().collect(),
            nodes,
            outputs: outputs.iter().map(|o| ValueInfo { name: o.clone(), dtype: DType::F32, shape: None }).collect(),
            initializers: self.initializers.iter().filter(|(k, _)| used.contains(*k)).map(|(k, v)| (k.clone(), v.clone())).collect(),
            opset: self.opset,
            metadata: self.metadata.clone(),
        };
        g.check()?;
        Ok(g)
    }

    /// Names of the graph inputs that are real inputs (not initializers).
    pub fn data_inputs(&self) -> impl Iterator<Item = &ValueInfo> {
        self.inputs.iter().filter(|i| !self.initializers.contains_key(&i.name))
    }

    /// The index of the node that computes each value (graph inputs and initializers have none).
    pub fn producers(&self) -> HashMap<&str, usize> {
        self.nodes.iter().enumerate().flat_map(|(k, n)| n.outputs.iter().map(move |o| (o.as_str(), k))).collect()
    }

    /// Number of consumers of every value (graph outputs count as one consumer).
    pub fn use_counts(&self) -> HashMap<&str, usize> {
        let mut uses: HashMap<&str, usize> = HashMap::new();
        for n in &self.nodes {
            for i in n.inputs.iter().filter(|i| !i.is_empty()) {
                *uses.entry(i).or_default() += 1;
            }
        }
        for o in &self.outputs {
            *uses.entry(&o.name).or_default() += 1;
        }
        uses
    }

    /// All op types the executor cannot run, each with the first node that uses it.
    pub fn unsupported_ops(&self) -> Vec<(String, String)> {
        let mut seen = BTreeMap::new();
        for n in &self.nodes {
            if let Op::Unknown { op_type, domain } = &n.op {
                let key = if domain.is_empty() { op_type.clone() } else { format!("{domain}::{op_type}") };
                seen.entry(key).or_insert_with(|| n.name.clone());
            }
        }
        seen.into_iter().collect()
    }
}
