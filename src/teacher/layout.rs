//! A teacher as training sees it: an NCHW image input and any batch. Models other exporters wrote
//! (TensorFlow converters above all) take NHWC images and often fix the batch to 1; the search,
//! retraining with KD and the studies feed NCHW batches of many images. [`for_training`] makes
//! such a teacher take them, in the graph itself, so every consumer (cuts, shape inference, the
//! executor, the run directory's costs) sees one convention:
//! - NHWC input ([`InputConvention::of`]): the input becomes `<name>_nchw` [N, C, H, W] and a
//!   Transpose (perm 0,2,3,1) in front of the first node produces the old NHWC value, so every
//!   node and every cut keeps its name. A converter's own Transpose right behind it (NHWC → NCHW)
//!   then cancels it exactly.
//! - a fixed batch: made symbolic where shape inference at batch 2 proves the graph
//!   batch-agnostic; a graph that bakes its batch into a Reshape keeps it, and the executor runs
//!   larger batches through it in chunks of that size ([`crate::exec::Executor::run`]).

use anyhow::Result;

use super::input::InputConvention;
use crate::ir::{fixed_input_shapes, Dim, Graph, Node, Op, ValueInfo};

/// What [`for_training`] changed (printed once where a run is created).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Adapted {
    pub nhwc: bool,
    pub fixed_batch: Option<usize>,
    /// The batch is baked into the graph, so it stays fixed and batches run in chunks of it.
    pub chunked: bool,
}

