//! Training through the binary on a tiny IDX dataset the test writes: a run killed (SIGKILL)
//! mid-epoch and resumed ends with weights bit-identical to an uninterrupted run; the exported
//! ONNX gives the same top-1 in ONNX Runtime as in tch.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const ARCH: &str = r#"{"name": "tiny", "input": [1, 6, 5], "classes": 10,
  "stem": {"channels": 8, "kernel": 3, "stride": 1},
  "stages": [{"out": 8, "layers": 1, "stride": 1, "expand": 2, "kernel": 3},
             {"out": 12, "layers": 1, "stride": 2, "expand": 2, "kernel": 3}],
  "head": 16}"#;

fn train(dir: &Path, data: &Path, out: &Path, extra: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_dnas"));
    c.args(["train-teacher", "--arch"])
        .arg(dir.join("arch.json"))
        .arg("-o")
        .arg(out)
        .arg("--data")
        .arg(format!("idx:{}", data.display()))
        .args(["--held-out", "40", "--epochs", "3", "--batch", "16", "--ckpt-every", "3", "--threads", "1", "--seed", "9", "--json"])
        .args(extra);
    c
}

/// A temp dir holding `arch.json` and `data/` with `train` and `test` IDX samples.
fn workspace(train: usize, test: usize, gz: bool) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    common::write_idx(&data, "train", train, gz);
    common::write_idx(&data, "t10k", test, gz);
    std::fs::write(dir.path().join("arch.json"), ARCH).unwrap();
    (dir, data)
}

#[test]
fn killed_and_resumed_run_is_bit_identical_and_onnx_matches() {
    let (dir, data) = workspace(360, 50, true);

    let full = dir.path().join("full");
    let o = train(dir.path(), &data, &full, &[]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let result: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(result["train"]["steps"], 60);
    // The exported ONNX agrees with tch on the test split.
    let (t, r) = (result["test_top1_tch"].as_f64().unwrap(), result["test_top1_onnxruntime"].as_f64().unwrap());
    assert!((t - r).abs() < 1e-9, "tch {t} vs ORT {r}");
    assert!(result["train"]["final_loss"].as_f64().unwrap() < 2.2, "the loss must fall: {result}");

    // Start again, SIGKILL after a mid-epoch checkpoint, resume.
    let cut = dir.path().join("cut");
    let mut child = train(dir.path(), &data, &cut, &[]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let ckpt = cut.join("ckpt/checkpoint.json");
    let t0 = Instant::now();
    let killed_at = loop {
        if let Ok(text) = std::fs::read_to_string(&ckpt) {
            let meta: serde_json::Value = serde_json::from_str(&text).unwrap();
            let step = meta["step"].as_u64().unwrap();
            if step >= 24 {
                child.kill().unwrap();
                break step;
            }
        }
        assert!(t0.elapsed() < Duration::from_secs(120), "no checkpoint appeared");
        std::thread::sleep(Duration::from_millis(2));
    };
    child.wait().unwrap();
    assert!(!cut.join("final.safetensors").exists(), "the run was killed before the end (checkpoint at step {killed_at})");
    let o = train(dir.path(), &data, &cut, &["--resume"]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let a = common::tensor_bytes(&full.join("final.safetensors"));
    let b = common::tensor_bytes(&cut.join("final.safetensors"));
    assert_eq!(a.len(), b.len());
    for (k, v) in &a {
        assert!(b[k] == *v, "tensor '{k}' differs after resume");
    }

    // Resuming a finished run with other settings is refused, naming the directory.
    let o = train(dir.path(), &data, &cut, &["--resume", "--lr", "0.1"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("different settings"), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn a_diverging_loss_stops_the_run_naming_the_step() {
    let (dir, data) = workspace(200, 20, false);
    let o = train(dir.path(), &data, &dir.path().join("run"), &["--optimizer", "sgd", "--lr", "1e12", "--warmup-epochs", "0"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("at step") && err.contains("training stopped"), "{err}");
}
