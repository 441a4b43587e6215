//! Per-op conformance: one-node (or few-node) IR graphs, written by dnas's ONNX writer, run in
//! dnas's tch executor, ONNX Runtime and tract. Grids include asymmetric pads, auto_pad, ceil
//! mode and dilation. This is also the writer's test: ORT and tract read what we write.

mod common;

use std::collections::BTreeMap;

use common::*;
use dnas::ir::*;
use dnas::onnx::{write_model, WriteOptions};

fn rand_tensor(dims: &[usize], seed: u64) -> Tensor {
    Tensor::f32(dims.to_vec(), input(dims, seed).data)
}

/// x → op(x, extra inputs…) → y.
fn single(op: Op, extra: Vec<(&str, Tensor)>, x_shape: &[usize]) -> Graph {
    let mut inputs = vec!["x".to_string()];
    let mut inits = BTreeMap::new();
    for (name, t) in extra {
        inputs.push(name.to_string());
        inits.insert(name.to_string(), t);
    }
    Graph {
        name: "op".into(),
        inputs: vec![ValueInfo { name: "x".into(), dtype: DType::F32, shape: Some(x_shape.iter().map(|&d| Dim::Fixed(d)).collect()) }],
        outputs: vec![ValueInfo { name: "y".into(), dtype: DType::F32, shape: None }],
        initializers: inits,
        nodes: vec![Node { name: "n0".into(), op, inputs, outputs: vec!["y".into()] }],
        opset: 17,
        metadata: Default::default(),
    }
}

fn check(label: &str, g: Graph, x_shape: &[usize], with_tract: bool) {
    let bytes =
        write_model(&g, &WriteOptions { batch_dim: None, ..Default::default() }).unwrap_or_else(|e| panic!("{label}: write: {e:#}"));
    let x = input(x_shape, 11);
    let ort = run_ort(&bytes, &x);
    let tch = run_tch(&bytes, &x);
    let e = d(&tch, &ort);
    assert!(e.max_rel <= 1e-5, "{label}: tch vs ORT max rel {:.3e}", e.max_rel);
    // Shape inference agrees with what runs.
    let facts = dnas::exec::infer(&g, &[("x".to_string(), x_shape.to_vec())].into()).unwrap();
    assert_eq!(facts["y"].shape, tch.shape, "{label}: inferred shape");
    if with_tract {
        let e = d(&run_tract(&bytes, &x), &ort);
        assert!(e.max_rel <= 1e-4, "{label}: tract vs ORT max rel {:.3e}", e.max_rel);
    }
}

#[test]
fn conv_grid() {
    let x = [1, 4, 9, 10];
    let cases: Vec<(&str, ConvAttrs, usize)> = vec![
        ("plain", ConvAttrs { group: 1, ..Default::default() }, 1),
        ("asym pads stride 2", ConvAttrs { strides: vec![2, 2], pads: vec![0, 1, 2, 1], group: 1, ..Default::default() }, 1),
        ("dilation 2", ConvAttrs { dilations: vec![2, 2], pads: vec![2, 2, 2, 2], group: 1, ..Default::default() }, 1),
        ("depthwise", ConvAttrs { group: 4, pads: vec![1, 1, 1, 1], ..Default::default() }, 4),
        ("SAME_UPPER s2", ConvAttrs { strides: vec![2, 2], auto_pad: AutoPad::SameUpper, group: 1, ..Default::default() }, 1),
        ("SAME_LOWER s2", ConvAttrs { strides: vec![2, 2], auto_pad: AutoPad::SameLower, group: 1, ..Default::default() }, 1),
        ("VALID", ConvAttrs { auto_pad: AutoPad::Valid, group: 2, ..Default::default() }, 2),
    ];
    for (label, attrs, groups) in cases {
        let w = rand_tensor(&[8, 4 / groups, 3, 3], 1);
        let b = rand_tensor(&[8], 2);
        check(label, single(Op::Conv(attrs), vec![("w", w), ("b", b)], &x), &x, true);
    }
}

#[test]
fn pooling_grid() {
    let x = [1, 3, 11, 12];
    let pool = |k: usize, s: usize, pads: Vec<usize>, ceil: bool, cip: bool| PoolAttrs {
        kernel_shape: vec![k, k],
        strides: vec![s, s],
        pads,
        ceil_mode: ceil,
        count_include_pad: cip,
        ..Default::default()
    };
    check("maxpool asym", single(Op::MaxPool(pool(3, 2, vec![0, 1, 1, 0], false, false)), vec![], &x), &x, true);
    check("maxpool ceil", single(Op::MaxPool(pool(3, 2, vec![1, 1, 1, 1], true, false)), vec![], &x), &x, true);
    check("avgpool excl pad", single(Op::AveragePool(pool(3, 2, vec![1, 1, 1, 1], false, false)), vec![], &x), &x, true);
    check("avgpool incl pad", single(Op::AveragePool(pool(2, 2, vec![1, 1, 1, 1], false, true)), vec![], &x), &x, true);
    check("global avg", single(Op::GlobalAveragePool, vec![], &x), &x, true);
}