impl Adapted {
    pub fn describe(&self) -> Option<String> {
        let mut parts = Vec::new();
        if self.nhwc {
            parts.push("its NHWC input is fed NCHW images through a Transpose".to_string());
        }
        match (self.fixed_batch, self.chunked) {
            (Some(b), false) => parts.push(format!("its fixed batch of {b} is made symbolic (checked batch-agnostic)")),
            (Some(b), true) => parts.push(format!(
                "its fixed batch of {b} is baked into the graph, so batches run through it {b} image{} at a time (slower)",
                if b == 1 { "" } else { "s" }
            )),
            (None, _) => {}
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }
}

/// Where `nhwc` (= Transpose(`nchw`, `perm`)) feeds Transposes that undo it, their consumers read
/// `nchw` directly and those Transposes go; the first goes too when nothing else reads it. The
/// NHWC value then no longer exists, so it cannot be taken for a cut.
fn cancel_inverse_transposes(g: &mut Graph, nchw: &str, nhwc: &str, perm: &[i64]) {
    let undoes = |n: &Node| match &n.op {
        Op::Transpose { perm: Some(p) } if p.len() == perm.len() && n.inputs.first().map(String::as_str) == Some(nhwc) => {
            p.iter().enumerate().all(|(j, &pj)| usize::try_from(pj).ok().and_then(|k| perm.get(k)) == Some(&(j as i64)))
        }
        _ => false,
    };
    let undone: Vec<String> = g.nodes.iter().filter(|n| undoes(n)).map(|n| n.outputs[0].clone()).collect();
    if undone.is_empty() {
        return;
    }
    g.nodes.retain(|n| !undoes(n));
    let rename = |v: &mut String| {
        if undone.contains(v) {
            *v = nchw.to_string();
        }
    };
    for n in &mut g.nodes {
        n.inputs.iter_mut().for_each(rename);
    }
    for o in &mut g.outputs {
        rename(&mut o.name);
    }
    if !g.nodes.iter().any(|n| n.inputs.iter().any(|i| i == nhwc)) && !g.outputs.iter().any(|o| o.name == nhwc) {
        g.nodes.retain(|n| n.outputs.first().map(String::as_str) != Some(nhwc));
    }
}

/// `g` with an NCHW input that takes any batch (see the module docs); `what` names the model in errors.
pub fn for_training(g: Graph, what: &str) -> Result<Graph> {
    Ok(adapt(g, what)?.0)
}

/// [`for_training`], also saying what it changed.
pub fn adapt(mut g: Graph, what: &str) -> Result<(Graph, Adapted)> {
    let conv = InputConvention::of(&g);
    let mut done = Adapted::default();
    let Some(input) = g.data_inputs().next().map(|i| i.name.clone()) else { return Ok((g, done)) };
    let k = g.inputs.iter().position(|i| i.name == input).expect("a data input is a graph input");
    if conv.nhwc {
        let dims = g.inputs[k].shape.clone().unwrap_or_default();
        let mut name = format!("{input}_nchw");
        while g.producers().contains_key(name.as_str()) || g.inputs.iter().any(|i| i.name == name) {
            name.push('_');
        }
        let node = format!("dnas_nchw_to_nhwc_{input}");
        g.inputs[k] = ValueInfo {
            name: name.clone(),
            dtype: g.inputs[k].dtype,
            shape: Some(vec![dims[0].clone(), dims[3].clone(), dims[1].clone(), dims[2].clone()]),
        };
        g.nodes.insert(
            0,
            Node {
                name: node,
                op: Op::Transpose { perm: Some(vec![0, 2, 3, 1]) },
                inputs: vec![name.clone()],
                outputs: vec![input.clone()],
            },
        );
        cancel_inverse_transposes(&mut g, &name, &input, &[0, 2, 3, 1]);
        done.nhwc = true;
    }
    if let Some(b) = conv.fixed_batch {
        let sym = || Dim::Sym("N".into());
        if let Some(d) = g.inputs[k].shape.as_mut().and_then(|s| s.first_mut()) {
            *d = sym();
        }
        let before = g.outputs.clone();
        for o in &mut g.outputs {
            if let Some(d) = o.shape.as_mut().and_then(|s| s.first_mut()) {
                if *d == Dim::Fixed(b) {
                    *d = sym();
                }
            }
        }
        // Batch-agnostic if shape inference at a batch of 2 gives every output that batch.
        let agnostic = fixed_input_shapes(&g, 2).and_then(|s| crate::ops::infer::infer(&g, &s)).is_ok_and(|facts| {
            before.iter().all(|o| {
                !matches!(o.shape.as_deref(), Some([Dim::Fixed(v), ..]) if *v == b)
                    || facts.get(&o.name).and_then(|f| f.shape.first().copied()) == Some(2)
            })
        });
        if !agnostic {
            // The batch is baked into the graph (e.g. a Reshape to [1, C, 1, 1]): keep it; the
            // executor runs larger batches through it in chunks of its size.
            g.inputs[k].shape.as_mut().expect("a fixed batch is a declared dim")[0] = Dim::Fixed(b);
            g.outputs = before;
            done.chunked = true;
        }
        done.fixed_batch = Some(b);
    }
    g.check().map_err(|e| anyhow::anyhow!("{what}, its input adapted for training: {e:#}"))?;
    Ok((g, done))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::Tensor;

    /// The shipped teacher behind an NHWC input of fixed batch 1 (a Transpose NHWC → NCHW in front,
    /// as converters write it); `bake`: its logits reshaped to [1, 10] as well.
    fn nhwc(bake: bool) -> (Graph, Graph) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/fmnist_teacher.onnx");
        let orig = crate::onnx::read_file(&path).unwrap();
        let mut g = orig.clone();
        let input = g.inputs[0].name.clone();
        g.nodes.insert(
            0,
            Node {
                name: "to_nchw".into(),
                op: Op::Transpose { perm: Some(vec![0, 3, 1, 2]) },
                inputs: vec!["x_nhwc".into()],
                outputs: vec![input],
            },
        );
        g.inputs[0].name = "x_nhwc".into();
        g.inputs[0].shape = Some([1, 28, 28, 1].map(Dim::Fixed).to_vec());
        if bake {
            let out = g.outputs[0].name.clone();
            g.nodes.last_mut().unwrap().outputs[0] = "pre".into();
            g.initializers.insert("shape".into(), Tensor::i64(vec![2], vec![1, 10]));
            g.nodes.push(Node {
                name: "bake".into(),
                op: Op::Reshape { allowzero: false },
                inputs: vec!["pre".into(), "shape".into()],
                outputs: vec![out],
            });
        }
        g.outputs[0].shape = Some(vec![Dim::Fixed(1), Dim::Fixed(10)]);
        (orig, g)
    }

    fn logits(g: Graph, x: &tch::Tensor) -> tch::Tensor {
        crate::exec::Executor::new(g, tch::Device::Cpu).unwrap().forward(x).unwrap()
    }

    #[test]
    fn an_nhwc_fixed_batch_teacher_takes_nchw_batches() {
        let x = tch::Tensor::randn([5, 1, 28, 28], (tch::Kind::Float, tch::Device::Cpu));
        for bake in [false, true] {
            let (orig, g) = nhwc(bake);
            let (a, done) = adapt(g, "t").unwrap();
            assert_eq!(done, Adapted { nhwc: true, fixed_batch: Some(1), chunked: bake });
            // The converter's Transpose and the inserted one cancel: no NHWC value is left.
            assert!(!a.nodes.iter().any(|n| matches!(n.op, Op::Transpose { .. })), "{:?}", a.nodes.first());
            let want = logits(orig, &x);
            let got = logits(a, &x);
            assert_eq!(got.size(), [5, 10]);
            let d = (&got - &want).abs().max().double_value(&[]);
            // Batch-agnostic: the very same computation; chunks of 1: other kernels, float rounding.
            assert!(if bake { d < 1e-5 } else { d == 0.0 }, "bake {bake}: differs by {d:e}");
        }
    }
}
