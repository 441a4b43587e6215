//! `dnas demo --quick` runs the whole chain through the real stage commands, prints the final
//! table and passes its budget; a second run resumes; `dnas report` renders charts that contain
//! the run's data points (one dot per ranked candidate, the selected one in red, the training
//! curves' points).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn dnas(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dnas")).args(args).current_dir(root()).output().expect("run dnas")
}

fn text(o: &Output) -> String {
    format!("{}\n{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn json(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))).unwrap()
}

/// The (x, y) pairs of every `<polyline points="x,y x,y …">` of an SVG.
fn polyline_points(svg: &str) -> usize {
    svg.split("<polyline")
        .skip(1)
        .map(|s| s.split("points=\"").nth(1).and_then(|p| p.split('"').next()).map_or(0, |p| p.split_whitespace().count()))
        .sum()
}

#[test]
fn quick_demo_runs_the_chain_resumes_and_the_report_shows_its_data() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let d = dir.to_str().unwrap();
    let out = dnas(&["demo", "--quick", "-o", d]);
    let t = text(&out);
    assert!(out.status.success(), "demo failed:\n{t}");
    for row in ["top-1 (onnxruntime)", "top-1 (tract)", "params", "MACs", "ort-cpu-1t p50 ms", "PASS"] {
        assert!(t.contains(row), "final table lacks '{row}':\n{t}");
    }
    let demo = json(&dir.join("demo.json"));
    let stages = demo["stages"].as_array().unwrap();
    assert_eq!(stages.len(), 8, "{stages:?}");
    assert!(stages.iter().all(|s| s["skipped"] == false), "{stages:?}");
    assert_eq!(demo["pass"], true);
    // The selection respected the budget's MAC limit (half the teacher's), and the table agrees
    // with the validation reports it was built from.
    let student = json(&dir.join("student.validate.json"));
    let teacher = json(&dir.join("teacher.validate.json"));
    let macs = student["macs"].as_u64().unwrap();
    assert!(macs <= demo["max_macs"].as_u64().unwrap() && 2 * macs <= teacher["macs"].as_u64().unwrap() + 1);
    let rows = demo["table"]["rows"].as_array().unwrap();
    let macs_row = rows.iter().find(|r| r["metric"] == "MACs").unwrap();
    assert_eq!(macs_row["student"].as_f64(), Some(macs as f64));
    assert_eq!(macs_row["teacher"].as_f64(), teacher["macs"].as_f64());
    assert!(dir.join("student.onnx").exists() && dir.join("search/arch.json").exists());

    // Resumed: rankings and the retrained student are reused, not redone.
    let again = dnas(&["demo", "--quick", "-o", d]);
    assert!(again.status.success(), "{}", text(&again));
    let demo2 = json(&dir.join("demo.json"));
    let skipped: Vec<&str> =
        demo2["stages"].as_array().unwrap().iter().filter(|s| s["skipped"] == true).map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(skipped, ["candidate evaluation", "retraining with KD"], "{}", text(&again));

    // Another preset's settings in the same search run are refused, naming the flag.
    let clash = dnas(&["demo", "-o", d]);
    assert_eq!(clash.status.code(), Some(2), "{}", text(&clash));
    assert!(text(&clash).contains("--held-out 5000 (the run has 512)"), "{}", text(&clash));

    let rep = dnas(&["report", "--run", d]);
    assert!(rep.status.success(), "{}", text(&rep));
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.contains("Teacher vs searched") && html.contains("Selected architecture") && html.contains("Validation"));
    assert_eq!(html.matches("<svg").count(), 10, "4 training + 4 candidate charts + 2 retrain charts");
    for b in 0..4 {
        let ranking = json(&dir.join(format!("search/eval/block-{b}.json")));
        let n = ranking["candidates"].as_array().unwrap().len();
        let svg = std::fs::read_to_string(dir.join(format!("report/candidates-block-{b}.svg"))).unwrap();
        assert!(html.contains(&svg), "the HTML embeds the chart");
        // One dot per candidate, one for the selected one, two legend dots.
        assert_eq!(svg.matches("<circle").count(), n + 3, "block {b}");
        assert_eq!(svg.matches("fill=\"#D62728\"").count(), 2, "the selected candidate (and its legend) in red");
        let train = std::fs::read_to_string(dir.join(format!("report/train-block-{b}.svg"))).unwrap();
        let held = json(&dir.join(format!("search/blocks/{b}/done.json")))["held_out_mse"].as_array().unwrap().len();
        // Held-out MSE dots (before training and after the epoch) + the training curve's point
        // (16 steps, logged at the end: a single point is drawn as a dot) + two legend marks.
        assert!(train.matches("<circle").count() > held, "block {b}: {held} held-out points");
    }
    let loss = std::fs::read_to_string(dir.join("report/retrain-loss.svg")).unwrap();
    let steps = std::fs::read_to_string(dir.join("student/train.jsonl")).unwrap().lines().filter(|l| l.contains("\"loss\"")).count();
    assert!(polyline_points(&loss) >= steps, "the retrain loss curve has one vertex per logged step ({steps})");

    let bad = dnas(&["report", "--run", tmp.path().to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad).contains("neither a demo directory"), "{}", text(&bad));
}

