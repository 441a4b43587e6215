//! Supernet step benchmark (not a test): one training step of a block supernet of a space on its
//! teacher's shapes (default the embedded models/spaces/fmnist_small.json on the shipped teacher;
//! `--paper`: the DNA paper's models/spaces/dna_efficientnet.json on the real EfficientNet-Lite0
//! at 224², every cell of the block) in dnas — sample a path
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
//! Run: tools/bench_supernet.sh [--paper] [--block I] [--batch B] [--steps N] [--rounds R] [--threads T] [--cuda] [--amp]
//! (`--amp`: CUDA autocast to float16 in both, forward and loss; no loss scaling in either.)

mod common;

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use common::interleave::{arg, check_params, device_from_flags, flag, interleave, report, root, spawn_references, zero_grads};
use dnas::space::SearchSpace;
use dnas::strategy::dna::run::resolve_with_teacher;
use dnas::supernet::BlockNet;
use dnas::train::optim::{OptimConfig, Optimizer};

fn main() -> Result<()> {
    let tuned = dnas::util::malloc::tune_for_tensors();
    let (block, batch, steps, threads) = (arg("--block", 0), arg("--batch", 128), arg("--steps", 30), arg("--threads", 2));
    let rounds = arg("--rounds", 5).max(1);
    let (device, amp, sync) = device_from_flags()?;
    let cuda = device.is_cuda();
    let warmup = 5;
    let chunk = steps.div_ceil(rounds).max(1);
    tch::set_num_threads(threads as i32);
    // DNAS_ROOT: the checkout, where a carried binary runs on another machine.
    let root = root();
    let (space, teacher) = if flag("--paper") {
        let home = std::env::var("DNAS_HOME").context("--paper needs DNAS_HOME (tools/env.sh) for the Lite0 teacher")?;
        (root.join("models/spaces/dna_efficientnet.json"), PathBuf::from(home).join("models/efficientnet_lite0.onnx"))
    } else {
        (root.join("models/spaces/fmnist_small.json"), root.join("models/fmnist_teacher.onnx"))
    };
    let space = SearchSpace::load(&space)?;
    let teacher = dnas::onnx::read_file(&teacher).with_context(|| format!("teacher '{}'", teacher.display()))?;
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
    let (mut refs, dir) = spawn_references(&root.join("tools/bench_supernet_ref.py"), &spec, "supernet", cuda, amp)?;

    check_params(&refs, params.iter().map(|(_, p, _)| p.numel() as i64).sum())?;
    let mut run_step = |s: usize| -> Result<()> {
        zero_grads(&params);
        let loss = tch::autocast(amp, || net.loss(&x, &y, s))?;
        loss.f_backward()?;
        opt.step(&params, lr, &[], &net.active(s), 1e-4)
    };
    let dnas_ms = interleave(&mut refs, warmup, rounds, chunk, &mut run_step, &sync)?;

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
    let _ = std::fs::remove_dir_all(&dir);
    report(refs, &dnas_ms, tuned, cuda)
}
