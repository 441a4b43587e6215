//! The hostile corpus: malformed and malicious ONNX files, generated here, each given to
//! `dnas teacher inspect` (import → graph checks → shape inference → cost). Every case must exit
//! with code 2 and an error that names the file and the node (or field) at fault: no panic, no
//! abort, no silent acceptance — and no process may grow past the tensor size cap, which the test
//! lowers to 64 MiB so that a case that allocates what it declares would be caught.
//!
//! The same files seed the fuzz targets (`tools/fuzz.sh` writes them through `write_corpus`).

use std::path::Path;
use std::process::Command;

use dnas::onnx::proto::{
    attribute_proto::AttributeType, type_proto, AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto,
};
use prost::Message;

const CAP_BYTES: u64 = 64 << 20;

fn vi(name: &str, dims: &[i64]) -> ValueInfoProto {
    use dnas::onnx::proto::tensor_shape_proto::{dimension::Value, Dimension};
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(1),
                shape: Some(TensorShapeProto {
                    dim: dims.iter().map(|&d| Dimension { value: Some(Value::DimValue(d)), denotation: None }).collect(),
                }),
            })),
            denotation: None,
        }),
        doc_string: None,
    }
}

/// A float tensor value with no declared shape (outputs: dnas infers them).
fn untyped_shape(name: &str) -> ValueInfoProto {
    let mut v = vi(name, &[]);
    if let Some(type_proto::Value::TensorType(t)) = v.r#type.as_mut().and_then(|t| t.value.as_mut()) {
        t.shape = None;
    }
    v
}

fn node(name: &str, op: &str, ins: &[&str], outs: &[&str], attrs: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        name: Some(name.into()),
        op_type: Some(op.into()),
        input: ins.iter().map(|s| s.to_string()).collect(),
        output: outs.iter().map(|s| s.to_string()).collect(),
        attribute: attrs,
        ..Default::default()
    }
}

fn attr(name: &str, t: AttributeType) -> AttributeProto {
    AttributeProto { name: Some(name.into()), r#type: Some(t as i32), ..Default::default() }
}
fn int(name: &str, v: i64) -> AttributeProto {
    AttributeProto { i: Some(v), ..attr(name, AttributeType::Int) }
}
fn ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto { ints: v.to_vec(), ..attr(name, AttributeType::Ints) }
}
fn float(name: &str, v: f32) -> AttributeProto {
    AttributeProto { f: Some(v), ..attr(name, AttributeType::Float) }
}
fn string(name: &str, v: &str) -> AttributeProto {
    AttributeProto { s: Some(v.as_bytes().to_vec()), ..attr(name, AttributeType::String) }
}
fn tensor_attr(name: &str, t: TensorProto) -> AttributeProto {
    AttributeProto { t: Some(t), ..attr(name, AttributeType::Tensor) }
}

fn i64s(name: &str, dims: &[i64], v: &[i64]) -> TensorProto {
    TensorProto {
        name: Some(name.into()),
        dims: dims.to_vec(),
        data_type: Some(7),
        raw_data: Some(v.iter().flat_map(|x| x.to_le_bytes()).collect()),
        ..Default::default()
    }
}
fn f32s(name: &str, dims: &[i64], v: &[f32]) -> TensorProto {
    TensorProto {
        name: Some(name.into()),
        dims: dims.to_vec(),
        data_type: Some(1),
        raw_data: Some(v.iter().flat_map(|x| x.to_le_bytes()).collect()),
        ..Default::default()
    }
}
fn zeros(name: &str, dims: &[i64]) -> TensorProto {
    f32s(name, dims, &vec![0.0; dims.iter().product::<i64>() as usize])
}

struct Spec {
    opset: Option<i64>,
    input: Vec<i64>,
    nodes: Vec<NodeProto>,
    inits: Vec<TensorProto>,
    outputs: Vec<&'static str>,
}

