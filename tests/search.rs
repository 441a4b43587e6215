//! The DNA search through the binary on Fashion-MNIST with the shipped teacher: blocks trained
//! as two processes equal one process training both; evaluation shares prefixes and ranks every
//! candidate; selection returns an architecture whose child network has exactly the predicted
//! cost. Plus the spaces shipped in models/spaces and prefix sharing on counts.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use dnas::space::arch::{build_child, graph_cost, Arch};
use dnas::space::point::PointCost;
use dnas::space::{resolve_standalone, SearchSpace};
use dnas::strategy::dna::evaluate::{eval_counts, walk_prefixes, BlockRanking};
use dnas::strategy::dna::metric::DnaMetric;
use dnas::supernet::BlockNet;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

use common::TINY_SPACE;

fn dnas(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_dnas"));
    c.args(args);
    c
}

fn train_cmd(run: &Path, space: &Path, extra: &[&str]) -> Command {
    train_cmd_with(run, &root().join("models/fmnist_teacher.onnx"), space, extra)
}

fn train_cmd_with(run: &Path, teacher: &Path, space: &Path, extra: &[&str]) -> Command {
    let mut c = dnas(&["train", "--run"]);
    c.arg(run)
        .arg("--teacher")
        .arg(teacher)
        .arg("--space")
        .arg(space)
        .args(["--train-subset", "640", "--batch", "32", "--epochs", "2", "--held-out", "512", "--seed", "5"])
        .args(["--probe-batches", "1", "--threads", "1", "--workers", "1", "--json"])
        .args(extra);
    c
}

