//! Bad input never panics: each case gives an error naming the file/node/op and exit code 2.

mod common;

use std::path::Path;
use std::process::Command;

use dnas::onnx::proto::{
    tensor_proto::DataLocation, type_proto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, StringStringEntryProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto,
};
use prost::Message;

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

fn node(name: &str, op: &str, ins: &[&str], outs: &[&str]) -> NodeProto {
    NodeProto {
        name: Some(name.into()),
        op_type: Some(op.into()),
        input: ins.iter().map(|s| s.to_string()).collect(),
        output: outs.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

fn model(nodes: Vec<NodeProto>, inits: Vec<TensorProto>, output: &str) -> Vec<u8> {
    ModelProto {
        ir_version: Some(8),
        opset_import: vec![OperatorSetIdProto { domain: Some(String::new()), version: Some(17) }],
        graph: Some(GraphProto {
            node: nodes,
            name: Some("bad".into()),
            initializer: inits,
            input: vec![vi("x", &[1, 3, 8, 8])],
            output: vec![vi(output, &[1, 3, 8, 8])],
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

/// Runs `dnas teacher inspect FILE [extra…]`; returns (exit code, stderr).
fn inspect(dir: &Path, file: &str, bytes: &[u8], extra: &[&str]) -> (i32, String) {
    let path = dir.join(file);
    std::fs::write(&path, bytes).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_dnas")).args(["teacher", "inspect"]).arg(&path).args(extra).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!stderr.contains("panicked"), "dnas panicked: {stderr}");
    (out.status.code().unwrap_or(-1), stderr)
}

fn expect_error(dir: &Path, file: &str, bytes: &[u8], extra: &[&str], needles: &[&str]) {
    let (code, err) = inspect(dir, file, bytes, extra);
    assert_eq!(code, 2, "exit code for {file}: {err}");
    assert!(err.contains(file), "error does not name the file {file}: {err}");
    for n in needles {
        assert!(err.contains(n), "error for {file} does not mention '{n}': {err}");
    }
}

#[test]
fn truncated_file() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(common::model("resnet18_op17.onnx")).unwrap();
    expect_error(dir.path(), "truncated.onnx", &bytes[..bytes.len() / 2], &[], &["truncated"]);
}

#[test]
fn random_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = 12345u64;
    let bytes: Vec<u8> = (0..4096)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1);
            (s >> 56) as u8
        })
        .collect();
    expect_error(dir.path(), "random.onnx", &bytes, &[], &[]);
}

#[test]
fn missing_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let m = model(vec![node("relu_1", "Relu", &["ghost"], &["y"])], vec![], "y");
    expect_error(dir.path(), "missing.onnx", &m, &[], &["relu_1", "Relu", "ghost"]);
}

#[test]
fn unknown_op() {
    let dir = tempfile::tempdir().unwrap();
    let m = model(vec![node("fancy_1", "FancyOp", &["x"], &["y"]), node("fancy_2", "OtherOp", &["y"], &["z"])], vec![], "z");
    // All unsupported ops are reported at once.
    expect_error(dir.path(), "unknown.onnx", &m, &[], &["FancyOp", "fancy_1", "OtherOp"]);
}

#[test]
fn cycle() {
    let dir = tempfile::tempdir().unwrap();
    let m = model(vec![node("a", "Relu", &["b"], &["a_out"]), node("b", "Add", &["a_out", "x"], &["b"])], vec![], "b");
    expect_error(dir.path(), "cycle.onnx", &m, &[], &["cycle"]);
}

#[test]
fn input_of_the_wrong_rank() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(common::model("resnet18_op17.onnx")).unwrap();
    expect_error(dir.path(), "rank.onnx", &bytes, &["--input-shape", "1,3,224"], &["input", "rank 4"]);
}

#[test]
fn wrong_shapes_name_the_node() {
    let dir = tempfile::tempdir().unwrap();
    // A 3-channel input into a conv whose weight expects 5 channels.
    let w = TensorProto {
        name: Some("w".into()),
        dims: vec![4, 5, 3, 3],
        data_type: Some(1),
        raw_data: Some(vec![0; 4 * 5 * 9 * 4]),
        ..Default::default()
    };
    let m = model(vec![node("conv_7", "Conv", &["x", "w"], &["y"])], vec![w], "y");
    expect_error(dir.path(), "shapes.onnx", &m, &[], &["conv_7", "Conv", "channels"]);
}

#[test]
fn external_data_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let w = TensorProto {
        name: Some("big_weight".into()),
        dims: vec![3],
        data_type: Some(1),
        data_location: Some(DataLocation::External as i32),
        external_data: vec![StringStringEntryProto { key: Some("location".into()), value: Some("w.bin".into()) }],
        ..Default::default()
    };
    let m = model(vec![node("add", "Add", &["x", "big_weight"], &["y"])], vec![w], "y");
    expect_error(dir.path(), "external.onnx", &m, &[], &["big_weight", "external"]);
}

#[test]
fn missing_file() {
    let out = Command::new(env!("CARGO_BIN_EXE_dnas")).args(["teacher", "inspect", "/nonexistent/model.onnx"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/model.onnx"));
}

/// The subcommand paths of `dnas` (recursively, from `--help`), e.g. ["teacher", "check"].
fn subcommands(prefix: &[String]) -> Vec<Vec<String>> {
    let out = Command::new(env!("CARGO_BIN_EXE_dnas")).args(prefix).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout).to_string();
    let mut found = vec![];
    let Some(section) = help.split("Commands:\n").nth(1) else { return found };
    for line in section.lines().take_while(|l| !l.trim().is_empty()) {
        let Some(name) = line.split_whitespace().next() else { continue };
        if name == "help" {
            continue;
        }
        let mut path = prefix.to_vec();
        path.push(name.to_string());
        let nested = subcommands(&path);
        if nested.is_empty() {
            found.push(path);
        } else {
            found.extend(nested);
        }
    }
    found
}

/// Every command that takes `--device` refuses a CUDA device that is not there with exit 2,
/// naming it, before it reads any other argument or file (cuda:99 exists on no machine here).
#[test]
fn a_missing_cuda_device_is_exit_2_in_every_command() {
    let all = subcommands(&[]);
    assert!(all.len() >= 15, "found only {} subcommands: {all:?}", all.len());
    let mut with_device = 0;
    for path in &all {
        let help = Command::new(env!("CARGO_BIN_EXE_dnas")).args(path).arg("--help").output().unwrap();
        if !String::from_utf8_lossy(&help.stdout).contains("--device") {
            continue;
        }
        with_device += 1;
        let out = Command::new(env!("CARGO_BIN_EXE_dnas")).args(path).args(["--device", "cuda:99"]).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "dnas {} --device cuda:99: {err}", path.join(" "));
        assert!(err.contains("'cuda:99'") && err.contains("not available"), "dnas {}: {err}", path.join(" "));
        assert!(!err.contains("panicked"), "dnas {}: {err}", path.join(" "));
    }
    assert!(with_device >= 6, "only {with_device} commands take --device");
}
