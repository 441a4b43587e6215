//! Helpers shared by the integration tests. The test command (tools/test.sh) runs setup and
//! exports the reference models first; a test that cannot find them fails, it never skips.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use dnas::exec::Executor;
use dnas::onnx::{read_model, write_model, WriteOptions};
use dnas::validate::compare::{diff, Diff};
use dnas::validate::ort_rt::OrtModel;
use dnas::validate::tract_rt::TractModel;
use dnas::validate::Array;

/// A tiny space over the shipped Fashion-MNIST teacher's first two stage cuts: 2 blocks, a
/// one- and a two-layer cell, a `skip` op; 36 architectures, 2.0–4.2M MACs.
pub const TINY_SPACE: &str = r#"{
  "name": "fmnist_tiny", "version": 1, "input": [1, 28, 28], "classes": 10,
  "stem": {"channels": 16, "kernel": 3, "stride": 1, "layers": [{"op": "ir_k3_e1", "out": 16}], "cut": 0},
  "blocks": [
    {"name": "s1", "cut": 1, "out": 24, "width": 16, "stride": 2, "lr": 0.005, "cells": [{"layers": 1}, {"layers": 2}], "ops": ["ir_k3_e3", "ir_k5_e3"]},
    {"name": "s2", "cut": 2, "out": 40, "stride": 2, "lr": 0.004, "cells": [{"layers": 2}], "ops": ["ir_k3_e3", "ir_k3_e6", "skip"]}
  ],
  "head": {"channels": 64}
}"#;

pub fn dnas_home() -> PathBuf {
    PathBuf::from(std::env::var("DNAS_HOME").expect("DNAS_HOME is not set: run the tests through tools/test.sh"))
}

pub fn model(name: &str) -> PathBuf {
    let p = dnas_home().join("models").join(name);
    assert!(p.exists(), "{} is missing: tools/test.sh exports it (tools/export_teachers.py)", p.display());
    p
}

pub fn photos_dir() -> PathBuf {
    PathBuf::from(std::env::var("DNAS_PKGS").expect("DNAS_PKGS is not set: run through tools/test.sh")).join("foolbox/foolbox/data")
}

/// Deterministic pseudo-random input in [-1, 1).
pub fn input(shape: &[usize], seed: u64) -> Array {
    let n: usize = shape.iter().product();
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let data = (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect();
    Array { shape: shape.to_vec(), data }
}

pub fn run_tch(bytes: &[u8], x: &Array) -> Array {
    let g = read_model(bytes).expect("import");
    let exec = Executor::new(g, tch::Device::Cpu).expect("executor");
    Array::from_tch(&exec.forward(&x.to_tch().unwrap()).expect("tch forward")).unwrap()
}

pub fn run_ort(bytes: &[u8], x: &Array) -> Array {
    OrtModel::new(bytes, 0).expect("ORT session").run(x).expect("ORT run").remove(0)
}

pub fn run_tract(bytes: &[u8], x: &Array) -> Array {
    TractModel::new(bytes, &x.shape).expect("tract load").run(x).expect("tract run").remove(0)
}

pub fn rewrite(bytes: &[u8], opset: i64) -> Vec<u8> {
    let g = read_model(bytes).expect("import");
    write_model(&g, &WriteOptions { opset, ..Default::default() }).expect("write")
}

pub fn d(a: &Array, b: &Array) -> Diff {
    diff(a, b).unwrap_or_else(|| panic!("shapes differ: {:?} vs {:?}", a.shape, b.shape))
}

/// The parity bars for one model file: tch vs ORT within `tol`; the round trip
/// (read → IR → write → read) identical in tch (≤ 1e-6) and matching in ORT and tract.
pub fn assert_parity_and_round_trip(bytes: &[u8], x: &Array, tol: f64, label: &str) {
    let ort = run_ort(bytes, x);
    let tch = run_tch(bytes, x);
    let e = d(&tch, &ort);
    assert!(e.max_rel <= tol, "{label}: tch vs ORT max rel {:.3e} > {tol:.0e}", e.max_rel);
    assert_eq!(tch.argmax_rows(), ort.argmax_rows(), "{label}: top-1 differs between tch and ORT");

    let rt = rewrite(bytes, 17);
    let tch_rt = run_tch(&rt, x);
    let e = d(&tch_rt, &tch);
    assert!(e.max_rel <= 1e-6, "{label}: round trip changed tch output (max rel {:.3e})", e.max_rel);
    let ort_rt = run_ort(&rt, x);
    let e = d(&ort_rt, &ort);
    assert!(e.max_rel <= 1e-6, "{label}: round trip changed ORT output (max rel {:.3e})", e.max_rel);
    let tract_rt = run_tract(&rt, x);
    let e = d(&tract_rt, &ort);
    assert!(e.max_rel <= tol, "{label}: tract on the round-tripped model vs ORT max rel {:.3e}", e.max_rel);
    eprintln!("{label}: tch vs ORT ok; round trip ok in tch, ORT and tract");
}

/// An IDX file: u8 data with the given dims.
pub fn idx_bytes(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut b = vec![0, 0, 8, dims.len() as u8];
    for d in dims {
        b.extend_from_slice(&d.to_be_bytes());
    }
    b.extend_from_slice(data);
    b
}

/// Writes `n` 6×5 images (pixel value = 10·label + position) and their labels, gzipped or not.
pub fn write_idx(dir: &Path, prefix: &str, n: usize, gz: bool) {
    let pixels: Vec<u8> = (0..n * 30).map(|i| ((i / 30) % 10 * 10 + i % 30) as u8).collect();
    let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
    for (kind, bytes) in [("images-idx3", idx_bytes(&[n as u32, 6, 5], &pixels)), ("labels-idx1", idx_bytes(&[n as u32], &labels))] {
        let name = format!("{prefix}-{kind}-ubyte{}", if gz { ".gz" } else { "" });
        let mut f = std::fs::File::create(dir.join(name)).unwrap();
        if gz {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            std::io::Write::write_all(&mut e, &bytes).unwrap();
            std::io::Write::write_all(&mut f, &e.finish().unwrap()).unwrap();
        } else {
            std::io::Write::write_all(&mut f, &bytes).unwrap();
        }
    }
}

/// Every tensor of a safetensors file as raw bytes (for bit-identity checks).
#[allow(dead_code)]
pub fn tensor_bytes(p: &Path) -> std::collections::HashMap<String, Vec<u8>> {
    tch::Tensor::read_safetensors(p)
        .unwrap()
        .into_iter()
        .map(|(k, t)| {
            let n = t.numel();
            let mut v = vec![0u8; n * t.kind().elt_size_in_bytes()];
            t.contiguous().copy_data_u8(&mut v, n);
            (k, v)
        })
        .collect()
}

/// Copies the directory tree `from` to `to` (created).
#[allow(dead_code)]
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), &dest).unwrap();
        }
    }
}
