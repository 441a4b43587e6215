//! Supernet step benchmark (not a test): one training step of a block supernet of the embedded
//! space (models/spaces/fmnist_small.json on the shipped teacher's shapes) in dnas — sample a path
//! per cell, forward, MSE to the target, backward, AdamW on the sampled ops — against the same
//! step in PyTorch eager (tools/bench_supernet_ref.py: same layer shapes, the same sampled paths,
//! batch and threads), measured in the same run. Reference rows: PyTorch default (NCHW) memory
//! format and channels_last. Prints ms per step, the ratios, and peak RSS of both processes; on
//! CUDA also the GPU memory of each process as nvidia-smi reports it and PyTorch's max allocated.
//!
//! Run: tools/bench_supernet.sh [--block I] [--batch B] [--steps N] [--threads T] [--cuda] [--amp]
//! (`--amp`: CUDA autocast to float16 in both, forward and loss; no loss scaling in either.)

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use dnas::search::run::resolve_with_teacher;
use dnas::space::SearchSpace;
use dnas::supernet::BlockNet;
use dnas::train::optim::{OptimConfig, Optimizer};

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn flag(name: &str) -> bool {
    std::env::args().any(|a| a == name)
}

/// GPU memory (MiB) nvidia-smi reports for process `pid` (context included), if it can tell.
fn gpu_mib(pid: u32) -> Option<f64> {
    let out = Command::new("nvidia-smi").args(["--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"]).output().ok()?;
    String::from_utf8_lossy(&out.stdout).lines().find_map(|l| {
        let mut f = l.split(',').map(str::trim);
        (f.next()? == pid.to_string()).then(|| f.next()?.parse().ok())?
    })
}