impl Spec {
    fn new(nodes: Vec<NodeProto>, inits: Vec<TensorProto>, output: &'static str) -> Spec {
        Spec { opset: Some(17), input: vec![1, 3, 8, 8], nodes, inits, outputs: vec![output] }
    }
    fn bytes(self) -> Vec<u8> {
        ModelProto {
            ir_version: Some(8),
            opset_import: self.opset.map(|v| OperatorSetIdProto { domain: Some(String::new()), version: Some(v) }).into_iter().collect(),
            graph: Some(GraphProto {
                node: self.nodes,
                name: Some("hostile".into()),
                initializer: self.inits,
                input: vec![vi("x", &self.input)],
                output: self.outputs.iter().map(|o| untyped_shape(o)).collect(),
                ..Default::default()
            }),
            ..Default::default()
        }
        .encode_to_vec()
    }
}

/// One hostile file: its name, bytes, and what the error must mention besides the file.
struct Case {
    name: &'static str,
    bytes: Vec<u8>,
    needles: &'static [&'static str],
}

fn case(name: &'static str, spec: Spec, needles: &'static [&'static str]) -> Case {
    Case { name, bytes: spec.bytes(), needles }
}

fn one(n: NodeProto, inits: Vec<TensorProto>) -> Spec {
    let out: &'static str = Box::leak(n.output.first().cloned().unwrap_or_else(|| "y".into()).into_boxed_str());
    Spec::new(vec![n], inits, out)
}

const G30: i64 = 1 << 30;
const G32: i64 = 1 << 32;
const G40: i64 = 1 << 40;

fn cases() -> Vec<Case> {
    let w = || zeros("w", &[4, 3, 3, 3]);
    let conv = |attrs: Vec<AttributeProto>| one(node("conv_h", "Conv", &["x", "w"], &["y"], attrs), vec![w()]);
    let mut v = vec![
        // Constants.
        case(
            "constant_without_output.onnx",
            Spec::new(
                vec![
                    node("const_h", "Constant", &[], &[], vec![tensor_attr("value", f32s("", &[1], &[1.0]))]),
                    node("relu", "Relu", &["x"], &["y"], vec![]),
                ],
                vec![],
                "y",
            ),
            &["const_h", "output"],
        ),
        case(
            "constant_without_value.onnx",
            Spec::new(vec![node("const_h", "Constant", &[], &["c"], vec![]), node("add", "Add", &["x", "c"], &["y"], vec![])], vec![], "y"),
            &["const_h", "value"],
        ),
        case(
            "constant_of_shape_empty_value.onnx",
            one(
                node("cos_h", "ConstantOfShape", &["s"], &["y"], vec![tensor_attr("value", f32s("", &[1], &[]))]),
                vec![i64s("s", &[2], &[1, 3])],
            ),
            &["cos_h", "value"],
        ),
        case(
            "constant_of_shape_no_element.onnx",
            one(
                node("cos_h", "ConstantOfShape", &["s"], &["y"], vec![tensor_attr("value", f32s("", &[0], &[]))]),
                vec![i64s("s", &[2], &[1, 3])],
            ),
            &["cos_h", "value"],
        ),
        case(
            "constant_of_shape_overflow.onnx",
            one(node("cos_h", "ConstantOfShape", &["s"], &["y"], vec![]), vec![i64s("s", &[3], &[G32, G32, G32])]),
            &["cos_h"],
        ),
        case(
            "constant_of_shape_2p60.onnx",
            one(node("cos_h", "ConstantOfShape", &["s"], &["y"], vec![]), vec![i64s("s", &[2], &[G30, G30])]),
            &["cos_h", "cap"],
        ),
        case(
            "constant_of_shape_above_cap.onnx",
            one(node("cos_h", "ConstantOfShape", &["s"], &["y"], vec![]), vec![i64s("s", &[1], &[1 << 25])]),
            &["cos_h", "cap"],
        ),
        case(
            "constant_of_shape_negative.onnx",
            one(node("cos_h", "ConstantOfShape", &["s"], &["y"], vec![]), vec![i64s("s", &[2], &[-4, 4])]),
            &["cos_h"],
        ),
        // Reshape / Expand / Tile / Range / Resize / Pad to enormous shapes.
        case(
            "reshape_overflow.onnx",
            one(node("rs_h", "Reshape", &["x", "s"], &["y"], vec![]), vec![i64s("s", &[3], &[G32, G32, G32])]),
            &["rs_h"],
        ),
        case(
            "reshape_2p60.onnx",
            one(node("rs_h", "Reshape", &["x", "s"], &["y"], vec![]), vec![i64s("s", &[3], &[1 << 60, 0, -1])]),
            &["rs_h"],
        ),
        case(
            "expand_huge.onnx",
            one(node("ex_h", "Expand", &["x", "s"], &["y"], vec![]), vec![i64s("s", &[4], &[G40, 3, 8, 8])]),
            &["ex_h"],
        ),
        case(
            "tile_huge.onnx",
            one(node("tile_h", "Tile", &["x", "r"], &["y"], vec![]), vec![i64s("r", &[4], &[G30, G30, 1, 1])]),
            &["tile_h"],
        ),
        case(
            "range_huge.onnx",
            one(
                node("range_h", "Range", &["a", "b", "d"], &["y"], vec![]),
                vec![i64s("a", &[], &[0]), i64s("b", &[], &[1 << 60]), i64s("d", &[], &[1])],
            ),
            &["range_h"],
        ),
        case(
            "range_delta_zero.onnx",
            one(
                node("range_h", "Range", &["a", "b", "d"], &["y"], vec![]),
                vec![i64s("a", &[], &[0]), i64s("b", &[], &[10]), i64s("d", &[], &[0])],
            ),
            &["range_h", "delta"],
        ),
        case(
            "resize_scales_huge.onnx",
            one(
                node(
                    "rz_h",
                    "Resize",
                    &["x", "", "sc"],
                    &["y"],
                    vec![string("coordinate_transformation_mode", "asymmetric"), string("nearest_mode", "floor")],
                ),
                vec![f32s("sc", &[4], &[1.0, 1.0, 1e9, 1e9])],
            ),
            &["rz_h"],
        ),
        case(
            "pad_2p40.onnx",
            one(node("pad_h", "Pad", &["x", "p"], &["y"], vec![]), vec![i64s("p", &[8], &[0, 0, G40, G40, 0, 0, G40, G40])]),
            &["pad_h"],
        ),
        case(
            "pad_overflow.onnx",
            one(node("pad_h", "Pad", &["x", "p"], &["y"], vec![]), vec![i64s("p", &[8], &[0, 0, i64::MAX, 0, 0, 0, i64::MAX, 0])]),
            &["pad_h"],
        ),
        case(
            "pad_negative_beyond.onnx",
            one(node("pad_h", "Pad", &["x", "p"], &["y"], vec![]), vec![i64s("p", &[8], &[0, 0, -100, 0, 0, 0, 0, 0])]),
            &["pad_h"],
        ),
        // Initializers.
        case(
            "initializer_dims_overflow.onnx",
            one(
                node("add_h", "Add", &["x", "w"], &["y"], vec![]),
                vec![TensorProto { dims: vec![G32, G32, G32], ..f32s("w", &[], &[1.0]) }],
            ),
            &["'w'"],
        ),
        case(
            "initializer_huge_without_data.onnx",
            one(
                node("add_h", "Add", &["x", "w"], &["y"], vec![]),
                vec![TensorProto { name: Some("w".into()), dims: vec![1 << 20, 1 << 20], data_type: Some(1), ..Default::default() }],
            ),
            &["'w'"],
        ),
        case(
            "initializer_negative_dim.onnx",
            one(node("add_h", "Add", &["x", "w"], &["y"], vec![]), vec![TensorProto { dims: vec![-3], ..f32s("w", &[], &[1.0]) }]),
            &["'w'", "negative"],
        ),
        case(
            "initializer_raw_length.onnx",
            one(
                node("add_h", "Add", &["x", "w"], &["y"], vec![]),
                vec![TensorProto { raw_data: Some(vec![0; 5]), ..f32s("w", &[3], &[0.0; 3]) }],
            ),
            &["'w'"],
        ),
        case(
            "initializer_string_type.onnx",
            one(node("add_h", "Add", &["x", "w"], &["y"], vec![]), vec![TensorProto { data_type: Some(8), ..f32s("w", &[1], &[0.0]) }]),
            &["'w'", "element type"],
        ),
        case(
            "initializer_duplicate.onnx",
            one(node("add_h", "Add", &["x", "w"], &["y"], vec![]), vec![f32s("w", &[1], &[1.0]), f32s("w", &[1], &[2.0])]),
            &["'w'", "twice"],
        ),
        // Pools and convolutions with impossible attributes.
        case(
            "maxpool_kernel_zero.onnx",
            one(node("mp_h", "MaxPool", &["x"], &["y"], vec![ints("kernel_shape", &[0, 0])]), vec![]),
            &["mp_h", "kernel"],
        ),
        case(
            "maxpool_kernel_larger_than_input.onnx",
            one(node("mp_h", "MaxPool", &["x"], &["y"], vec![ints("kernel_shape", &[9, 9])]), vec![]),
            &["mp_h"],
        ),
        case(
            "maxpool_stride_zero.onnx",
            one(node("mp_h", "MaxPool", &["x"], &["y"], vec![ints("kernel_shape", &[2, 2]), ints("strides", &[0, 0])]), vec![]),
            &["mp_h", "stride"],
        ),
        case("conv_stride_zero.onnx", conv(vec![ints("strides", &[0, 0])]), &["conv_h", "stride"]),
        case("conv_dilation_zero.onnx", conv(vec![ints("dilations", &[0, 0])]), &["conv_h", "dilation"]),
        case("conv_group_zero.onnx", conv(vec![int("group", 0)]), &["conv_h", "group"]),
        case("conv_pads_negative.onnx", conv(vec![ints("pads", &[-5, -5, -5, -5])]), &["conv_h", "pad"]),
        case("conv_pads_huge.onnx", conv(vec![ints("pads", &[G40, G40, G40, G40])]), &["conv_h"]),
        case("conv_weight_rank_one.onnx", one(node("conv_h", "Conv", &["x", "w"], &["y"], vec![]), vec![zeros("w", &[4])]), &["conv_h"]),
        case(
            "conv_transpose_strides_huge.onnx",
            one(
                node("convt_h", "ConvTranspose", &["x", "wt"], &["y"], vec![ints("strides", &[G30, G30])]),
                vec![zeros("wt", &[3, 2, 3, 3])],
            ),
            &["convt_h"],
        ),
        case(
            "input_declared_huge.onnx",
            Spec { input: vec![1, 3, G30, G30], ..Spec::new(vec![node("relu", "Relu", &["x"], &["y"], vec![])], vec![], "y") },
            &["'x'", "cap"],
        ),
        case("conv_kernel_shape_float.onnx", conv(vec![float("kernel_shape", 3.0)]), &["conv_h", "kernel_shape"]),
        // Graph structure.
        case(
            "two_producers.onnx",
            Spec::new(vec![node("relu_h", "Relu", &["x"], &["y"], vec![]), node("sig_h", "Sigmoid", &["x"], &["y"], vec![])], vec![], "y"),
            &["'y'", "relu_h", "sig_h"],
        ),
        case(
            "produces_the_graph_input.onnx",
            Spec::new(vec![node("relu_h", "Relu", &["x"], &["x"], vec![])], vec![], "x"),
            &["'x'", "relu_h"],
        ),
        case(
            "no_outputs.onnx",
            Spec { outputs: vec![], ..Spec::new(vec![node("relu", "Relu", &["x"], &["y"], vec![])], vec![], "y") },
            &["no output"],
        ),
        case("output_not_produced.onnx", Spec::new(vec![node("relu", "Relu", &["x"], &["y"], vec![])], vec![], "ghost"), &["'ghost'"]),
        case(
            "opset_99.onnx",
            Spec { opset: Some(99), ..Spec::new(vec![node("relu", "Relu", &["x"], &["y"], vec![])], vec![], "y") },
            &["99"],
        ),
        case(
            "opset_zero.onnx",
            Spec { opset: Some(0), ..Spec::new(vec![node("relu", "Relu", &["x"], &["y"], vec![])], vec![], "y") },
            &["opset"],
        ),
        case(
            "opset_missing.onnx",
            Spec { opset: None, ..Spec::new(vec![node("relu", "Relu", &["x"], &["y"], vec![])], vec![], "y") },
            &["opset"],
        ),
        case("empty_op_type.onnx", one(node("blank_h", "", &["x"], &["y"], vec![]), vec![]), &["blank_h"]),
        // Axes, permutations, sizes out of range.
        case(
            "slice_step_zero.onnx",
            {
                let inits = vec![i64s("st", &[1], &[0]), i64s("en", &[1], &[4]), i64s("ax", &[1], &[2]), i64s("sp", &[1], &[0])];
                one(node("slice_h", "Slice", &["x", "st", "en", "ax", "sp"], &["y"], vec![]), inits)
            },
            &["slice_h", "step"],
        ),
        case(
            "gather_index_out_of_range.onnx",
            Spec::new(
                vec![node("shape", "Shape", &["x"], &["s"], vec![]), node("gather_h", "Gather", &["s", "i"], &["y"], vec![int("axis", 0)])],
                vec![i64s("i", &[1], &[10])],
                "y",
            ),
            &["gather_h"],
        ),
        case(
            "concat_axis_out_of_range.onnx",
            one(node("cat_h", "Concat", &["x", "x"], &["y"], vec![int("axis", 7)]), vec![]),
            &["cat_h", "axis"],
        ),
        case(
            "transpose_repeated_axis.onnx",
            one(node("tr_h", "Transpose", &["x"], &["y"], vec![ints("perm", &[0, 0, 1, 2])]), vec![]),
            &["tr_h", "perm"],
        ),
        case(
            "split_sizes_do_not_sum.onnx",
            Spec::new(
                vec![node("split_h", "Split", &["x", "sz"], &["a", "b"], vec![int("axis", 1)])],
                vec![i64s("sz", &[2], &[1, 1])],
                "a",
            ),
            &["split_h"],
        ),
        case(
            "flatten_axis_out_of_range.onnx",
            one(node("fl_h", "Flatten", &["x"], &["y"], vec![int("axis", 9)]), vec![]),
            &["fl_h", "axis"],
        ),
        case(
            "softmax_axis_out_of_range.onnx",
            one(node("sm_h", "Softmax", &["x"], &["y"], vec![int("axis", 5)]), vec![]),
            &["sm_h", "axis"],
        ),
        case(
            "squeeze_axis_not_one.onnx",
            one(node("sq_h", "Squeeze", &["x", "ax"], &["y"], vec![]), vec![i64s("ax", &[1], &[1])]),
            &["sq_h"],
        ),
        case(
            "unsqueeze_repeated_axis.onnx",
            one(node("usq_h", "Unsqueeze", &["x", "ax"], &["y"], vec![]), vec![i64s("ax", &[2], &[0, 0])]),
            &["usq_h"],
        ),
        case(
            "depth_to_space_blocksize_zero.onnx",
            one(node("d2s_h", "DepthToSpace", &["x"], &["y"], vec![int("blocksize", 0)]), vec![]),
            &["d2s_h", "blocksize"],
        ),
        case("lrn_size_zero.onnx", one(node("lrn_h", "LRN", &["x"], &["y"], vec![int("size", 0)]), vec![]), &["lrn_h", "size"]),
        case("cast_to_unknown_type.onnx", one(node("cast_h", "Cast", &["x"], &["y"], vec![int("to", 99)]), vec![]), &["cast_h"]),
        case(
            "batchnorm_wrong_param_length.onnx",
            one(
                node("bn_h", "BatchNormalization", &["x", "s", "b", "m", "v"], &["y"], vec![]),
                vec![zeros("s", &[3]), zeros("b", &[3]), zeros("m", &[2]), zeros("v", &[3])],
            ),
            &["bn_h"],
        ),
        case(
            "conv_batchnorm_short_params.onnx",
            Spec::new(
                vec![
                    node("conv", "Conv", &["x", "w"], &["c"], vec![]),
                    node("bn_h", "BatchNormalization", &["c", "s", "b", "m", "v"], &["y"], vec![]),
                ],
                vec![w(), zeros("s", &[2]), zeros("b", &[2]), zeros("m", &[2]), zeros("v", &[2])],
                "y",
            ),
            &["bn_h"],
        ),
        case(
            "gemm_mismatch.onnx",
            Spec::new(
                vec![
                    node("flat", "Flatten", &["x"], &["f"], vec![]),
                    node("gemm_h", "Gemm", &["f", "w", "b"], &["y"], vec![int("transB", 1)]),
                ],
                vec![zeros("w", &[10, 7]), zeros("b", &[10])],
                "y",
            ),
            &["gemm_h"],
        ),
    ];
    // Bit-level damage to a real model: a truncated one and one with its graph field mangled.
    let real = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/models/fmnist_teacher.onnx")).unwrap();
    v.push(Case { name: "truncated_teacher.onnx", bytes: real[..real.len() * 2 / 3].to_vec(), needles: &[] });
    v
}

/// Inputs the fuzzers found crashing (fixed since), kept byte for byte in fuzz/regressions/:
/// each must now be refused (exit 2) or read (exit 0) without a panic.
#[test]
fn fuzzer_crash_inputs_stay_fixed() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions");
    let mut n = 0;
    for target in std::fs::read_dir(&root).unwrap() {
        for f in std::fs::read_dir(target.unwrap().path()).unwrap() {
            let path = f.unwrap().path();
            let out = inspect(&path);
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(matches!(out.status.code(), Some(0 | 2)) && !err.contains("panicked"), "{}: {err}", path.display());
            n += 1;
        }
    }
    assert!(n >= 1, "no regression inputs under {}", root.display());
}

