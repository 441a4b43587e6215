//! One-shot supernet step benchmark (not a test): one SPOS training step of the whole-network
//! one-shot supernet of the embedded space (models/spaces/fmnist_small.json) in dnas — draw a path
//! under the budget, forward stem → the path's ops → head, cross-entropy, backward, AdamW on the
//! path's parameters only — against the same step in PyTorch eager (tools/bench_oneshot_ref.py:
//! same layer shapes, the same paths, batch and threads), measured in the same run, interleaved
//! (see examples/common/interleave.rs). `--kd`: Cream's step instead — a second (board) path runs
//! under no_grad on the same batch and the loss is (KD + CE)/2.
//!
//! Run: tools/bench_oneshot.sh [--batch B] [--steps N] [--rounds R] [--threads T] [--kd] [--cuda] [--amp]

mod common;

use anyhow::{bail, Result};
use common::interleave::{arg, check_params, device_from_flags, flag, interleave, report, root, spawn_references, zero_grads};
use dnas::space::point::Point;
use dnas::space::{LayerOp, SearchSpace};
use dnas::strategy::dna::run::resolve_with_teacher;
use dnas::strategy::oneshot::loss::{cream_loss, soft_cross_entropy};
use dnas::strategy::oneshot::{OneShotNet, PathBudget};
use dnas::train::optim::{OptimConfig, Optimizer};
use tch::{Kind, Tensor as T};

/// The reference's form of a path: per block [cell, [op per layer]].
fn path_json(p: &Point) -> serde_json::Value {
    serde_json::Value::Array(p.blocks.iter().map(|(c, ops)| serde_json::json!([c, ops])).collect())
}

fn main() -> Result<()> {
    let tuned = dnas::util::malloc::tune_for_tensors();
    let (batch, steps, threads) = (arg("--batch", 128), arg("--steps", 30), arg("--threads", 2));
    let rounds = arg("--rounds", 5).max(1);
    let (device, amp, sync) = device_from_flags()?;
    let cuda = device.is_cuda();
    let kd = flag("--kd");
    let (warmup, chunk) = (5, steps.div_ceil(rounds).max(1));
    tch::set_num_threads(threads as i32);
    let root = root();
    let space = SearchSpace::load(&root.join("models/spaces/fmnist_small.json"))?;
    let teacher = dnas::onnx::read_file(&root.join("models/fmnist_teacher.onnx"))?;
    let r = resolve_with_teacher(&space, &teacher)?;
    // The demo's budget, as `dnas search` samples under it.
    let budget = PathBudget { max_macs: Some(7_070_000), max_params: Some(250_000) };
    let net = OneShotNet::new(&r, budget, 0, device)?;
    let total = warmup + rounds * chunk;
    let paths: Vec<Point> = (0..total).map(|s| net.sample(s)).collect::<Result<_>>()?;
    let boards: Vec<Point> = (0..total).map(|s| net.sample(total + s)).collect::<Result<_>>()?;
    let input = space.input;
    let x = dnas::exec::channels_last(&T::randn([batch as i64, input[0] as i64, input[1] as i64, input[2] as i64], (Kind::Float, device)))?;
    let y = T::randint(space.classes as i64, [batch as i64], (Kind::Int64, device));
    let params = net.parameters();
    let mut opt = Optimizer::new(OptimConfig::Adamw { beta1: 0.9, beta2: 0.999, eps: 1e-8 });
    let lr = 1e-3;

    // The same network for the references: stem, every block's cells × layers × ops, head.
    let layer_json = |s: &dnas::space::LayerShape, ops: &[LayerOp]| serde_json::json!({"cin": s.cin, "cout": s.cout, "stride": s.stride, "ops": ops.iter().map(|o| o.to_string()).collect::<Vec<_>>()});
    if r.blocks.iter().any(|b| b.cells.iter().any(|c| c.layers.iter().any(|l| l.ops.iter().any(|o| o.is_skip())))) {
        bail!("the reference has no 'skip' op");
    }
    let blocks: Vec<serde_json::Value> = r
        .blocks
        .iter()
        .map(|b| {
            serde_json::json!({"cells": b.cells.iter().map(|c| c.layers.iter().map(|l| layer_json(&l.child, &l.ops)).collect::<Vec<_>>()).collect::<Vec<_>>()})
        })
        .collect();
    let stem_layers: Vec<serde_json::Value> =
        space.stem.layers.iter().map(|l| serde_json::json!({"op": l.op.to_string(), "out": l.out, "stride": l.stride})).collect();
    let spec = serde_json::json!({"se": space.se, "batch": batch, "threads": threads, "warmup": warmup, "lr": lr, "kd": kd,
        "input": input, "classes": space.classes, "head_in": space.head_in()[0], "head": space.head.channels,
        "stem": {"channels": space.stem.channels, "kernel": space.stem.kernel, "stride": space.stem.stride, "layers": stem_layers},
        "blocks": blocks,
        "paths": paths.iter().zip(&boards).map(|(p, b)| serde_json::json!([path_json(p), path_json(b)])).collect::<Vec<_>>()});
    let (mut refs, dir) = spawn_references(&root.join("tools/bench_oneshot_ref.py"), &spec, "oneshot", cuda, amp)?;

    check_params(&refs, params.iter().map(|(_, p, _)| p.numel() as i64).sum())?;
    let mut run_step = |s: usize| -> Result<()> {
        zero_grads(&params);
        let loss = tch::autocast(amp, || -> Result<T> {
            let logits = net.forward(&paths[s], &x, true)?;
            let ce = logits.f_cross_entropy_loss::<T>(&y, None, tch::Reduction::Mean, -100, 0.0)?;
            if !kd {
                return Ok(ce);
            }
            let t = {
                let _g = tch::no_grad_guard();
                net.forward(&boards[s], &x, true)?.detach()
            };
            cream_loss(&soft_cross_entropy(&logits, &t)?, &ce, 1.0)
        })?;
        loss.f_backward()?;
        opt.step(&params, lr, &[], &net.active(&paths[s]), 1e-4)
    };
    let dnas_ms = interleave(&mut refs, warmup, rounds, chunk, &mut run_step, &sync)?;
    let layers: f64 = paths.iter().map(|p| p.blocks.iter().map(|(_, o)| o.len()).sum::<usize>() as f64).sum::<f64>() / paths.len() as f64;
    println!(
        "one-shot supernet of '{}' ({}): {} blocks, {layers:.1} searchable layers per sampled path on average, input {:?}, batch {batch}, {threads} threads, {}{}",
        space.name,
        if kd { "Cream step: sampled path + board path under no_grad, (KD + CE)/2" } else { "SPOS step: CE" },
        r.blocks.len(),
        input,
        if cuda { "CUDA" } else { "CPU" },
        if amp { " AMP float16" } else { " float32" }
    );
    println!("{rounds} interleaved rounds × {chunk} steps after {warmup} warm-up steps; ms/step = median over rounds (best round)");
    let _ = std::fs::remove_dir_all(&dir);
    report(refs, &dnas_ms, tuned, cuda)
}
