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

use anyhow::{anyhow, ensure, Context, Result};

use crate::ir::{Dim, Fact, Facts, Graph, Node, Tensor};

/// Evaluates one node on known constant inputs ([`fold_node`]: the families' own tch evaluation),
/// so that shape subgraphs fold with exactly the executor's semantics.
pub type Folder<'a> = &'a dyn Fn(&Node, &[Option<&Tensor>]) -> Result<Vec<Tensor>>;

/// Largest output (elements) that is folded: shape computations, never activations.
pub const FOLD_LIMIT: usize = 4096;

/// Shape inference for `g` with small constant subgraphs folded by evaluating them on the CPU.
pub fn infer(g: &Graph, input_shapes: &HashMap<String, Vec<usize>>) -> Result<Facts> {
    infer_with(g, input_shapes, &fold_node)
}

/// Evaluates one node on constant inputs on the CPU (the folding hook of shape inference).
#[cfg(feature = "torch")]
pub fn fold_node(node: &Node, inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
    let _guard = tch::no_grad_guard();
    let ins: Vec<Option<tch::Tensor>> =
        inputs.iter().map(|t| t.map(|t| super::convert::to_tch(t, tch::Device::Cpu)).transpose()).collect::<Result<_>>()?;
    super::eval(&node.op, &ins)?.iter().map(super::convert::from_tch).collect()
}

/// The validation build (no libtorch) folds nothing: a value that only a constant subgraph's
/// evaluation gives stays unknown, and an op that needs it (a Reshape to a computed shape)
/// is refused by inference, naming the node. Models dnas exports have no such subgraphs.
#[cfg(not(feature = "torch"))]
pub fn fold_node(_node: &Node, _inputs: &[Option<&Tensor>]) -> Result<Vec<Tensor>> {
    Ok(Vec::new())
}

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
        crate::ir::limits::check_size(&format!("graph input '{}'", i.name), shape, i.dtype.size_of())?;
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
        let mut outs = super::infer_op(&node.op, &ins).with_context(ctx)?;
        // Nothing this large is ever allocated: refused here, before folding or execution.
        for (name, f) in node.outputs.iter().zip(&outs) {
            crate::ir::limits::check_size(&format!("output '{name}'"), &f.shape, f.dtype.size_of()).with_context(ctx)?;
        }
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