/// The largest resident set of any child this process has waited for, in bytes.
fn children_max_rss() -> u64 {
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut u) }, 0);
    u.ru_maxrss as u64 * 1024
}

fn inspect(path: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_dnas"))
        .args(["teacher", "inspect"])
        .arg(path)
        .env("DNAS_MAX_TENSOR_BYTES", CAP_BYTES.to_string())
        .output()
        .unwrap()
}

#[test]
fn every_hostile_file_is_refused_by_name_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    // What a well-formed model of the same size costs: the RSS baseline.
    let ok = dir.path().join("ok.onnx");
    std::fs::write(&ok, Spec::new(vec![node("relu", "Relu", &["x"], &["y"], vec![])], vec![], "y").bytes()).unwrap();
    let out = inspect(&ok);
    assert_eq!(out.status.code(), Some(0), "the well-formed control failed: {}", String::from_utf8_lossy(&out.stderr));
    let baseline = children_max_rss();

    let cases = cases();
    assert!(cases.len() >= 30, "the corpus has only {} cases", cases.len());
    let mut failures = Vec::new();
    for c in &cases {
        let path = dir.path().join(c.name);
        std::fs::write(&path, &c.bytes).unwrap();
        let out = inspect(&path);
        let err = String::from_utf8_lossy(&out.stderr);
        let mut why = Vec::new();
        if out.status.code() != Some(2) {
            why.push(format!("exit {:?} (signal: {})", out.status.code(), out.status.code().is_none()));
        }
        if err.contains("panicked") {
            why.push("panicked".into());
        }
        if !err.contains(c.name) {
            why.push("the error does not name the file".into());
        }
        for n in c.needles {
            if !err.to_lowercase().contains(&n.to_lowercase()) {
                why.push(format!("the error does not mention {n}"));
            }
        }
        if !why.is_empty() {
            failures.push(format!("{}: {}\n    stderr: {}", c.name, why.join("; "), err.trim().replace('\n', "\n            ")));
        }
    }
    assert!(failures.is_empty(), "{} of {} hostile files mishandled:\n{}", failures.len(), cases.len(), failures.join("\n"));
    let peak = children_max_rss();
    assert!(
        peak < baseline + CAP_BYTES,
        "a hostile file grew the process to {} MiB (the control: {} MiB, cap {} MiB)",
        peak >> 20,
        baseline >> 20,
        CAP_BYTES >> 20
    );
}

