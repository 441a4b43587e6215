//! Issue 5: the searched child exported as ONNX (round trip against the trained tch module, ORT,
//! tract, onnx.checker, the ORT mobile usability checker), the budget gate's exit codes, the
//! latency table and the retrain/KD path — through the binary where a user would use it.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{d, input, run_ort, run_tch, run_tract};
use dnas::space::arch::{build_child, Arch};
use dnas::train::checkpoint::read_tensors;
use dnas::train::Trainable;
use dnas::validate::Array;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn dnas(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dnas")).args(args).output().expect("run dnas")
}

fn text(o: &Output) -> String {
    format!("exit {:?}\n{}\n{}", o.status.code(), String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn python(args: &[&str]) -> Output {
    Command::new("python").args(args).output().expect("python (tools/test.sh puts the venv first on PATH)")
}

const ARCH: &str = "models/archs/fmnist_searched.json";
const WEIGHTS: &str = "models/fmnist_searched.safetensors";

fn export(out: &Path, extra: &[&str]) -> Vec<u8> {
    let (a, w) = (root().join(ARCH), root().join(WEIGHTS));
    let mut args = vec!["export", "--arch", a.to_str().unwrap(), "--weights", w.to_str().unwrap(), "-o", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    let o = dnas(&args);
    assert!(o.status.success(), "{}", text(&o));
    std::fs::read(out).unwrap()
}

#[test]
fn export_round_trips_to_the_trained_module_and_matches_ort_and_tract() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = export(&dir.path().join("m.onnx"), &[]);
    // The trained child in tch (BatchNorm unfolded, inference mode) is the reference.
    let arch = Arch::load(&root().join(ARCH)).unwrap();
    let mut m = Trainable::new(build_child(&arch, 0).unwrap(), tch::Device::Cpu).unwrap();
    m.load_state(&read_tensors(&root().join(WEIGHTS)).unwrap()).unwrap();
    let x = input(&[3, 1, 28, 28], 7);
    let want = {
        let _g = tch::no_grad_guard();
        Array::from_tch(&m.forward(&x.to_tch().unwrap(), false).unwrap()).unwrap()
    };
    let tch_rt = d(&want, &run_tch(&bytes, &x));
    assert!(tch_rt.max_rel <= 1e-5, "export → import → tch vs the trained module: {tch_rt:?}");
    for (name, got) in [("ORT", run_ort(&bytes, &x)), ("tract", run_tract(&bytes, &x))] {
        let e = d(&want, &got);
        assert!(e.max_rel <= 1e-4, "{name} vs the trained module: {e:?}");
    }
    // What a deployable file must (not) hold.
    let g = dnas::onnx::read_model(&bytes).unwrap();
    assert!(g
        .nodes
        .iter()
        .all(|n| !matches!(n.op, dnas::ir::Op::Identity | dnas::ir::Op::Dropout | dnas::ir::Op::BatchNormalization { .. })));
    assert!(g.nodes.iter().all(|n| n.op.name() != "Flatten"), "the classifier must use Reshape (CoreML ML Program rejects Flatten)");
    let used: std::collections::HashSet<&String> = g.nodes.iter().flat_map(|n| n.inputs.iter()).collect();
    assert!(g.initializers.keys().all(|k| used.contains(k)), "dead initializers");
    for key in ["dnas.arch", "dnas.version", "dnas.preprocessing", "dnas.dataset"] {
        assert!(g.metadata.contains_key(key), "metadata_props lacks {key}: {:?}", g.metadata.keys());
    }
    // onnx's own checker, full check (shape inference included), and IR 8 / opset 17.
    let p = dir.path().join("m.onnx");
    let o = python(&[
        "-c",
        "import onnx,sys; m=onnx.load(sys.argv[1]); onnx.checker.check_model(m, full_check=True); \
         print(m.ir_version, [o.version for o in m.opset_import if o.domain in ('', 'ai.onnx')][0])",
        p.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "onnx.checker: {}", text(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "8 17");
}

#[test]
fn fixed_batch_export_is_fully_supported_by_nnapi_and_coreml() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m1.onnx");
    export(&p, &["--batch", "1"]);
    let o = python(&["-m", "onnxruntime.tools.check_onnx_model_mobile_usability", p.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let log = text(&o);
    for ep in ["NNAPI", "CoreML NeuralNetwork", "CoreML MLProgram"] {
        assert!(log.contains(&format!("Model should perform well with {ep} as is: YES")), "{ep} not fully supported:\n{log}");
    }
    for ep in ["NNAPI EP", "CoreML NeuralNetwork EP", "CoreML MLProgram EP"] {
        assert!(log.contains(&format!("1 partitions with a total of 77/77 nodes can be handled by the {ep}")), "{ep}:\n{log}");
    }
}

/// `dnas validate` of the shipped student against `budget`, no accuracy, 1 warm-up + 5 timed runs.
fn validate_on(budget: &Path, targets: &str, extra: &[&str], report: &Path) -> Output {
    let model = root().join("models/fmnist_searched.onnx");
    let mut args = vec![
        "validate",
        model.to_str().unwrap(),
        "--budget",
        budget.to_str().unwrap(),
        "--no-accuracy",
        "--targets",
        targets,
        "--warmup",
        "1",
        "--runs",
        "5",
        "--report",
        report.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    dnas(&args)
}

fn validate(budget: &str, dir: &Path) -> Output {
    let b = dir.join("budget.json");
    std::fs::write(&b, budget).unwrap();
    validate_on(&b, "ort-cpu-1t,ort-xnnpack-1t", &[], &dir.join("report.json"))
}

#[test]
fn budget_gate_exit_codes_and_the_violated_line() {
    let dir = tempfile::tempdir().unwrap();
    let teacher = root().join("models/fmnist_teacher.onnx");
    let ok = format!(
        r#"{{
  "format": "dnas.budget", "version": 1, "name": "ok",
  "max_macs": 7100000,
  "reference": "{}",
  "latency": [
    {{"target": "ort-cpu-1t", "max_ratio": 100}},
    {{"target": "ort-xnnpack-1t", "max_ms": 1}}
  ]
}}"#,
        teacher.display()
    );
    let o = validate(&ok, dir.path());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // The PyPI CPU wheel has no XNNPACK: an unavailable row, its line skipped, never CPU numbers.
    assert!(text(&o).contains("unavailable: the loaded onnxruntime has no XnnpackExecutionProvider"), "{}", text(&o));
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.path().join("report.json")).unwrap()).unwrap();
    assert_eq!(r["pass"], true);
    assert_eq!(r["skipped"][0]["field"], "latency[1]");
    let row = &r["latency"][0];
    assert_eq!(row["target"], "ort-cpu-1t");
    assert!(row["p50_ms"].as_f64().unwrap() > 0.0 && row["p99_ms"].as_f64() >= row["p50_ms"].as_f64());
    assert_eq!(row["threads"], 1);

    // Deliberately violated: MACs on line 3, and a required target that is missing.
    let bad = ok.replace("7100000", "1000").replace(r#""max_ms": 1}"#, r#""max_ms": 1, "required": true}"#);
    let o = validate(&bad, dir.path());
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = text(&o);
    assert!(out.contains("budget.json:3 max_macs: 6993936 MACs > 1000"), "{out}");
    assert!(out.contains("budget.json:7 latency[1]: ort-xnnpack-1t is required"), "{out}");

    // A malformed budget is an error (exit 2) naming the field.
    let o = validate(&ok.replace("ort-cpu-1t", "ort-gpu"), dir.path());
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("latency/0/target") || text(&o).contains("latency[0].target"), "{}", text(&o));
}

#[test]
fn latency_table_covers_every_candidate_layer_and_select_uses_it() {
    let dir = tempfile::tempdir().unwrap();
    let lut_path = dir.path().join("lut.json");
    let (space, teacher) = (root().join("models/spaces/fmnist_small.json"), root().join("models/fmnist_teacher.onnx"));
    let o = dnas(&[
        "latency-lut",
        "--space",
        space.to_str().unwrap(),
        "--teacher",
        teacher.to_str().unwrap(),
        "--target",
        "ort-cpu-1t",
        "--warmup",
        "1",
        "--runs",
        "3",
        "-o",
        lut_path.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let lut = dnas::strategy::dna::choose::LatencyLut::load(&lut_path).unwrap();
    let s = dnas::space::SearchSpace::load(&space).unwrap();
    let r = dnas::strategy::dna::run::resolve_with_teacher(&s, &dnas::onnx::read_file(&teacher).unwrap()).unwrap();
    let keys = dnas::strategy::dna::lut::layer_keys(&r);
    assert_eq!(lut.entries.len(), keys.len());
    assert!(keys.keys().all(|k| lut.entries.get(k).is_some_and(|v| *v >= 0.0)));
    assert!(lut.fixed_ms > 0.0);
    assert_eq!(lut.provider, "ort-cpu-1t");
    // Every layer of the shipped searched architecture has an entry.
    let arch = Arch::load(&root().join(ARCH)).unwrap();
    for (op, shape) in arch.layer_shapes().iter().flatten() {
        lut.layer_ms(&shape.key(*op)).unwrap();
    }
}

#[test]
fn retrain_with_kd_writes_weights_that_export_reads_and_bad_inputs_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("rt");
    let (arch, teacher) = (root().join(ARCH), root().join("models/fmnist_teacher.onnx"));
    let o = dnas(&[
        "retrain",
        "--arch",
        arch.to_str().unwrap(),
        "-o",
        run.to_str().unwrap(),
        "--kd-teacher",
        teacher.to_str().unwrap(),
        "--train-subset",
        "256",
        "--held-out",
        "64",
        "--batch",
        "64",
        "--epochs",
        "1",
        "--no-validate",
        "--json",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["macs"], 6993936);
    assert_eq!(r["train"]["steps"], 4);
    let rec: serde_json::Value = serde_json::from_slice(&std::fs::read(run.join("run.json")).unwrap()).unwrap();
    assert_eq!(rec["kd"]["temperature"], 4.0);
    assert_eq!(rec["kd"]["alpha"], 0.5);
    let w = run.join("final.safetensors");
    let out = dir.path().join("child.onnx");
    let o = dnas(&["export", "--arch", arch.to_str().unwrap(), "--weights", w.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    // The exported file equals the model.onnx retrain wrote, in every output.
    let x = input(&[2, 1, 28, 28], 3);
    let e = d(&run_ort(&std::fs::read(run.join("model.onnx")).unwrap(), &x), &run_ort(&std::fs::read(&out).unwrap(), &x));
    assert!(e.max_abs == 0.0, "{e:?}");

    // Weights of another network: exit 2 naming the weights file and a missing tensor.
    let o = dnas(&["export", "--arch", arch.to_str().unwrap(), "--weights", teacher.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    // A KD teacher whose input does not match: named.
    let wrong = dir.path().join("wrong.onnx");
    let lite = common::model("mobilenet_v3_small_op17.onnx");
    std::fs::copy(lite, &wrong).unwrap();
    let o = dnas(&[
        "retrain",
        "--arch",
        arch.to_str().unwrap(),
        "-o",
        dir.path().join("rt2").to_str().unwrap(),
        "--kd-teacher",
        wrong.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("wrong.onnx") && text(&o).contains("takes input"), "{}", text(&o));
}

/// `dnas validate` with a reference times ONNX Runtime targets in a child process whose two
/// sessions share one intra-op pool (`dnas time-pair`), tract in the calling process, and
/// `--timing sequential` as two blocks; the hidden child refuses what it cannot time, exit 2.
#[test]
fn interleaved_gate_times_ort_targets_in_a_child_with_one_shared_pool() {
    let dir = tempfile::tempdir().unwrap();
    let model = root().join("models/fmnist_searched.onnx");
    let teacher = root().join("models/fmnist_teacher.onnx");
    let budget = dir.path().join("budget.json");
    let b = serde_json::json!({
        "format": "dnas.budget", "version": 1, "name": "ratio", "reference": teacher,
        "latency": [{"target": "ort-cpu-2t", "max_ratio": 100}, {"target": "tract", "max_ratio": 100}]
    });
    std::fs::write(&budget, b.to_string()).unwrap();
    let run = |timing: &str| {
        let report = dir.path().join(format!("report-{timing}.json"));
        let o = validate_on(&budget, "ort-cpu-2t,tract", &["--timing", timing], &report);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
        r
    };
    let r = run("interleaved");
    let rows = |key: &str| -> Vec<serde_json::Value> {
        let v = if key == "model" { &r["latency"] } else { &r["reference"]["latency"] };
        v.as_array().unwrap_or_else(|| panic!("report has no {key} latency rows: {r}")).clone()
    };
    for key in ["model", "reference"] {
        let rows = rows(key);
        let ort = rows.iter().find(|x| x["target"] == "ort-cpu-2t").unwrap_or_else(|| panic!("{key}: no ort-cpu-2t row: {r}"));
        assert!(ort["timing"].as_str().unwrap().contains("in a process of their own"), "{key}: {ort}");
        assert!(ort["optimization"].as_str().unwrap().contains("one intra-op pool shared with the reference"), "{key}: {ort}");
        assert_eq!(ort["threads"], 2, "{key}: {ort}");
        assert_eq!(ort["runs"], 5, "{key}: {ort}");
        assert!(ort["p50_ms"].as_f64().unwrap() > 0.0, "{key}: {ort}");
        let tract = rows.iter().find(|x| x["target"] == "tract").unwrap_or_else(|| panic!("{key}: no tract row: {r}"));
        assert_eq!(tract["timing"], "interleaved with the reference (ABBA)", "{key}: tract is timed in the calling process");
    }
    let paired = &rows("model")[0]["paired_ratio"];
    assert!(paired["p50"].as_f64().unwrap() > 0.0 && paired["p90"].as_f64() >= paired["p50"].as_f64(), "{paired}");
    let r = run("sequential");
    for row in r["latency"].as_array().unwrap() {
        assert_eq!(row["timing"], "sequential (model, then reference)", "{row}");
        assert!(row.get("paired_ratio").is_none(), "{row}");
    }

    // The child itself: tract is not its to time, and a corrupt model is named.
    let child = |target: &str, m: &Path| {
        dnas(&[
            "time-pair",
            "--model",
            m.to_str().unwrap(),
            "--reference",
            teacher.to_str().unwrap(),
            "--target",
            target,
            "--warmup",
            "1",
            "--runs",
            "2",
        ])
    };
    let o = child("tract", &model);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("tract has no ONNX Runtime thread pool"), "{}", text(&o));
    let corrupt = dir.path().join("corrupt.onnx");
    std::fs::write(&corrupt, &std::fs::read(&model).unwrap()[..200]).unwrap();
    let o = child("ort-cpu-1t", &corrupt);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("corrupt.onnx") && !text(&o).contains("panicked"), "{}", text(&o));
}
