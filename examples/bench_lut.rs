//! Latency-table benchmark (not a test): measures the LUT of the embedded space
//! (models/spaces/fmnist_small.json on the shipped teacher) on one target, then for N random
//! architectures of that space compares the LUT's prediction (fixed part + Σ layer entries) with
//! the exported child's measured end-to-end p50 on the same target, in the same run. Goal: every
//! prediction within ±20%. Prints peak RSS.
//!
//! Run: tools/bench_lut.sh [--target ort-cpu-1t] [--archs 5] [--runs 200] [--seed 1]

use std::path::PathBuf;

use anyhow::Result;
use dnas::onnx::export::deploy_bytes;
use dnas::onnx::WriteOptions;
use dnas::space::arch::{build_child, Arch, ArchBlock, Predicted};
use dnas::space::SearchSpace;
use dnas::strategy::dna::lut::build_lut;
use dnas::strategy::dna::run::resolve_with_teacher;
use dnas::util::Rng;
use dnas::validate::latency::{measure, LatencyConfig, Target};

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned().unwrap_or_else(|| default.to_string())
}

fn main() -> Result<()> {
    let target = Target::parse(&arg("--target", "ort-cpu-1t"))?;
    let n: usize = arg("--archs", "5").parse()?;
    let runs: usize = arg("--runs", "200").parse()?;
    let seed: u64 = arg("--seed", "1").parse()?;
    let root = std::env::var_os("DNAS_ROOT").map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    let space = SearchSpace::load(&root.join("models/spaces/fmnist_small.json"))?;
    let teacher = dnas::onnx::read_file(&root.join("models/fmnist_teacher.onnx"))?;
    let r = resolve_with_teacher(&space, &teacher)?;
    let cfg = LatencyConfig { warmup: 20, runs };
    let t0 = std::time::Instant::now();
    let lut = build_lut(&r, target, cfg, &mut |_, _| {})?;
    println!(
        "LUT: {} layers + fixed {:.3} ms on {} in {:.1} s ({} warm-up + {} runs, p50, call overhead subtracted per layer)",
        lut.entries.len(),
        lut.fixed_ms,
        lut.provider,
        t0.elapsed().as_secs_f64(),
        cfg.warmup,
        cfg.runs
    );
    println!("{:<4} {:<60} {:>10} {:>12} {:>12} {:>8}", "#", "architecture (ops per block)", "MACs", "LUT ms", "measured ms", "error");
    let mut rng = Rng::new(seed);
    let mut worst: f64 = 0.0;
    for k in 0..n {
        let blocks: Vec<ArchBlock> = r
            .blocks
            .iter()
            .map(|b| {
                let c = &b.cells[rng.below(b.cells.len())];
                let layers = c.layers.iter().map(|s| s.ops[rng.below(s.ops.len())]).collect();
                ArchBlock {
                    name: b.name.clone(),
                    out: b.out,
                    stride: b.stride,
                    width: c.width,
                    layers,
                    candidate: String::new(),
                    score: 0.0,
                }
            })
            .collect();
        let arch = Arch {
            format: "dnas.arch".into(),
            version: 1,
            name: format!("random_{k}"),
            space: format!("{}@{}", space.name, space.version),
            teacher_sha256: String::new(),
            input: space.input,
            classes: space.classes,
            se: space.se,
            stem: space.stem.clone(),
            blocks,
            head: space.head.clone(),
            predicted: Predicted::default(),
            budget: serde_json::Value::Null,
        };
        let predicted =
            lut.fixed_ms + arch.layer_shapes().iter().flatten().map(|(op, s)| lut.layer_ms(&s.key(*op))).sum::<Result<f64>>()?;
        let g = build_child(&arch, 0)?;
        let (_, macs) = dnas::space::arch::graph_cost(&g)?;
        let bytes = deploy_bytes(&g, &[], &WriteOptions::default(), None)?;
        let row = measure(&bytes, &[1, space.input[0], space.input[1], space.input[2]], target, cfg)?;
        let measured = row.p50_ms.unwrap_or(f64::NAN);
        let err = predicted / measured - 1.0;
        worst = worst.max(err.abs());
        let ops: Vec<String> = arch.blocks.iter().map(|b| b.layers.iter().map(|o| o.to_string()).collect::<Vec<_>>().join("-")).collect();
        println!("{:<4} {:<60} {:>10} {:>12.3} {:>12.3} {:>+7.1}%", k, ops.join(" "), macs, predicted, measured, 100.0 * err);
    }
    println!("worst |error| {:.1}% (goal ≤ 20%)   peak RSS {:.0} MiB", 100.0 * worst, dnas::util::peak_rss_mib());
    Ok(())
}
