//! The per-family conformance harness (tests only): emit → read round trip of one op at a target
//! opset, and inferred shapes against what libtorch computes. Each family's file runs it on its
//! own ops; `tests/ops.rs` adds ONNX Runtime and tract on written models.

use std::collections::BTreeMap;

use crate::exec::{from_tch, to_tch};
use crate::ir::{Fact, Op, Tensor};
use crate::onnx::proto::NodeProto;

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
