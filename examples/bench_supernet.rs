//! Supernet step benchmark (not a test): one training step of a block supernet of the embedded
//! space (models/spaces/fmnist_small.json on the shipped teacher's shapes) in dnas — sample a path
//! per cell, forward, MSE to the target, backward, AdamW on the sampled ops — against the same
//! step in PyTorch eager (tools/bench_supernet_ref.py: same layer shapes, the same sampled paths,
//! batch and threads), measured in the same run. Reference rows: PyTorch default (NCHW) memory
//! format and channels_last.
//!
//! The contestants are interleaved: the references wait as child processes (driven over their
//! stdin), and every round times a chunk of the same steps in each of them, in a rotating order.
//! On a shared machine the load changes from minute to minute; timing everyone in the same rounds
//! and taking the median of the per-round ratios keeps that out of the ratio. Prints ms per step
//! (median and best round), the paired ratios (median, range), and peak RSS of every process; on
//! CUDA also the GPU memory of each process as nvidia-smi reports it and PyTorch's max allocated.
//!
//! Run: tools/bench_supernet.sh [--block I] [--batch B] [--steps N] [--rounds R] [--threads T] [--cuda] [--amp]
//! (`--amp`: CUDA autocast to float16 in both, forward and loss; no loss scaling in either.)

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
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

/// One PyTorch reference process (tools/bench_supernet_ref.py), waiting for `run` lines.
struct Reference {
    label: String,
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    ms: Vec<f64>,
}

impl Reference {
    /// Starts the reference and waits until it has built the block and taken the warm-up steps.
    /// `tuned`: run it with the allocator settings dnas uses (see `dnas::util::malloc`), through
    /// glibc's environment tunables.
    fn spawn(root: &Path, spec: &Path, fmt: &str, tuned: bool, cuda: bool, amp: bool) -> Result<Reference> {
        let mut cmd = Command::new("python3");
        if tuned {
            cmd.env("GLIBC_TUNABLES", "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=2147483647");
        }
        let mut child = cmd
            .arg(root.join("tools/bench_supernet_ref.py"))
            .arg(spec)
            .arg(fmt)
            .arg(if cuda { "cuda" } else { "cpu" })
            .arg(if amp { "amp" } else { "fp32" })
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("running python3 tools/bench_supernet_ref.py (source tools/env.sh first)")?;
        let stdin = child.stdin.take().context("reference stdin")?;
        let stdout = BufReader::new(child.stdout.take().context("reference stdout")?);
        let what = if tuned { format!("{fmt}, dnas malloc") } else { fmt.to_string() };
        let mut r = Reference { label: format!("PyTorch eager ({what})"), child, stdin, stdout, ms: Vec::new() };
        let ready = r.answer()?;
        if ready["ready"] != true {
            bail!("reference ({fmt}) did not start: {ready}");
        }
        if let Some(v) = ready["torch"].as_str() {
            r.label = format!("PyTorch {v} eager ({what})");
        }
        Ok(r)
    }

    fn answer(&mut self) -> Result<serde_json::Value> {
        let mut line = String::new();
        if self.stdout.read_line(&mut line)? == 0 {
            bail!("the reference exited early (its error is above)");
        }
        serde_json::from_str(&line).with_context(|| format!("reference said '{}'", line.trim()))
    }

    /// Runs steps `first..end` there; returns ms per step.
    fn run(&mut self, first: usize, end: usize) -> Result<f64> {
        writeln!(self.stdin, "run {first} {end}")?;
        self.stdin.flush()?;
        let ms = self.answer()?["ms_per_step"].as_f64().context("reference gave no ms_per_step")?;
        self.ms.push(ms);
        Ok(ms)
    }

    /// Ends the process; returns its closing report (peak RSS, GPU memory).
    fn finish(mut self) -> Result<serde_json::Value> {
        writeln!(self.stdin, "quit")?;
        self.stdin.flush()?;
        let v = self.answer()?;
        self.child.wait()?;
        Ok(v)
    }
}

