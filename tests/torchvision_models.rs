//! torchvision resnet18, mobilenet_v3_small and efficientnet_b0 (seeded random weights, random
//! BN statistics) exported by torch.onnx.export at opsets 13 and 17: tch matches ORT within
//! 1e-4 relative, and the IR round trip is exact in tch and matches in ORT and tract.

mod common;

use common::*;

fn parity(file: &str) {
    let bytes = std::fs::read(model(file)).unwrap();
    let x = input(&[2, 3, 224, 224], 7);
    assert_parity_and_round_trip(&bytes, &x, 1e-4, file);
}

#[test]
fn resnet18_opset13() {
    parity("resnet18_op13.onnx");
}
#[test]
fn resnet18_opset17() {
    parity("resnet18_op17.onnx");
}
#[test]
fn mobilenet_v3_small_opset13() {
    parity("mobilenet_v3_small_op13.onnx");
}
#[test]
fn mobilenet_v3_small_opset17() {
    parity("mobilenet_v3_small_op17.onnx");
}
#[test]
fn efficientnet_b0_opset13() {
    parity("efficientnet_b0_op13.onnx");
}
#[test]
fn efficientnet_b0_opset17() {
    parity("efficientnet_b0_op17.onnx");
}

#[test]
fn opset13_model_is_rewritten_at_opset17_and_back_at_13() {
    // The writer targets the requested opset explicitly; both forms run in ORT identically.
    let bytes = std::fs::read(model("resnet18_op13.onnx")).unwrap();
    let x = input(&[1, 3, 224, 224], 3);
    let a = run_ort(&rewrite(&bytes, 13), &x);
    let b = run_ort(&rewrite(&bytes, 17), &x);
    assert!(d(&a, &b).max_rel <= 1e-6);
    let g = dnas::onnx::read_model(&rewrite(&bytes, 13)).unwrap();
    assert_eq!(g.opset, 13);
}
