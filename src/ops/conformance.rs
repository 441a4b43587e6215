//! The per-family conformance harness (tests only): emit → read round trip of one op at a target
//! opset, and inferred shapes against what libtorch computes. Each family's file runs it on its
//! own ops; `tests/ops.rs` adds ONNX Runtime and tract on written models.

use std::collections::BTreeMap;

use crate::exec::{from_tch, to_tch};
use crate::ir::{Fact, Op, Tensor};
use crate::proto::NodeProto;

/// Emits `op` for `opset` with `inputs` (constant ones given in `consts`), reads the node back,
/// and checks the op is the same and every input means the same (a constant moved into an
/// attribute and back has the same value).
pub fn roundtrip(op: &Op, inputs: &[&str], consts: &[(&str, Tensor)], opset: i64) {
    let consts: BTreeMap<String, Tensor> = consts.iter().map(|(n, t)| (n.to_string(), t.clone())).collect();
    let inputs: Vec<String> = inputs.iter().map(|s| s.to_string()).collect();
    let lookup = |n: &str| consts.get(n).cloned();
    let (attribute, ins) =
        super::emit(op, opset, &inputs, &lookup).unwrap_or_else(|e| panic!("{} at opset {opset}: emit: {e:#}", op.name()));
    let node = NodeProto {
        input: ins.clone(),
        output: vec!["y".into()],
        name: Some("n".into()),
        op_type: Some(op.name().to_string()),
        attribute,
        ..Default::default()
    };
    let (mut read_inputs, mut new) = (ins, BTreeMap::new());
    let back =
        super::parse(&node, opset, &mut read_inputs, &mut new).unwrap_or_else(|e| panic!("{} at opset {opset}: parse: {e:#}", op.name()));
    assert_eq!(&back, op, "{} at opset {opset}: the op read back differs", op.name());
    assert_eq!(read_inputs.len(), inputs.len(), "{} at opset {opset}: inputs {read_inputs:?} vs {inputs:?}", op.name());
    for (got, want) in read_inputs.iter().zip(&inputs) {
        if got == want {
            continue;
        }
        let (g, w) = (new.get(got), consts.get(want));
        assert!(g.is_some() && g == w, "{} at opset {opset}: input '{got}' stands for '{want}' with another value", op.name());
    }
}

/// Infers `op`'s output shapes from `ins` (data inputs by shape, constants by value) and checks
/// them against evaluation on random data.
pub fn shapes_agree(op: &Op, ins: &[Option<Input>]) {
    let facts: Vec<Option<Fact>> = ins
        .iter()
        .map(|i| {
            i.as_ref().map(|i| match i {
                Input::Data(dims) => Fact::new(crate::ir::DType::F32, dims.clone()),
                Input::Const(t) => Fact::konst(t.clone()),
            })
        })
        .collect();
    let refs: Vec<Option<&Fact>> = facts.iter().map(|f| f.as_ref()).collect();
    let inferred = super::infer_op(op, &refs).unwrap_or_else(|e| panic!("{}: infer: {e:#}", op.name()));
    tch::manual_seed(7);
    let values: Vec<Option<tch::Tensor>> = ins
        .iter()
        .map(|i| {
            i.as_ref().map(|i| match i {
                Input::Data(dims) => {
                    tch::Tensor::randn(dims.iter().map(|&d| d as i64).collect::<Vec<_>>(), (tch::Kind::Float, tch::Device::Cpu))
                }
                Input::Const(t) => to_tch(t, tch::Device::Cpu).unwrap(),
            })
        })
        .collect();
    let out = super::eval(op, &values).unwrap_or_else(|e| panic!("{}: eval: {e:#}", op.name()));
    assert_eq!(inferred.len(), out.len(), "{}: output count", op.name());
    for (f, t) in inferred.iter().zip(&out) {
        let t = from_tch(t).unwrap();
        assert_eq!(f.shape, t.dims, "{}: inferred vs evaluated shape", op.name());
        if let Some(v) = &f.value {
            assert_eq!(v, &t, "{}: inferred value vs evaluated", op.name());
        }
    }
}

