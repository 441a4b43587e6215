//! Benchmark (not a test): teacher forward pass, dnas's tch executor vs ONNX Runtime on the same
//! ONNX file, in the same process and run. Prints median latency, the ratio and peak memory.
//!
//! Run with tools/bench_teacher.sh [--batch 8] [--runs 10] [--device cpu|cuda] [MODEL.onnx …]

use std::time::Instant;

use anyhow::{Context, Result};
use dnas::exec::{parse_device, Executor};
use dnas::onnx::read_model;
use dnas::validate::ort_rt::OrtModel;
use dnas::validate::Array;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn time<F: FnMut() -> Result<()>>(warmup: usize, runs: usize, mut f: F) -> Result<f64> {
    for _ in 0..warmup {
        f()?;
    }
    let mut ts = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        f()?;
        ts.push(t.elapsed().as_secs_f64() * 1e3);
    }
    Ok(median(ts))
}

fn main() -> Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut take = |flag: &str, default: &str| -> String {
        match args.iter().position(|a| a == flag) {
            Some(i) => {
                let v = args.remove(i + 1);
                args.remove(i);
                v
            }
            None => default.to_string(),
        }
    };
    let batch: usize = take("--batch", "8").parse()?;
    let runs: usize = take("--runs", "10").parse()?;
    let device = parse_device(&take("--device", "cpu"))?;
    let threads = tch::get_num_threads() as usize;
    let models = if args.is_empty() {
        let home = std::env::var("DNAS_HOME").context("DNAS_HOME not set (run through tools/bench_teacher.sh)")?;
        vec![
            format!("{home}/models/efficientnet_lite0.onnx"),
            format!("{home}/models/mobilenet_v2.onnx"),
            format!("{home}/models/resnet18_op17.onnx"),
        ]
    } else {
        args
    };
    println!("teacher forward, batch {batch} at 224², {runs} timed runs after 3 warm-up, median; tch threads {threads}, ORT intra threads {threads}");
    println!("{:<28} {:>12} {:>12} {:>12} {:>16}", "model", "ORT ms", "dnas ms", "dnas/ORT", "device");
    let x = Array { shape: vec![batch, 3, 224, 224], data: (0..batch * 3 * 224 * 224).map(|i| ((i % 255) as f32 / 127.0) - 1.0).collect() };
    for path in &models {
        let bytes = std::fs::read(path).with_context(|| format!("cannot read '{path}'"))?;
        let mut ort = OrtModel::new(&bytes, threads)?;
        let ort_ms = time(3, runs, || ort.run(&x).map(|_| ()))?;
        let exec = Executor::new(read_model(&bytes)?, device)?;
        let xt = x.to_tch()?.to_device(device);
        let dnas_ms = time(3, runs, || {
            let y = exec.forward(&xt)?;
            if let tch::Device::Cuda(_) = device {
                tch::Cuda::synchronize(0);
            }
            drop(y);
            Ok(())
        })?;
        let name = std::path::Path::new(path).file_name().unwrap().to_string_lossy().to_string();
        println!("{:<28} {:>12.1} {:>12.1} {:>12.2} {:>16}", name, ort_ms, dnas_ms, dnas_ms / ort_ms, format!("{device:?}"));
    }
    println!("peak RSS {:.0} MiB", dnas::util::peak_rss_mib());
    Ok(())
}
