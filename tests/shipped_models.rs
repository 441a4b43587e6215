//! The models shipped in models/ still meet the figures documented in models/README.md,
//! measured through ONNX Runtime on the real Fashion-MNIST test split (10,000 images), via the
//! binary exactly as a user or CI job would run it.

use std::process::Command;

#[test]
fn shipped_fashion_mnist_teacher_meets_its_documented_top1_through_ort() {
    let model = concat!(env!("CARGO_MANIFEST_DIR"), "/models/fmnist_teacher.onnx");
    let o = Command::new(env!("CARGO_BIN_EXE_dnas"))
        .args(["eval", model, "--data", "fmnist", "--split", "test", "--no-tract", "--min-top1", "0.925", "--json"])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "exit {:?}\n{}\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let ort = &r["results"][0];
    assert_eq!(ort["runtime"], "onnxruntime");
    assert_eq!(ort["total"], 10000);
    assert!(ort["top1"].as_f64().unwrap() >= 0.925, "{r}");
}