fn main() -> Result<()> {
    let (block, batch, steps, threads) = (arg("--block", 0), arg("--batch", 128), arg("--steps", 30), arg("--threads", 2));
    let (cuda, amp) = (flag("--cuda"), flag("--amp"));
    if amp && !cuda {
        bail!("--amp needs --cuda");
    }
    let device = if cuda { tch::Device::Cuda(0) } else { tch::Device::Cpu };
    if cuda && !tch::Cuda::is_available() {
        bail!("--cuda: libtorch sees no CUDA device");
    }
    let sync = || {
        if cuda {
            tch::Cuda::synchronize(0);
        }
    };
    let warmup = 5;
    tch::set_num_threads(threads as i32);
    // DNAS_ROOT: the checkout, where a carried binary runs on another machine.
    let root = std::env::var_os("DNAS_ROOT").map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    let space = SearchSpace::load(&root.join("models/spaces/fmnist_small.json"))?;
    let teacher = dnas::onnx::read_file(&root.join("models/fmnist_teacher.onnx"))?;
    let r = resolve_with_teacher(&space, &teacher)?;
    let b = r.blocks.get(block).context("no such block")?;
    let net = BlockNet::new(b, space.se, 0, device)?;
    let (ti, to) = (b.teacher_in_shape, b.teacher_out_shape);
    let shape = |s: [usize; 3]| [batch as i64, s[0] as i64, s[1] as i64, s[2] as i64];
    // Teacher features come out of the executor in channels_last strides; so do these.
    let x = dnas::exec::channels_last(&tch::Tensor::randn(shape(ti), (tch::Kind::Float, device)))?;
    let y = dnas::exec::channels_last(&tch::Tensor::randn(shape(to), (tch::Kind::Float, device)))?;
    let params = net.parameters();
    let mut opt = Optimizer::new(OptimConfig::Adamw { beta1: 0.9, beta2: 0.999, eps: 1e-8 });
    let lr = b.lr;
    let mut run_step = |s: usize| -> Result<()> {
        for (_, p, _) in &params {
            let mut g = p.grad();
            if g.defined() {
                let _ = g.f_zero_();
            }
        }
        let loss = tch::autocast(amp, || net.loss(&x, &y, s))?;
        loss.f_backward()?;
        opt.step(&params, lr, &[], &net.active(s), 1e-4)
    };
    for s in 0..warmup {
        run_step(s)?;
    }
    sync();
    // The best of 3 chunks of steps (less exposed to other load on the machine); the reference does the same.
    let chunk = steps.div_ceil(3);
    let mut dnas_ms = f64::INFINITY;
    for c in 0..3 {
        let t = Instant::now();
        for s in warmup + c * chunk..warmup + (c + 1) * chunk {
            run_step(s)?;
        }
        sync();
        dnas_ms = dnas_ms.min(t.elapsed().as_secs_f64() * 1000.0 / chunk as f64);
    }
    let dnas_rss = dnas::util::peak_rss_mib();
    let dnas_gpu = if cuda { gpu_mib(std::process::id()) } else { None };

    // The same block and the same paths for the reference.
    let cells: Vec<serde_json::Value> = b
        .cells
        .iter()
        .map(|c| {
            let layers: Vec<serde_json::Value> = c
                .layers
                .iter()
                .map(|l| {
                    let s = &l.supernet;
                    serde_json::json!({"cin": s.cin, "cout": s.cout, "stride": s.stride, "h": s.h, "w": s.w,
                        "ops": l.ops.iter().map(|o| o.to_string()).collect::<Vec<_>>()})
                })
                .collect();
            serde_json::json!({ "layers": layers })
        })
        .collect();
    if b.cells.iter().any(|c| c.layers.iter().any(|l| l.ops.iter().any(|o| o.is_skip()))) {
        bail!("the reference has no 'skip' op");
    }
    let paths: Vec<Vec<Vec<usize>>> =
        (0..warmup + 3 * chunk).map(|s| (0..b.cells.len()).map(|c| net.sample_path(c, s)).collect()).collect();
    let spec = serde_json::json!({"se": space.se, "batch": batch, "threads": threads, "warmup": warmup, "lr": lr,
        "chunks": 3, "in_shape": ti, "out_shape": to, "cells": cells, "paths": paths});
    let dir = tempfile_dir()?;
    let spec_path = dir.join("spec.json");
    std::fs::write(&spec_path, serde_json::to_vec(&spec)?)?;
    let mut refs = Vec::new();
    for fmt in ["contiguous", "channels_last"] {
        let out = Command::new("python3")
            .arg(root.join("tools/bench_supernet_ref.py"))
            .arg(&spec_path)
            .arg(fmt)
            .arg(if cuda { "cuda" } else { "cpu" })
            .arg(if amp { "amp" } else { "fp32" })
            .output()
            .context("running python3 tools/bench_supernet_ref.py (source tools/env.sh first)")?;
        if !out.status.success() {
            bail!("reference failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        refs.push((fmt, v));
    }
    let _ = std::fs::remove_dir_all(&dir);

    let layers: usize = b.cells.iter().map(|c| c.layers.len()).sum();
    println!(
        "block {} ('{}'): {} cells, {} sampled layers per step, input {:?} → target {:?}, batch {batch}, {threads} threads, {}{}, best of 3 × {chunk} timed steps after {warmup} warm-up",
        block,
        b.name,
        b.cells.len(),
        layers,
        ti,
        to,
        if cuda { "CUDA" } else { "CPU" },
        if amp { " AMP float16" } else { " float32" }
    );
    let mib = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.0}"));
    println!("{:<34} {:>10} {:>12} {:>14} {:>13} {:>15}", "", "ms/step", "dnas/this", "peak RSS MiB", "GPU used MiB", "CUDA max alloc");
    println!("{:<34} {:>10.2} {:>12} {:>14.0} {:>13} {:>15}", "dnas (tch, channels_last)", dnas_ms, "1.00", dnas_rss, mib(dnas_gpu), "-");
    for (fmt, v) in &refs {
        let ms = v["ms_per_step"].as_f64().unwrap_or(f64::NAN);
        println!(
            "{:<34} {:>10.2} {:>12.2} {:>14.0} {:>13} {:>15}",
            format!("PyTorch {} eager ({fmt})", v["torch"].as_str().unwrap_or("?")),
            ms,
            dnas_ms / ms,
            v["peak_rss_mib"].as_f64().unwrap_or(f64::NAN),
            mib(v["gpu_used_mib"].as_f64()),
            mib(v["cuda_max_allocated_mib"].as_f64())
        );
    }
    let best = refs.iter().filter_map(|(_, v)| v["ms_per_step"].as_f64()).fold(f64::INFINITY, f64::min);
    println!("ratio dnas / fastest reference: {:.2} (goal ≤ 1.00)", dnas_ms / best);
    Ok(())
}

fn tempfile_dir() -> Result<PathBuf> {
    let d = std::env::temp_dir().join(format!("dnas-bench-supernet-{}", std::process::id()));
    std::fs::create_dir_all(&d)?;
    Ok(d)
}