fn ok(mut c: Command) -> String {
    let out = c.output().unwrap();
    assert!(out.status.success(), "{:?} failed:\n{}\n{}", c, String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn ranking(run: &Path, b: usize) -> BlockRanking {
    serde_json::from_str(&std::fs::read_to_string(run.join(format!("eval/block-{b}.json"))).unwrap()).unwrap()
}

#[test]
fn two_processes_equal_one_and_the_search_runs_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let space = dir.path().join("space.json");
    std::fs::write(&space, TINY_SPACE).unwrap();
    let (one, two) = (dir.path().join("one"), dir.path().join("two"));

    // One process trains both blocks (one teacher forward per batch).
    let out: serde_json::Value = serde_json::from_str(&ok(train_cmd(&one, &space, &[]))).unwrap();
    for b in out["blocks"].as_array().unwrap() {
        let h: Vec<f64> = serde_json::from_value(b["held_out_mse"].clone()).unwrap();
        assert_eq!(h.len(), 3, "before + 2 epochs: {b}");
        assert!(h[2] < h[0], "block {} held-out MSE did not fall: {h:?}", b["name"]);
    }
    // Two processes, one block each, at the same time into one run directory.
    let spawn = |b: &str| train_cmd(&two, &space, &["--block", b]).stdout(std::process::Stdio::null()).spawn().unwrap();
    let (mut p0, mut p1) = (spawn("0"), spawn("1"));
    assert!(p0.wait().unwrap().success() && p1.wait().unwrap().success());
    for b in 0..2 {
        let w = format!("blocks/{b}/weights.safetensors");
        let (a, c) = (common::tensor_bytes(&one.join(&w)), common::tensor_bytes(&two.join(&w)));
        assert!(!a.is_empty());
        assert_eq!(a.keys().collect::<std::collections::BTreeSet<_>>(), c.keys().collect());
        for (k, v) in &a {
            assert!(v == &c[k], "block {b}: tensor '{k}' differs between one process and two");
        }
    }
    // A finished block is not retrained.
    let again: serde_json::Value = serde_json::from_str(&ok(train_cmd(&one, &space, &[]))).unwrap();
    assert!(again["blocks"].as_array().unwrap().iter().all(|b| b["skipped"] == true), "{again}");
    // A space that does not fit the teacher is refused before anything is written.
    let misfit = dir.path().join("misfit.json");
    std::fs::write(&misfit, TINY_SPACE.replace(r#""cut": 2"#, r#""cut": 4"#)).unwrap();
    let out = train_cmd(&dir.path().join("never"), &misfit, &[]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("blocks[1].stride"), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!dir.path().join("never").exists());
    // Conflicting settings for an existing run are refused.
    let out = train_cmd(&one, &space, &["--seed", "6"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("seed"), "{}", String::from_utf8_lossy(&out.stderr));

    // Evaluate both runs: same rankings; prefix sharing on the counts.
    for run in [&one, &two] {
        ok(dnas(&[
            "evaluate",
            "--run",
            run.to_str().unwrap(),
            "--batches",
            "2",
            "--batch",
            "64",
            "--recal-batch",
            "64",
            "--threads",
            "1",
            "--json",
        ]));
    }
    for b in 0..2 {
        let (a, c) = (ranking(&one, b), ranking(&two, b));
        let ids = |r: &BlockRanking| r.candidates.iter().map(|c| (c.id.clone(), c.score)).collect::<Vec<_>>();
        assert_eq!(ids(&a), ids(&c), "block {b} rankings differ");
        assert!(a.layer_evals < a.naive_layer_evals, "block {b}: {} vs {}", a.layer_evals, a.naive_layer_evals);
        assert!(a.candidates.windows(2).all(|w| w[0].score <= w[1].score));
        assert!(a.candidates.iter().all(|c| c.score.is_finite() && c.score > 0.0 && c.macs > 0 && c.params > 0));
    }
    // s1: cells of 1 and 2 layers with 2 ops: 2 + 4 candidates; s2: 3 × 3 minus skip on layer 0 = 2 × 3.
    assert_eq!(ranking(&one, 0).candidates.len(), 6);
    assert_eq!(ranking(&one, 1).candidates.len(), 6);

    // Select under a MAC budget between the cheapest and the dearest architecture.
    let r: Vec<BlockRanking> = (0..2).map(|b| ranking(&one, b)).collect();
    let min: u64 = r.iter().map(|b| b.candidates.iter().map(|c| c.macs).min().unwrap()).sum();
    let max: u64 = r.iter().map(|b| b.candidates.iter().map(|c| c.macs).max().unwrap()).sum();
    let out = dnas(&["select", "--run", one.to_str().unwrap(), "--max-macs", "1000"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no architecture fits"), "{}", String::from_utf8_lossy(&out.stderr));
    let fixed = {
        let s = SearchSpace::parse(TINY_SPACE).unwrap();
        dnas::strategy::dna::choose::space_fixed_cost(&s, s.head_in()[0]).unwrap().1
    };
    let budget = fixed + (min + max) / 2;
    let out: serde_json::Value = serde_json::from_str(&ok(dnas(&[
        "select",
        "--run",
        one.to_str().unwrap(),
        "--max-macs",
        &budget.to_string(),
        "--top",
        "2",
        "--json",
    ])))
    .unwrap();
    let arch = Arch::load(&one.join("arch.json")).unwrap();
    assert!(one.join("arch-2.json").exists());
    assert!(arch.predicted.macs <= budget, "{} > {budget}", arch.predicted.macs);
    // Brute force over the rankings: the selection is the best pair within the budget, in the
    // default block metric (DNA's score) and in cell-z.
    let brute = |m: DnaMetric| {
        let (l0, l1) = (m.block_losses(&r[0]), m.block_losses(&r[1]));
        let mut best = f64::INFINITY;
        for (a, la) in r[0].candidates.iter().zip(&l0) {
            for (b, lb) in r[1].candidates.iter().zip(&l1) {
                if fixed + a.macs + b.macs <= budget {
                    best = best.min(la + lb);
                }
            }
        }
        best
    };
    let best = brute(DnaMetric::Score);
    assert!((arch.predicted.score - best).abs() < 1e-12, "{} vs brute force {best}: {out}", arch.predicted.score);
    assert_eq!(arch.budget["metric"], "score");
    assert_eq!(arch.predicted.higher_is_better, Some(false), "DNA's score is a loss");
    assert!(arch.predicted.score_kind.starts_with("dna:score"), "{}", arch.predicted.score_kind);
    assert_eq!(arch.teacher_sha256.len(), 64);
    let z_arch = one.join("arch-cell-z.json");
    ok(dnas(&[
        "select",
        "--run",
        one.to_str().unwrap(),
        "--max-macs",
        &budget.to_string(),
        "--metric",
        "cell-z",
        "-o",
        z_arch.to_str().unwrap(),
    ]));
    let by_z = Arch::load(&z_arch).unwrap();
    let best = brute(DnaMetric::CellZ);
    assert!((by_z.predicted.score - best).abs() < 1e-12, "cell-z: {} vs brute force {best}", by_z.predicted.score);
    // The child built from the JSON costs exactly what selection added up.
    let g = build_child(&arch, 0).unwrap();
    let (params, macs) = graph_cost(&g).unwrap();
    assert_eq!((params, macs), (arch.predicted.params, arch.predicted.macs));
}

#[test]
fn prefix_sharing_on_a_four_layer_six_op_cell() {
    let space = SearchSpace::parse(
        r#"{"name": "p", "version": 1, "input": [1, 6, 6], "classes": 2,
        "stem": {"channels": 4, "kernel": 3, "stride": 1, "cut": 0},
        "blocks": [{"name": "b", "cut": 1, "out": 4, "stride": 1, "cells": [{"layers": 4}],
                    "ops": ["ir_k3_e3", "ir_k3_e6", "ir_k5_e3", "ir_k5_e6", "ir_k7_e3", "ir_k7_e6"]}],
        "head": {"channels": 0}}"#,
    )
    .unwrap();
    let r = resolve_standalone(&space).unwrap();
    let cell = &r.blocks[0].cells[0];
    assert_eq!(cell.paths(), 1296);
    let (shared, naive) = eval_counts(cell);
    assert_eq!((shared, naive), (6 + 36 + 216 + 1296, 4 * 1296));
    assert!(shared as f64 <= 0.33 * naive as f64);
    // The walk does exactly `shared` layer evaluations, and its outputs are the paths' outputs.
    let net = BlockNet::new(&r.blocks[0], 0.25, 3, tch::Device::Cpu).unwrap();
    let x = tch::Tensor::randn([2, 4, 6, 6], (tch::Kind::Float, tch::Device::Cpu));
    let mut visits = 0u64;
    let mut outs: HashMap<usize, tch::Tensor> = HashMap::new();
    let c = &net.cells[0];
    walk_prefixes(
        cell,
        &x,
        &mut |prefix, h| {
            visits += 1;
            let (l, o) = (prefix.len() - 1, prefix[prefix.len() - 1]);
            c.units[l][o].as_ref().unwrap().forward(h, false)
        },
        &mut |i, y| {
            if i % 97 == 0 {
                outs.insert(i, y.copy());
            }
            Ok(())
        },
    )
    .unwrap();
    assert_eq!(visits, shared);
    for (i, y) in &outs {
        let direct = c.forward(&cell.path(*i), &x, false).unwrap();
        assert!(y.allclose(&direct, 0.0, 0.0, false), "path {i}");
    }
}

#[test]
fn shipped_spaces_load_and_fit_their_teachers() {
    let dna = SearchSpace::load(&root().join("models/spaces/dna_efficientnet.json")).unwrap();
    // On a real EfficientNet-Lite0 teacher the DNA space binds to its stage boundaries.
    let lite0 = dnas::onnx::read_file(&common::model("efficientnet_lite0.onnx")).unwrap();
    let r = dnas::strategy::dna::run::resolve_with_teacher(&dna, &lite0).unwrap();
    let per_block: Vec<usize> = r.blocks.iter().map(|b| b.candidates()).collect();
    // Multi-cell: 2+3, 3+4, 3+4 layers; 3+4 at two widths; 4+5 at two widths; 1.
    assert_eq!(per_block, vec![36 + 216, 216 + 1296, 216 + 1296, 2 * (216 + 1296), 2 * (1296 + 7776), 6]);
    assert_eq!(per_block.iter().sum::<usize>(), 24_450);
    let widths: Vec<usize> = r.blocks.iter().map(|b| b.teacher_out_shape[0]).collect();
    assert_eq!(widths, vec![24, 40, 80, 112, 192, 320]);
    // The supernet reads and writes the teacher's widths; the child keeps the cell's.
    let c = &r.blocks[3].cells[0];
    assert_eq!((c.layers[0].supernet.cin, c.layers[0].supernet.cout, c.layers[2].supernet.cout), (80, 96, 112));
    assert_eq!((c.layers[0].child.cin, c.layers[2].child.cout), (80, 96));
    // Block boundaries whose width the previous choice sets.
    assert_eq!(r.blocks[4].in_widths, vec![96, 112]);
    assert_eq!(r.blocks[5].in_widths, vec![160, 192]);
    assert_eq!(dna.varied_outs().map(|(n, _)| n), Some("stage5"));

    let small = SearchSpace::load(&root().join("models/spaces/fmnist_small.json")).unwrap();
    let teacher = dnas::onnx::read_file(&root().join("models/fmnist_teacher.onnx")).unwrap();
    let r = dnas::strategy::dna::run::resolve_with_teacher(&small, &teacher).unwrap();
    let outs: Vec<[usize; 3]> = r.blocks.iter().map(|b| b.teacher_out_shape).collect();
    assert_eq!(outs, vec![[24, 14, 14], [40, 7, 7], [80, 4, 4], [112, 4, 4]]);

    // Bad spaces: errors name the field.
    let bad = std::fs::read_to_string(root().join("models/spaces/fmnist_small.json")).unwrap().replacen("\"cut\": 2", "\"cut\": 3", 1);
    let e = format!("{:#}", dnas::strategy::dna::run::resolve_with_teacher(&SearchSpace::parse(&bad).unwrap(), &teacher).unwrap_err());
    assert!(e.contains("blocks[1].stride"), "{e}");
    let bad = std::fs::read_to_string(root().join("models/spaces/fmnist_small.json")).unwrap().replacen("\"cut\": 4", "\"cut\": 9", 1);
    let e = format!("{:#}", dnas::strategy::dna::run::resolve_with_teacher(&SearchSpace::parse(&bad).unwrap(), &teacher).unwrap_err());
    assert!(e.contains("blocks[3].cut") && e.contains("#9"), "{e}");
}

/// The shipped teacher as a TensorFlow converter would write it: an NHWC input with a fixed batch
/// of 1 (a Transpose NHWC → NCHW in front of the original graph); with `bake_batch`, also a
/// Reshape of the logits to [1, 10], which no other batch can run.
fn nhwc_teacher(path: &Path, bake_batch: bool) {
    use dnas::ir::{Dim, Node, Op, Tensor};
    let mut g = dnas::onnx::read_file(&root().join("models/fmnist_teacher.onnx")).unwrap();
    let input = g.inputs[0].name.clone();
    let nhwc = format!("{input}_nhwc");
    g.nodes.insert(
        0,
        Node {
            name: "to_nchw".into(),
            op: Op::Transpose { perm: Some(vec![0, 3, 1, 2]) },
            inputs: vec![nhwc.clone()],
            outputs: vec![input],
        },
    );
    g.inputs[0].name = nhwc;
    g.inputs[0].shape = Some([1, 28, 28, 1].map(Dim::Fixed).to_vec());
    if bake_batch {
        let out = g.outputs[0].name.clone();
        let baked = format!("{out}_pre");
        for n in &mut g.nodes {
            for o in &mut n.outputs {
                if *o == out {
                    *o = baked.clone();
                }
            }
        }
        g.initializers.insert("baked_shape".into(), Tensor::i64(vec![2], vec![1, 10]));
        g.nodes.push(Node {
            name: "bake".into(),
            op: Op::Reshape { allowzero: false },
            inputs: vec![baked, "baked_shape".into()],
            outputs: vec![out],
        });
    }
    for o in &mut g.outputs {
        if let Some(d) = o.shape.as_mut().and_then(|s| s.first_mut()) {
            *d = Dim::Fixed(1);
        }
    }
    let opts = dnas::onnx::WriteOptions { batch_dim: None, ..Default::default() };
    std::fs::write(path, dnas::onnx::write_model(&g, &opts).unwrap()).unwrap();
}

#[test]
fn nhwc_fixed_batch_teachers_train_and_rank_as_their_nchw_original() {
    let dir = tempfile::tempdir().unwrap();
    let space = dir.path().join("space.json");
    std::fs::write(&space, TINY_SPACE).unwrap();
    let short = ["--max-steps", "6"];
    let reference = dir.path().join("nchw");
    ok(train_cmd(&reference, &space, &short));
    ok(dnas(&["evaluate", "--run", reference.to_str().unwrap(), "--batches", "1", "--threads", "1"]));
    // Batch-agnostic inside (the batch made symbolic), and baked into a Reshape (run in chunks of 1).
    for (name, bake, note) in [("nhwc", false, "made symbolic"), ("baked", true, "1 image at a time")] {
        let teacher = dir.path().join(format!("{name}.onnx"));
        nhwc_teacher(&teacher, bake);
        let run = dir.path().join(name);
        let out = train_cmd_with(&run, &teacher, &space, &short).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{name}: {err}");
        assert!(err.contains("NHWC input") && err.contains(note), "{name}: the adaptation is not reported: {err}");
        ok(dnas(&["evaluate", "--run", run.to_str().unwrap(), "--batches", "1", "--threads", "1"]));
        for k in 0..2 {
            let done = |r: &Path| -> serde_json::Value {
                serde_json::from_str(&std::fs::read_to_string(r.join(format!("blocks/{k}/done.json"))).unwrap()).unwrap()
            };
            if !bake {
                // The symbolic batch runs the same kernels on the same batches: the same bits.
                let w = |r: &Path| std::fs::read(r.join(format!("blocks/{k}/weights.safetensors"))).unwrap();
                assert!(w(&reference) == w(&run), "{name}, block {k}: other weights than with the NCHW teacher");
                let ids = |r: &Path| ranking(r, k).candidates.iter().map(|c| format!("{} {}", c.id, c.score)).collect::<Vec<_>>();
                assert_eq!(ids(&reference), ids(&run), "{name}, block {k}: another ranking");
            } else {
                // Chunks of 1 run other convolution kernels than batches of 32: the teacher's
                // features agree to float rounding (the held-out loss of the untrained block),
                // while Adam's sign-like steps on near-zero gradients let the weights drift apart.
                let (a, b) = (done(&reference)["held_out_mse"][0].as_f64().unwrap(), done(&run)["held_out_mse"][0].as_f64().unwrap());
                assert!((a - b).abs() <= 1e-5 * a.abs(), "{name}, block {k}: held-out loss before training {b} vs {a}");
            }
        }
    }
}

/// timm's MBConv arithmetic, written out independently of dnas's builder: (MACs, and the extra
/// operations DNA's reference `flops_counter.py` adds — BatchNorm 2 per element, conv biases,
/// pooling 1 per input element).
fn timm_count(a: &Arch) -> (u64, u64) {
    let (mut macs, mut extra) = (0u64, 0u64);
    let (mut h, mut c) = (a.input[1].div_ceil(a.stem.stride) as u64, a.stem.channels as u64);
    macs += 3 * 9 * c * h * h;
    extra += 2 * c * h * h;
    let mut mb = |cin: u64, cout: u64, k: u64, e: u64, s: u64, h: u64| -> u64 {
        let mid = cin * e;
        if e != 1 {
            macs += cin * mid * h * h;
            extra += 2 * mid * h * h;
        }
        let ho = h.div_ceil(s);
        let se = (cin / 4).max(1);
        macs += k * k * mid * ho * ho + 2 * mid * se + mid * cout * ho * ho;
        extra += 2 * mid * ho * ho + mid * ho * ho + se + mid + 2 * cout * ho * ho;
        ho
    };
    let op = |o: &str| -> (u64, u64) {
        let p: Vec<u64> = o.split('_').skip(1).map(|t| t[1..].parse().unwrap()).collect();
        (p[0], p[1])
    };
    for l in &a.stem.layers {
        let (k, e) = op(serde_json::to_value(l.op).unwrap().as_str().unwrap());
        h = mb(c, l.out as u64, k, e, 1, h);
        c = l.out as u64;
    }
    for b in &a.blocks {
        for (i, l) in b.layers.iter().enumerate() {
            let (k, e) = op(serde_json::to_value(l).unwrap().as_str().unwrap());
            h = mb(c, b.out as u64, k, e, if i == 0 { b.stride as u64 } else { 1 }, h);
            c = b.out as u64;
        }
    }
    let head = a.head.channels as u64;
    macs += c * head * h * h + head * a.classes as u64;
    extra += 2 * head * h * h + head * h * h;
    (macs, extra)
}

#[test]
fn published_dna_architectures_count_the_papers_params_and_macs() {
    // The DNA paper's table (Li et al., CVPR 2020): params, MACs.
    let paper = [("a", 4.2e6, 348e6), ("b", 4.9e6, 394e6), ("c", 5.3e6, 466e6), ("d", 6.4e6, 611e6)];
    let space = SearchSpace::load(&root().join("models/spaces/dna_efficientnet.json")).unwrap();
    let lite0 = dnas::onnx::read_file(&common::model("efficientnet_lite0.onnx")).unwrap();
    let r = dnas::strategy::dna::run::resolve_with_teacher(&space, &lite0).unwrap();
    for (k, p_params, p_macs) in paper {
        let arch = Arch::load(&root().join(format!("models/archs/dna_{k}.json"))).unwrap();
        let g = build_child(&arch, 0).unwrap();
        let (params, macs) = graph_cost(&g).unwrap();
        let (timm_macs, extra) = timm_count(&arch);
        // The child network dnas builds is timm's: the same multiply-accumulates, exactly.
        assert_eq!(macs, timm_macs, "DNA-{k}: dnas counts {macs} MACs, timm's MBConv arithmetic {timm_macs}");
        let dev = |x: f64, y: f64| 100.0 * (x / y - 1.0);
        eprintln!(
            "DNA-{k}: params {params} ({:+.1}% vs the paper), MACs {macs} ({:+.1}%), with the reference counter's BN/bias/pool \
             operations {} ({:+.1}%)",
            dev(params as f64, p_params),
            dev(macs as f64, p_macs),
            macs + extra,
            dev((macs + extra) as f64, p_macs)
        );
        assert!(dev(params as f64, p_params).abs() <= 3.0, "DNA-{k}: {params} parameters, the paper {p_params}");
        // A member of the shipped space (bound to the real Lite0 teacher it is searched with),
        // whose cost there — first layers at the width the previous cell writes — is the child's.
        let point = r.point_of(&arch).unwrap_or_else(|e| panic!("DNA-{k}: {e:#}"));
        assert_eq!(PointCost::new(&r).unwrap().cost(&r, &point).unwrap(), (params, macs), "DNA-{k}");
        assert_eq!(arch.space, "dna_efficientnet@2");
    }
}
