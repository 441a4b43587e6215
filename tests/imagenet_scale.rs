//! The paper's space at ImageNet scale on CPU: the shipped `dna_efficientnet` space (six blocks,
//! multi-cell, 24,450 in-block candidates) with the real EfficientNet-Lite0 teacher at 224², on an
//! ImageFolder of the setup's 20 labelled ImageNet photos — `dnas train` (a few steps), `evaluate`
//! (one small batch), `select` under DNA-a's 348M MACs, `retrain`, `export`, and the exported
//! child run through ONNX Runtime and tract. Each command's peak RSS is printed.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{d, input, model, photos_dir, run_ort, run_tract};
use dnas::space::arch::{build_child, graph_cost, Arch};
use dnas::space::SearchSpace;
use dnas::strategy::dna::evaluate::BlockRanking;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `dnas args`, its output into files under `dir`; returns (stdout, peak RSS in MiB) and
/// fails with the command's stderr unless it exits 0.
#[allow(clippy::zombie_processes)] // reaped by wait4, which also gives the child's own peak RSS
fn step(dir: &Path, label: &str, args: &[&str]) -> (String, f64) {
    let (out, err) = (dir.join(format!("{label}.out")), dir.join(format!("{label}.err")));
    let t0 = std::time::Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_dnas"))
        .args(args)
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    // wait4 gives this child's own resource usage (std's wait does not).
    let (mut status, mut usage): (libc::c_int, libc::rusage) = (0, unsafe { std::mem::zeroed() });
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as libc::pid_t, "wait4");
    let rss = usage.ru_maxrss as f64 / 1024.0;
    let stdout = std::fs::read_to_string(&out).unwrap();
    let stderr = std::fs::read_to_string(&err).unwrap();
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "dnas {}: status {status}\n{stderr}\n{stdout}", args.join(" "));
    eprintln!("{label:<9} {:>6.1} s  peak RSS {rss:>7.0} MiB", t0.elapsed().as_secs_f64());
    (stdout, rss)
}

/// An ImageFolder with ImageNet's 1,000 classes (`000`…`999`, so labels are the class indices):
/// each labelled photo linked into its class's folder, the same in train and val.
fn imagenet_folder(dir: &Path) -> PathBuf {
    let data = dir.join("imagenet");
    for split in ["train", "val"] {
        for c in 0..1000 {
            std::fs::create_dir_all(data.join(split).join(format!("{c:03}"))).unwrap();
        }
    }
    let mut n = 0;
    for e in std::fs::read_dir(photos_dir()).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_stem().unwrap().to_str().unwrap().to_string();
        if !name.starts_with("imagenet_") || p.extension().is_none_or(|x| x != "jpg") {
            continue;
        }
        let label: usize = name.rsplit('_').next().unwrap().parse().unwrap();
        for split in ["train", "val"] {
            std::os::unix::fs::symlink(&p, data.join(split).join(format!("{label:03}")).join(p.file_name().unwrap())).unwrap();
        }
        n += 1;
    }
    assert_eq!(n, 20, "the setup's 20 labelled ImageNet photos under {}", photos_dir().display());
    data
}

#[test]
fn the_papers_space_with_the_real_lite0_teacher_trains_evaluates_selects_retrains_and_exports_on_cpu() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let data = format!("folder:{}", imagenet_folder(dir).display());
    let teacher = model("efficientnet_lite0.onnx");
    let space_path = root().join("models/spaces/dna_efficientnet.json");
    let run = dir.join("run");
    let run_s = run.to_str().unwrap();
    let mut peak: f64 = 0.0;

    // Every block's every cell (15 supernets) a few steps of batch 2 at 224².
    let (_, rss) = step(
        dir,
        "train",
        &[
            "train",
            "--run",
            run_s,
            "--teacher",
            teacher.to_str().unwrap(),
            "--space",
            space_path.to_str().unwrap(),
            "--data",
            &data,
            "--held-out",
            "4",
            "--batch",
            "2",
            "--max-steps",
            "2",
            "--probe-batches",
            "1",
        ],
    );
    peak = peak.max(rss);

    // Every candidate of every block on one held-out batch.
    let (_, rss) = step(dir, "evaluate", &["evaluate", "--run", run_s, "--batch", "1", "--batches", "1", "--recal-batch", "2"]);
    peak = peak.max(rss);
    let counts: Vec<usize> = (0..6)
        .map(|b| {
            let text = std::fs::read_to_string(run.join(format!("eval/block-{b}.json"))).unwrap();
            let r: BlockRanking = serde_json::from_str(&text).unwrap();
            assert!(r.candidates.iter().all(|c| c.score.is_finite()), "block {b}");
            r.candidates.len()
        })
        .collect();
    assert_eq!(counts, vec![252, 1512, 1512, 3024, 18144, 6]);

    // DNA-a's budget (the single-cell v1 space's cheapest network had 411.7M MACs: no solution).
    let (out, rss) = step(dir, "select", &["select", "--run", run_s, "--max-macs", "348M", "--json"]);
    peak = peak.max(rss);
    let sel: serde_json::Value = serde_json::from_str(&out).unwrap();
    let arch_path = run.join("arch.json");
    let arch = Arch::load(&arch_path).unwrap();
    let (params, macs) = graph_cost(&build_child(&arch, 0).unwrap()).unwrap();
    assert!(macs <= 348_000_000, "{macs} MACs over DNA-a's budget");
    assert_eq!((arch.predicted.macs, arch.predicted.params), (macs, params), "selection's cost is the built child's");
    assert_eq!(sel["archs"][0]["predicted"]["macs"].as_u64(), Some(macs));
    // The pick is a member of the shipped space.
    let space = SearchSpace::load(&space_path).unwrap();
    let r = dnas::strategy::dna::run::resolve_with_teacher(&space, &dnas::onnx::read_file(&teacher).unwrap()).unwrap();
    r.point_of(&arch).unwrap();

    let rt = dir.join("retrain");
    let (_, rss) = step(
        dir,
        "retrain",
        &[
            "retrain",
            "--arch",
            arch_path.to_str().unwrap(),
            "-o",
            rt.to_str().unwrap(),
            "--data",
            &data,
            "--held-out",
            "4",
            "--batch",
            "2",
            "--max-steps",
            "2",
            "--no-validate",
        ],
    );
    peak = peak.max(rss);
    let onnx = dir.join("child.onnx");
    let (_, rss) = step(
        dir,
        "export",
        &[
            "export",
            "--arch",
            arch_path.to_str().unwrap(),
            "--weights",
            rt.join("final.safetensors").to_str().unwrap(),
            "-o",
            onnx.to_str().unwrap(),
        ],
    );
    peak = peak.max(rss);

    // ONNX Runtime and tract run the exported child and agree.
    let bytes = std::fs::read(&onnx).unwrap();
    let x = input(&[2, 3, 224, 224], 7);
    let (ort, tract) = (run_ort(&bytes, &x), run_tract(&bytes, &x));
    assert_eq!(ort.shape, vec![2, 1000]);
    let diff = d(&ort, &tract);
    assert!(diff.max_rel < 1e-4, "ORT vs tract: {diff:?}");
    eprintln!("child: {params} params, {macs} MACs; ORT vs tract max rel {:.1e}; peak RSS of any step {peak:.0} MiB", diff.max_rel);
}