#[test]
fn batchnorm_and_activations() {
    let x = [2, 5, 4, 4];
    let p = |s| rand_tensor(&[5], s);
    let var = Tensor::f32(vec![5], vec![0.5, 1.0, 1.5, 2.0, 0.25]);
    check("bn", single(Op::BatchNormalization { epsilon: 1e-3 }, vec![("g", p(1)), ("b", p(2)), ("m", p(3)), ("v", var)], &x), &x, true);
    for (label, op) in [
        ("relu", Op::Relu),
        ("sigmoid", Op::Sigmoid),
        ("hardswish", Op::HardSwish),
        ("hardsigmoid", Op::HardSigmoid { alpha: 0.2, beta: 0.5 }),
        ("softmax last", Op::Softmax { axis: -1, legacy: false }),
        ("softmax axis1", Op::Softmax { axis: 1, legacy: false }),
        ("identity", Op::Identity),
    ] {
        check(label, single(op, vec![], &x), &x, true);
    }
    let lo = Tensor::f32(vec![], vec![-0.25]);
    let hi = Tensor::f32(vec![], vec![0.5]);
    check("clip", single(Op::Clip, vec![("lo", lo), ("hi", hi)], &x), &x, true);
}

#[test]
fn elementwise_and_linear() {
    let x = [2, 3, 4];
    for (label, op) in [("add", Op::Add), ("sub", Op::Sub), ("mul", Op::Mul), ("div", Op::Div)] {
        let other = Tensor::f32(vec![4], vec![1.5, -2.0, 0.75, 3.0]);
        check(label, single(op, vec![("c", other)], &x), &x, true);
    }
    check("matmul", single(Op::MatMul, vec![("w", rand_tensor(&[4, 6], 3))], &x), &x, true);
    let x2 = [3, 5];
    let gemm = Op::Gemm { alpha: 0.5, beta: 2.0, trans_a: false, trans_b: true };
    check("gemm transB", single(gemm, vec![("w", rand_tensor(&[7, 5], 4)), ("c", rand_tensor(&[7], 5))], &x2), &x2, true);
    let gemm = Op::Gemm { alpha: 1.0, beta: 1.0, trans_a: true, trans_b: false };
    check("gemm transA", single(gemm, vec![("w", rand_tensor(&[3, 2], 6))], &x2), &x2, true);
}

#[test]
fn shape_ops() {
    let x = [2, 3, 1, 4];
    let ints = |v: Vec<i64>| Tensor::i64(vec![v.len()], v);
    check("reduce mean", single(Op::ReduceMean { axes: Some(vec![2, 3]), keepdims: true }, vec![], &x), &x, true);
    check("reduce mean drop", single(Op::ReduceMean { axes: Some(vec![-1]), keepdims: false }, vec![], &x), &x, true);
    check("transpose", single(Op::Transpose { perm: Some(vec![0, 3, 1, 2]) }, vec![], &x), &x, true);
    check("flatten", single(Op::Flatten { axis: 2 }, vec![], &x), &x, true);
    check("reshape", single(Op::Reshape { allowzero: false }, vec![("s", ints(vec![0, -1, 2]))], &x), &x, true);
    check("squeeze", single(Op::Squeeze, vec![("a", ints(vec![2]))], &x), &x, true);
    check("unsqueeze", single(Op::Unsqueeze, vec![("a", ints(vec![0, -1]))], &x), &x, true);
    check("gather", single(Op::Gather { axis: 1 }, vec![("i", ints(vec![2, 0, -1]))], &x), &x, true);
    check(
        "slice reverse",
        single(Op::Slice, vec![("s", ints(vec![-1])), ("e", ints(vec![i64::MIN])), ("a", ints(vec![3])), ("t", ints(vec![-1]))], &x),
        &x,
        true,
    );
    let xp = [1, 2, 5, 6];
    for mode in [PadMode::Constant, PadMode::Reflect, PadMode::Edge] {
        let pads = ints(vec![0, 0, 1, 2, 0, 0, 2, 1]);
        check(mode.onnx_name(), single(Op::Pad { mode }, vec![("p", pads)], &xp), &xp, true);
    }
}

#[test]
fn concat_of_two_branches_and_shape_subgraph() {
    // y = Concat(relu(x), Reshape(x, Concat(Shape(x)[0:1], [-1, 5, 6])))
    let x = [2, 3, 5, 6];
    let ints = |v: Vec<i64>| Tensor::i64(vec![v.len()], v);
    let mut g = single(Op::Relu, vec![], &x);
    g.nodes[0].outputs = vec!["r".into()];
    g.initializers.insert("rest".into(), ints(vec![-1, 5, 6]));
    g.initializers.insert("zero".into(), ints(vec![0]));
    let n = |name: &str, op: Op, ins: &[&str], out: &str| Node {
        name: name.into(),
        op,
        inputs: ins.iter().map(|s| s.to_string()).collect(),
        outputs: vec![out.into()],
    };
    g.nodes.push(n("shape", Op::Shape { start: 0, end: None }, &["x"], "s"));
    g.nodes.push(n("gather", Op::Gather { axis: 0 }, &["s", "zero"], "b"));
    g.nodes.push(n("cat", Op::Concat { axis: 0 }, &["b", "rest"], "spec"));
    g.nodes.push(n("reshape", Op::Reshape { allowzero: false }, &["x", "spec"], "xr"));
    g.nodes.push(n("out", Op::Concat { axis: 1 }, &["r", "xr"], "y"));
    check("concat + shape subgraph", g, &x, true);
}