/// Small well-formed models (the seeds a fuzzer mutates into near-valid files): a conv stack,
/// the exporters' Shape→Gather→Concat→Reshape chain, and a mix of the other families.
fn valid_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let conv_stack = Spec::new(
        vec![
            node("conv", "Conv", &["x", "w", "b"], &["c"], vec![ints("pads", &[1, 1, 1, 1]), ints("strides", &[2, 2])]),
            node("bn", "BatchNormalization", &["c", "s", "bb", "m", "v"], &["n"], vec![]),
            node("relu", "Relu", &["n"], &["r"], vec![]),
            node("pool", "MaxPool", &["r"], &["p"], vec![ints("kernel_shape", &[2, 2]), ints("strides", &[2, 2])]),
            node("gap", "GlobalAveragePool", &["p"], &["g"], vec![]),
            node("flat", "Flatten", &["g"], &["f"], vec![]),
            node("fc", "Gemm", &["f", "fw", "fb"], &["y"], vec![int("transB", 1)]),
        ],
        vec![
            zeros("w", &[4, 3, 3, 3]),
            zeros("b", &[4]),
            zeros("s", &[4]),
            zeros("bb", &[4]),
            zeros("m", &[4]),
            f32s("v", &[4], &[1.0; 4]),
            zeros("fw", &[10, 4]),
            zeros("fb", &[10]),
        ],
        "y",
    );
    let shape_chain = Spec::new(
        vec![
            node("shape", "Shape", &["x"], &["s"], vec![]),
            node("gather", "Gather", &["s", "i0"], &["n"], vec![int("axis", 0)]),
            node("unsq", "Unsqueeze", &["n", "ax"], &["nu"], vec![]),
            node("cat", "Concat", &["nu", "minus1"], &["spec"], vec![int("axis", 0)]),
            node("reshape", "Reshape", &["x", "spec"], &["y"], vec![]),
        ],
        vec![i64s("i0", &[], &[0]), i64s("ax", &[1], &[0]), i64s("minus1", &[1], &[-1])],
        "y",
    );
    let mix = Spec::new(
        vec![
            node("pad", "Pad", &["x", "pp"], &["a"], vec![]),
            node(
                "resize",
                "Resize",
                &["a", "", "sc"],
                &["b"],
                vec![string("coordinate_transformation_mode", "asymmetric"), string("nearest_mode", "floor")],
            ),
            node("split", "Split", &["b", "sz"], &["c", "d"], vec![int("axis", 1)]),
            node("mul", "Mul", &["c", "c"], &["e"], vec![]),
            node("sig", "Sigmoid", &["e"], &["f"], vec![]),
            node("tile", "Tile", &["f", "rep"], &["g"], vec![]),
            node("add", "Add", &["g", "d"], &["h"], vec![]),
            node("tr", "Transpose", &["h"], &["k"], vec![ints("perm", &[0, 2, 3, 1])]),
            node("red", "ReduceMean", &["k"], &["y"], vec![ints("axes", &[1, 2]), int("keepdims", 0)]),
        ],
        vec![
            i64s("pp", &[8], &[0, 0, 1, 1, 0, 0, 1, 1]),
            f32s("sc", &[4], &[1.0, 1.0, 2.0, 2.0]),
            i64s("sz", &[2], &[1, 2]),
            i64s("rep", &[4], &[1, 2, 1, 1]),
        ],
        "y",
    );
    vec![("seed_conv_stack.onnx", conv_stack.bytes()), ("seed_shape_chain.onnx", shape_chain.bytes()), ("seed_mix.onnx", mix.bytes())]
}

#[test]
fn the_fuzz_seeds_are_well_formed() {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in valid_seeds() {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let out = inspect(&path);
        assert_eq!(out.status.code(), Some(0), "{name}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

/// Writes the corpus to `$DNAS_WRITE_HOSTILE` (tools/fuzz.sh runs this to seed the fuzzers):
/// `DNAS_WRITE_HOSTILE=DIR cargo test --test hostile -- --ignored write_corpus`.
#[test]
#[ignore = "a tool, not a check: tools/fuzz.sh runs it"]
fn write_corpus() {
    let dir = std::env::var("DNAS_WRITE_HOSTILE").expect("set DNAS_WRITE_HOSTILE to the directory to write");
    std::fs::create_dir_all(&dir).unwrap();
    let cases = cases();
    for c in &cases {
        std::fs::write(Path::new(&dir).join(c.name), &c.bytes).unwrap();
    }
    for (name, bytes) in valid_seeds() {
        std::fs::write(Path::new(&dir).join(name), bytes).unwrap();
    }
    assert!(std::fs::read_dir(&dir).unwrap().count() >= cases.len() + 3);
}