#[test]
fn quick_demo_with_the_one_shot_strategies_passes_and_reports_the_search() {
    for strategy in ["spos", "cream"] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("demo");
        let d = dir.to_str().unwrap();
        let out = dnas(&["demo", "--quick", "--strategy", strategy, "-o", d]);
        let t = text(&out);
        assert!(out.status.success(), "demo --strategy {strategy} failed:\n{t}");
        assert!(t.contains("PASS"), "{t}");
        let demo = json(&dir.join("demo.json"));
        assert_eq!(demo["strategy"], strategy);
        assert_eq!(demo["pass"], true);
        assert_eq!(demo["stages"].as_array().unwrap().len(), 6, "teacher, search, retrain, export, 2 validations");
        let arch = json(&dir.join(format!("search-{strategy}/arch.json")));
        let student = json(&dir.join("student.validate.json"));
        assert_eq!(student["macs"], arch["predicted"]["macs"], "the exported child is the pick");
        assert!(student["macs"].as_u64().unwrap() <= demo["max_macs"].as_u64().unwrap());
        let rep = dnas(&["report", "--run", d]);
        assert!(rep.status.success(), "{}", text(&rep));
        let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
        assert!(html.contains(&format!("One-shot search ({strategy})")), "report lacks the one-shot section");
        let svg = std::fs::read_to_string(dir.join(format!("report/oneshot-{strategy}.svg"))).unwrap();
        // SPOS: one dot per scored architecture; Cream: one per admission; plus the pick.
        let points = if strategy == "spos" {
            json(&dir.join("search-spos/evolution.json"))["scored"].as_array().unwrap().len()
        } else {
            json(&dir.join("search-cream/board.json"))["history"].as_array().unwrap().len()
        };
        assert!(points > 0 && svg.matches("<circle").count() > points, "{strategy}: {points} points");
    }
}

#[test]
fn quick_demo_with_mfkd_passes_and_reports_every_evaluation() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let d = dir.to_str().unwrap();
    let out = dnas(&["demo", "--quick", "--strategy", "mfkd", "-o", d]);
    let t = text(&out);
    assert!(out.status.success(), "demo --strategy mfkd failed:\n{t}");
    assert!(t.contains("PASS"), "{t}");
    let demo = json(&dir.join("demo.json"));
    assert_eq!((demo["strategy"].as_str(), demo["pass"].as_bool()), (Some("mfkd"), Some(true)));
    let history = json(&dir.join("search-mfkd/history.json"));
    let evals = history["evaluations"].as_array().unwrap();
    // Quick preset: 2 random, 2 proposed by the surrogate, 1 promoted.
    assert_eq!(evals.len(), 5, "{history}");
    assert_eq!(evals.iter().filter(|e| e["predicted"].is_array()).count(), 2);
    let arch = json(&dir.join("search-mfkd/arch.json"));
    let promoted = evals.iter().find(|e| e["fidelity"] == 1).unwrap();
    assert_eq!(arch["predicted"]["macs"], promoted["macs"], "the pick is the best at the highest fidelity");
    assert!(evals.iter().all(|e| e["macs"].as_u64().unwrap() <= demo["max_macs"].as_u64().unwrap()));
    let student = json(&dir.join("student.validate.json"));
    assert_eq!(student["macs"], arch["predicted"]["macs"], "the exported child is the pick");
    let rep = dnas(&["report", "--run", d]);
    assert!(rep.status.success(), "{}", text(&rep));
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.contains("MF-KD search"), "report lacks the MF-KD section");
    let svg = std::fs::read_to_string(dir.join("report/mfkd-evaluations.svg")).unwrap();
    assert!(svg.matches("<circle").count() > evals.len(), "one dot per evaluation plus the pick");
    assert!(dir.join("report/mfkd-surrogate.svg").exists());
}
