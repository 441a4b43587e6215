//! Benchmark (not a test): teacher forward pass, dnas's tch executor vs ONNX Runtime on the same
//! ONNX file, in the same process and run, interleaved in rounds (median of the per-round
//! ratios, so load changes on a shared machine cancel). A PyTorch reference
//! (tools/bench_teacher_ref.py) times the network the file was exported from in libtorch itself —
//! eager channels_last and PyTorch's frozen inference graph — against ORT in its own process, to
//! separate the executor's overhead from the speed of libtorch's kernels. Prints median latency,
//! the ratios and peak memory.
//!
//! Run with tools/bench_teacher.sh [--batch 8] [--runs 10] [--device cpu|cuda] [--no-reference] [MODEL.onnx …]

use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result};
use dnas::exec::{parse_device, Executor};
use dnas::onnx::read_model;
use dnas::validate::ort_rt::{OrtModel, OrtProvider};
use dnas::validate::Array;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn ms<F: FnMut() -> Result<()>>(mut f: F) -> Result<f64> {
    let t = Instant::now();
    f()?;
    Ok(t.elapsed().as_secs_f64() * 1e3)
}

fn main() -> Result<()> {
    let tuned = dnas::util::malloc::tune_for_tensors();
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
    let runs: usize = take("--runs", "10").parse::<usize>()?.max(1);
    let device = parse_device(&take("--device", "cpu"))?;
    let reference = match args.iter().position(|a| a == "--no-reference") {
        Some(i) => {
            args.remove(i);
            false
        }
        None => true,
    };
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
    println!(
        "teacher forward, batch {batch} at 224², {runs} interleaved rounds after 3 warm-up runs each, medians; tch threads {threads}, ORT intra threads {threads} (spinning off); malloc: {}",
        if tuned { "dnas settings (dnas::util::malloc)" } else { "system defaults" }
    );
    println!("{:<26} {:>9} {:>9} {:>22} {:>10}", "model", "ORT ms", "dnas ms", "dnas/ORT median [range]", "device");
    let x = Array { shape: vec![batch, 3, 224, 224], data: (0..batch * 3 * 224 * 224).map(|i| ((i % 255) as f32 / 127.0) - 1.0).collect() };
    for path in &models {
        let bytes = std::fs::read(path).with_context(|| format!("cannot read '{path}'"))?;
        // No spinning: ORT's threads would otherwise busy-wait into the next (dnas) run.
        let mut ort = OrtModel::with_options(&bytes, threads, OrtProvider::Cpu, false)?;
        let exec = Executor::new(read_model(&bytes)?, device)?;
        let xt = x.to_tch()?.to_device(device);
        let mut run_dnas = || {
            let y = exec.forward(&xt)?;
            if let tch::Device::Cuda(_) = device {
                tch::Cuda::synchronize(0);
            }
            drop(y);
            Ok(())
        };
        for _ in 0..3 {
            ort.run(&x)?;
            run_dnas()?;
        }
        let (mut o, mut d) = (Vec::new(), Vec::new());
        for r in 0..runs {
            // Alternate who goes first.
            if r % 2 == 0 {
                o.push(ms(|| ort.run(&x).map(|_| ()))?);
                d.push(ms(&mut run_dnas)?);
            } else {
                d.push(ms(&mut run_dnas)?);
                o.push(ms(|| ort.run(&x).map(|_| ()))?);
            }
        }
        let paired: Vec<f64> = d.iter().zip(&o).map(|(d, o)| d / o).collect();
        let (lo, hi) = paired.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), &p| (lo.min(p), hi.max(p)));
        let name = std::path::Path::new(path).file_name().unwrap().to_string_lossy().to_string();
        println!(
            "{:<26} {:>9.1} {:>9.1} {:>22} {:>10}",
            name,
            median(o),
            median(d),
            format!("{:.2} [{lo:.2}–{hi:.2}]", median(paired)),
            format!("{device:?}")
        );
    }
    println!("goal: dnas/ORT ≤ 1.2 on CPU; peak RSS {:.0} MiB", dnas::util::peak_rss_mib());
    if reference && device == tch::Device::Cpu {
        print_reference(&models, batch, runs, threads, tuned)?;
    }
    Ok(())
}

/// Runs tools/bench_teacher_ref.py (same batch, runs, threads and allocator settings) and prints
/// libtorch's own figures against ORT.
fn print_reference(models: &[String], batch: usize, runs: usize, threads: usize, tuned: bool) -> Result<()> {
    let root = std::env::var_os("DNAS_ROOT").map_or_else(|| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")), Into::into);
    let mut cmd = Command::new("python3");
    cmd.arg(root.join("tools/bench_teacher_ref.py"))
        .args(["--batch", &batch.to_string(), "--runs", &runs.to_string(), "--threads", &threads.to_string()])
        .args(models);
    if tuned {
        cmd.env("GLIBC_TUNABLES", "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=2147483647");
    }
    let out = cmd.output().context("running python3 tools/bench_teacher_ref.py (source tools/env.sh first)")?;
    if !out.status.success() {
        println!("PyTorch reference failed: {}", String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or("?"));
        return Ok(());
    }
    println!("PyTorch reference, same inputs, batch, threads and allocator, its own process (ratios to ORT measured there):");
    println!("{:<26} {:>9} {:>16} {:>16} {:>15}", "model", "ORT ms", "eager CL ms/ORT", "frozen ms/ORT", "max rel vs ORT");
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let v: serde_json::Value = serde_json::from_str(line).with_context(|| format!("reference said '{line}'"))?;
        let model = v["model"].as_str().unwrap_or("?");
        if let Some(why) = v["skipped"].as_str() {
            println!("{model:<26} {why}");
            continue;
        }
        let f = |k: &str| v[k].as_f64().unwrap_or(f64::NAN);
        println!(
            "{:<26} {:>9.1} {:>16} {:>16} {:>15.1e}",
            model,
            f("ort_ms"),
            format!("{:.1} / {:.2}", f("eager_ms"), f("eager_vs_ort")),
            format!("{:.1} / {:.2}", f("frozen_ms"), f("frozen_vs_ort")),
            f("max_rel_diff_vs_ort")
        );
    }
    println!("(eager CL: the module in channels_last, what the executor asks of libtorch; frozen: torch.jit.freeze +");
    println!(" optimize_for_inference — prepacked oneDNN weights in blocked layout, convolution and activation fused)");
    Ok(())
}