/// The reference processes: memory format, and whether they run with dnas's allocator settings.
const REFERENCES: [(&str, bool); 3] = [("contiguous", false), ("channels_last", false), ("channels_last", true)];

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return f64::NAN;
    }
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn main() -> Result<()> {
    let tuned = dnas::util::malloc::tune_for_tensors();
    let (block, batch, steps, threads) = (arg("--block", 0), arg("--batch", 128), arg("--steps", 30), arg("--threads", 2));
    let rounds = arg("--rounds", 5).max(1);
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
    let chunk = steps.div_ceil(rounds).max(1);
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

    // The same block and the same paths for the references.
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
    let total = warmup + rounds * chunk;
    let paths: Vec<Vec<Vec<usize>>> = (0..total).map(|s| (0..b.cells.len()).map(|c| net.sample_path(c, s)).collect()).collect();
    let spec = serde_json::json!({"se": space.se, "batch": batch, "threads": threads, "warmup": warmup, "lr": lr,
        "in_shape": ti, "out_shape": to, "cells": cells, "paths": paths});
    let dir = tempfile_dir()?;
    let spec_path = dir.join("spec.json");
    std::fs::write(&spec_path, serde_json::to_vec(&spec)?)?;
    let mut refs = Vec::new();
    for (fmt, tuned) in REFERENCES {
        refs.push(Reference::spawn(&root, &spec_path, fmt, tuned, cuda, amp)?);
    }

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
    // Round r: every contestant runs the same steps; the order rotates so nobody is always first.
    let mut dnas_ms = Vec::new();
    for r in 0..rounds {
        let (first, end) = (warmup + r * chunk, warmup + (r + 1) * chunk);
        for k in 0..=refs.len() {
            match (r + k) % (refs.len() + 1) {
                0 => {
                    let t = Instant::now();
                    for s in first..end {
                        run_step(s)?;
                    }
                    sync();
                    dnas_ms.push(t.elapsed().as_secs_f64() * 1000.0 / chunk as f64);
                }
                i => {
                    refs[i - 1].run(first, end)?;
                }
            }
        }
    }
    let dnas_rss = dnas::util::peak_rss_mib();
    let dnas_faults = dnas::util::malloc::minor_faults();
    let dnas_gpu = if cuda { gpu_mib(std::process::id()) } else { None };
    let mut rows = Vec::new();
    for r in refs {
        let (label, ms) = (r.label.clone(), r.ms.clone());
        rows.push((label, ms, r.finish()?));
    }
    let _ = std::fs::remove_dir_all(&dir);

    let layers: usize = b.cells.iter().map(|c| c.layers.len()).sum();
    println!(
        "block {} ('{}'): {} cells, {} sampled layers per step, input {:?} → target {:?}, batch {batch}, {threads} threads, {}{}",
        block,
        b.name,
        b.cells.len(),
        layers,
        ti,
        to,
        if cuda { "CUDA" } else { "CPU" },
        if amp { " AMP float16" } else { " float32" }
    );
    println!("{rounds} interleaved rounds × {chunk} steps after {warmup} warm-up steps; ms/step = median over rounds (best round)");
    let ref_faults: Vec<String> =
        rows.iter().map(|(l, _, v)| format!("{l}: {}", v["minor_faults"].as_u64().map_or("?".into(), |f| f.to_string()))).collect();
    println!("minor page faults, whole process: dnas {dnas_faults}; {}", ref_faults.join("; "));
    let mib = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.0}"));
    println!(
        "{:<56} {:>17} {:>24} {:>13} {:>13} {:>15}",
        "", "ms/step", "dnas/this median [range]", "peak RSS MiB", "GPU used MiB", "CUDA max alloc"
    );
    let ms_cell = |v: &[f64]| format!("{:.2} ({:.2})", median(v), v.iter().copied().fold(f64::INFINITY, f64::min));
    let me = if tuned { "dnas (tch, channels_last, dnas malloc)" } else { "dnas (tch, channels_last, system malloc)" };
    println!("{:<56} {:>17} {:>24} {:>13.0} {:>13} {:>15}", me, ms_cell(&dnas_ms), "1.00", dnas_rss, mib(dnas_gpu), "-");
    // The fastest reference as PyTorch is installed (the goal) and the fastest overall, which
    // includes PyTorch given the allocator settings dnas applies to itself.
    // (label, median ms, paired ratio)
    type Best = Option<(String, f64, f64)>;
    let (mut best, mut best_any): (Best, Best) = (None, None);
    for (k, (label, ms, v)) in rows.iter().enumerate() {
        let paired: Vec<f64> = dnas_ms.iter().zip(ms).map(|(d, r)| d / r).collect();
        let (lo, hi) = paired.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), &p| (lo.min(p), hi.max(p)));
        let ratio = median(&paired);
        println!(
            "{:<56} {:>17} {:>24} {:>13.0} {:>13} {:>15}",
            label,
            ms_cell(ms),
            format!("{ratio:.2} [{lo:.2}–{hi:.2}]"),
            v["peak_rss_mib"].as_f64().unwrap_or(f64::NAN),
            mib(v["gpu_used_mib"].as_f64()),
            mib(v["cuda_max_allocated_mib"].as_f64())
        );
        let entry = Some((label.clone(), median(ms), ratio));
        if !REFERENCES[k].1 && best.as_ref().is_none_or(|b| median(ms) < b.1) {
            best = entry.clone();
        }
        if best_any.as_ref().is_none_or(|b| median(ms) < b.1) {
            best_any = entry;
        }
    }
    if let Some((label, _, ratio)) = best {
        println!("ratio dnas / fastest PyTorch as installed ({label}), median of paired rounds: {ratio:.2} (goal ≤ 1.00)");
    }
    if let Some((label, _, ratio)) = best_any {
        println!("ratio dnas / fastest reference of all ({label}): {ratio:.2}");
    }
    Ok(())
}

fn tempfile_dir() -> Result<PathBuf> {
    let d = std::env::temp_dir().join(format!("dnas-bench-supernet-{}", std::process::id()));
    std::fs::create_dir_all(&d)?;
    Ok(d)
}