/// One input of a shape check.
pub enum Input {
    /// Random float data of this shape.
    Data(Vec<usize>),
    /// A known constant.
    Const(Tensor),
}

pub fn data(dims: &[usize]) -> Option<Input> {
    Some(Input::Data(dims.to_vec()))
}

pub fn ints(v: &[i64]) -> Option<Input> {
    Some(Input::Const(Tensor::i64(vec![v.len()], v.to_vec())))
}

pub fn scalar(v: f32) -> Option<Input> {
    Some(Input::Const(Tensor::f32(vec![], vec![v])))
}

/// One node `op(x, consts…)` written at `opset` by dnas's writer, run by dnas (tch), ONNX
/// Runtime and tract on the same input: tch (of the graph read back, and of the IR before it
/// was written) within 1e-5 of ORT, tract within 1e-4, and the inferred output shape equal to
/// what runs. `positive`: feed x in [0.1, 1.1) instead of [−1, 1).
pub fn runtimes_agree(label: &str, op: &Op, consts: &[(&str, Tensor)], x_shape: &[usize], opset: i64, positive: bool) {
    let extra: Vec<(&str, Option<Tensor>)> = consts.iter().map(|(n, t)| (*n, Some(t.clone()))).collect();
    check_runtimes(label, op, &extra, x_shape, opset, positive, true)
}

/// [`runtimes_agree`] with inputs after x that may be absent (`None`: an empty input name);
/// `tract: false` leaves tract out where it is known to read the op differently from ORT (the
/// caller says why; tch is still held to ORT).
pub fn runtimes_agree_with(label: &str, op: &Op, extra: &[(&str, Option<Tensor>)], x_shape: &[usize], opset: i64, tract: bool) {
    check_runtimes(label, op, extra, x_shape, opset, false, tract)
}

fn check_runtimes(label: &str, op: &Op, extra: &[(&str, Option<Tensor>)], x_shape: &[usize], opset: i64, positive: bool, tract: bool) {
    graph_runtimes_agree(label, single_node_with(op, extra, x_shape, opset), x_shape, positive, tract)
}

/// [`runtimes_agree`] for a whole graph `x → … → y` (ops that need more than one node to be
/// fed: Where's condition, Range's scalars).
pub fn graph_runtimes_agree(label: &str, g: crate::ir::Graph, x_shape: &[usize], positive: bool, tract: bool) {
    use crate::validate::{compare::diff, ort_rt::OrtModel, tract_rt::TractModel, Array};
    let opset = g.opset;
    let opts = crate::onnx::WriteOptions { opset, batch_dim: None, ..Default::default() };
    let bytes = crate::onnx::write_model(&g, &opts).unwrap_or_else(|e| panic!("{label}: write: {e:#}"));
    let original = crate::exec::Executor::new(g, tch::Device::Cpu).unwrap_or_else(|e| panic!("{label}: executor: {e:#}"));
    let n: usize = x_shape.iter().product();
    let mut s = 0x9E37_79B9_7F4A_7C15u64;
    let data = (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let u = (s >> 40) as f32 / (1u64 << 24) as f32;
            if positive {
                u + 0.1
            } else {
                u * 2.0 - 1.0
            }
        })
        .collect();
    let x = Array { shape: x_shape.to_vec(), data };
    let read = crate::onnx::read_model(&bytes).unwrap_or_else(|e| panic!("{label}: read back: {e:#}"));
    let exec = crate::exec::Executor::new(read.clone(), tch::Device::Cpu).unwrap_or_else(|e| panic!("{label}: executor: {e:#}"));
    let tch_out = Array::from_tch(&exec.forward(&x.to_tch().unwrap()).unwrap_or_else(|e| panic!("{label}: tch: {e:#}"))).unwrap();
    let facts =
        crate::ops::infer::infer(&read, &[("x".to_string(), x_shape.to_vec())].into()).unwrap_or_else(|e| panic!("{label}: infer: {e:#}"));
    assert_eq!(facts["y"].shape, tch_out.shape, "{label}: inferred vs evaluated shape");
    let ort = OrtModel::new(&bytes, 1)
        .unwrap_or_else(|e| panic!("{label}: ORT session: {e:#}"))
        .run(&x)
        .unwrap_or_else(|e| panic!("{label}: ORT: {e:#}"));
    let e = diff(&tch_out, &ort[0]).unwrap_or_else(|| panic!("{label}: tch {:?} vs ORT {:?}", tch_out.shape, ort[0].shape));
    assert!(e.max_rel <= 1e-5, "{label}: tch vs ORT max rel {:.3e}", e.max_rel);
    // What was written means what the IR meant (the writer may have lowered the op).
    let before = Array::from_tch(&original.forward(&x.to_tch().unwrap()).unwrap_or_else(|e| panic!("{label}: tch: {e:#}"))).unwrap();
    let e = diff(&before, &ort[0]).unwrap_or_else(|| panic!("{label}: IR {:?} vs ORT {:?}", before.shape, ort[0].shape));
    assert!(e.max_rel <= 1e-5, "{label}: the IR before writing vs ORT max rel {:.3e}", e.max_rel);
    if !tract {
        eprintln!("{label}: tract not compared (see the test)");
        return;
    }
    let tract = TractModel::new(&bytes, x_shape).and_then(|m| m.run(&x)).unwrap_or_else(|e| panic!("{label}: tract: {e:#}"));
    let e = diff(&tract[0], &ort[0]).unwrap_or_else(|| panic!("{label}: tract {:?} vs ORT {:?}", tract[0].shape, ort[0].shape));
    assert!(e.max_rel <= 1e-4, "{label}: tract vs ORT max rel {:.3e}", e.max_rel);
}

/// The graph `y = op(x, consts…)` with `x` of `x_shape`.
pub fn single_node(op: &Op, consts: &[(&str, Tensor)], x_shape: &[usize], opset: i64) -> crate::ir::Graph {
    let extra: Vec<(&str, Option<Tensor>)> = consts.iter().map(|(n, t)| (*n, Some(t.clone()))).collect();
    single_node_with(op, &extra, x_shape, opset)
}

/// [`single_node`] with inputs that may be absent (`None`: an empty input name).
pub fn single_node_with(op: &Op, extra: &[(&str, Option<Tensor>)], x_shape: &[usize], opset: i64) -> crate::ir::Graph {
    use crate::ir::{DType, Dim, Graph, Node, ValueInfo};
    let mut inputs = vec!["x".to_string()];
    inputs.extend(extra.iter().map(|(n, t)| if t.is_some() { n.to_string() } else { String::new() }));
    let consts: Vec<(&str, Tensor)> = extra.iter().filter_map(|(n, t)| t.clone().map(|t| (*n, t))).collect();
    // An op with a non-float result (ArgMax, comparisons) is followed by a Cast to float, so
    // every runtime's output compares as floats.
    let facts: Vec<Fact> =
        std::iter::once(Fact::new(DType::F32, x_shape.to_vec())).chain(consts.iter().map(|(_, t)| Fact::konst(t.clone()))).collect();
    let refs: Vec<Option<&Fact>> = facts.iter().map(Some).collect();
    let float_out = super::infer_op(op, &refs).map_or(true, |f| f.first().is_none_or(|f| f.dtype == DType::F32));
    let mut nodes = vec![Node { name: "n0".into(), op: op.clone(), inputs, outputs: vec![if float_out { "y" } else { "y0" }.into()] }];
    if !float_out {
        nodes.push(Node { name: "cast".into(), op: Op::Cast { to: DType::F32 }, inputs: vec!["y0".into()], outputs: vec!["y".into()] });
    }
    Graph {
        name: "conformance".into(),
        inputs: vec![ValueInfo { name: "x".into(), dtype: DType::F32, shape: Some(x_shape.iter().map(|&d| Dim::Fixed(d)).collect()) }],
        outputs: vec![ValueInfo { name: "y".into(), dtype: DType::F32, shape: None }],
        initializers: consts.iter().map(|(n, t)| (n.to_string(), t.clone())).collect(),
        nodes,
        opset,
        metadata: Default::default(),
    }
}
