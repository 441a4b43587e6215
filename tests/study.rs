//! `dnas study` through the binary on Fashion-MNIST with the shipped teacher and a tiny space
//! and recipe: a truth run SIGKILLed mid-architecture resumes without redoing finished runs;
//! `study rank` scores a real search run against it; `study pick` retrains the pick and random
//! architectures of the same budget; `dnas report --study` draws it all.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::TINY_SPACE;

fn teacher() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/fmnist_teacher.onnx")
}

fn dnas(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_dnas"));
    c.args(args);
    c
}

const RECIPE: [&str; 12] =
    ["--train-subset", "512", "--epochs", "1", "--batch", "64", "--held-out", "256", "--ckpt-every", "2", "--threads", "1"];

fn truth_cmd(space: &Path, out: &Path) -> Command {
    let mut c = dnas(&["study", "truth", "--space"]);
    c.arg(space)
        .arg("--teacher")
        .arg(teacher())
        .arg("-o")
        .arg(out)
        .args(["--archs", "4", "--repeat", "2", "--near-macs", "3M"])
        .args(RECIPE);
    c
}

fn records(dir: &Path) -> HashMap<String, Vec<u8>> {
    let Ok(rd) = std::fs::read_dir(dir.join("runs")) else { return HashMap::new() };
    rd.filter_map(|e| e.ok())
        .filter_map(|e| {
            let p = e.path().join("record.json");
            std::fs::read(&p).ok().map(|b| (e.file_name().to_string_lossy().to_string(), b))
        })
        .collect()
}

fn ok(o: &std::process::Output) -> String {
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(o.status.success(), "exit {:?}\nstdout:\n{out}\nstderr:\n{}", o.status.code(), String::from_utf8_lossy(&o.stderr));
    out
}

#[test]
fn truth_resumes_after_sigkill_then_rank_pick_and_report() {
    let dir = tempfile::tempdir().unwrap();
    let space = dir.path().join("space.json");
    std::fs::write(&space, TINY_SPACE).unwrap();
    let study = dir.path().join("study");

    // Plan only: deterministic, 4 architectures, 6 runs.
    let plan = ok(&truth_cmd(&space, &study).arg("--plan-only").output().unwrap());
    assert!(plan.contains("truth plan 'space': 4 architectures (2 with two or more seeds)") && plan.contains("6 runs"), "{plan}");
    let plan_bytes = std::fs::read(study.join("plan-space.json")).unwrap();

    // Start, and SIGKILL once one run is finished and the next has written a checkpoint.
    let mut child = truth_cmd(&space, &study).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let t0 = Instant::now();
    let finished = loop {
        let done = records(&study);
        let mid = std::fs::read_dir(study.join("runs"))
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok())
            .any(|e| e.path().join("ckpt/checkpoint.json").exists() && !e.path().join("record.json").exists());
        if !done.is_empty() && mid {
            child.kill().unwrap();
            break done;
        }
        assert!(t0.elapsed() < Duration::from_secs(300), "no finished run and checkpoint appeared");
        std::thread::sleep(Duration::from_millis(5));
    };
    child.wait().unwrap();
    // A record may have landed between the poll and the kill; whatever was finished then stays.
    let before_resume = records(&study);
    assert!(before_resume.len() < 6, "the run was killed before the end");

    let out = ok(&truth_cmd(&space, &study).output().unwrap());
    let after = records(&study);
    assert_eq!(after.len(), 6, "{out}");
    for (k, v) in &before_resume {
        assert_eq!(&after[k], v, "finished run {k} was redone");
    }
    assert!(finished.keys().all(|k| after.contains_key(k)));
    let reused = before_resume.len();
    assert!(out.contains(&format!("trained {} runs this time, {reused} already finished", 6 - reused)), "{out}");
    assert_eq!(std::fs::read(study.join("plan-space.json")).unwrap(), plan_bytes, "the plan is not rewritten");
    let truth: serde_json::Value = serde_json::from_slice(&std::fs::read(study.join("truth-space.json")).unwrap()).unwrap();
    assert_eq!(truth["finished_runs"], 6);
    assert_eq!(truth["reliability"]["repeated"], 2);
    assert_eq!(truth["reliability"]["runs"], 6);
    for a in truth["archs"].as_array().unwrap() {
        for v in a["top1"].as_object().unwrap().values() {
            let v = v.as_f64().unwrap();
            assert!(v > 0.0 && v <= 1.0, "{a}");
        }
    }
    // Other settings in the same directory are refused, naming the field.
    let o = truth_cmd(&space, &study).args(["--lr", "0.1"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("recipe.lr"), "{}", String::from_utf8_lossy(&o.stderr));

    // The band set of the same study: 4 architectures drawn uniformly within a 3M-MACs budget,
    // each with seeds 0 and 1.
    let budget = dir.path().join("budget.json");
    std::fs::write(&budget, r#"{"format": "dnas.budget", "version": 1, "name": "t", "max_macs": 3000000}"#).unwrap();
    let out = ok(&truth_cmd(&space, &study)
        .args(["--set", "band", "--band", "0,1", "--seeds", "0,1"])
        .arg("--budget")
        .arg(&budget)
        .output()
        .unwrap());
    assert!(out.contains("truth set 'band'") && out.contains("ICC(1)"), "{out}");
    let band: serde_json::Value = serde_json::from_slice(&std::fs::read(study.join("truth-band.json")).unwrap()).unwrap();
    assert_eq!(band["finished_runs"], 8);
    assert!(band["archs"]
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["macs"].as_u64().unwrap() <= 3_000_000 && a["top1"].as_object().unwrap().len() == 2));
    // The recipe comparison reads it: one recipe, its reliability, a decision either way.
    let out = ok(&dnas(&["study", "recipes", "--dir"]).arg(&study).output().unwrap());
    assert!(out.contains("ICC(1)") && out.contains("decision:"), "{out}");
    let rec: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.path().join("recipes.json")).unwrap()).unwrap();
    assert_eq!(rec["recipes"][0]["runs"], 8);

    // A small search run on the same space predicts; rank it against the truth.
    let run = dir.path().join("search");
    let mut train = dnas(&["train", "--run"]);
    train.arg(&run).arg("--teacher").arg(teacher()).arg("--space").arg(&space);
    ok(&train.args(["--train-subset", "256", "--epochs", "1", "--batch", "32", "--threads", "1"]).output().unwrap());
    let mut eval = dnas(&["evaluate", "--run"]);
    ok(&eval.arg(&run).args(["--batches", "1", "--batch", "64"]).output().unwrap());
    let mut rank = dnas(&["study", "rank", "--truth"]);
    let out = ok(&rank.arg(&study).arg("--run").arg(&run).output().unwrap());
    assert!(out.contains("dna:score") && out.contains("dna:cell-z") && out.contains("partial τ given MACs"), "{out}");
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(study.join("rank/search.score.json")).unwrap()).unwrap();
    let sets: Vec<&str> = r["sets"].as_array().unwrap().iter().map(|s| s["set"].as_str().unwrap()).collect();
    assert_eq!(sets, vec!["band", "space"]);
    for s in r["sets"].as_array().unwrap() {
        assert_eq!(s["archs"], 4);
        // The report's τ is the τ of its own points, inside its interval.
        let pts = s["points"].as_array().unwrap();
        let x: Vec<f64> = pts.iter().map(|p| p["predicted"].as_f64().unwrap()).collect();
        let y: Vec<f64> = pts.iter().map(|p| p["truth"].as_f64().unwrap()).collect();
        let tau = dnas::study::metrics::kendall_tau_b(&x, &y).unwrap();
        let t = &s["kendall_tau"];
        assert!((t["value"].as_f64().unwrap() - tau).abs() < 1e-12);
        assert!(t["lo"].as_f64().unwrap() <= tau + 1e-12 && tau <= t["hi"].as_f64().unwrap() + 1e-12, "{t}");
        assert!(s["reliability"].is_object(), "{s}");
    }
    // The held-out halves of the band: disjoint, together the band.
    let mut halves = Vec::new();
    for half in ["select", "report"] {
        let mut rank = dnas(&["study", "rank", "--truth"]);
        let o = rank.arg(&study).arg("--run").arg(&run).args(["--metric", "score", "--half", half]).output().unwrap();
        // Two architectures are too few to rank: the set is left out, said so, and the space set stays.
        let out = ok(&o);
        assert!(String::from_utf8_lossy(&o.stderr).contains("set 'band-") || out.contains(&format!("band-{half}")), "{out}");
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(study.join(format!("rank/search.{half}.score.json"))).unwrap()).unwrap();
        halves.push(v);
    }
    assert!(halves.iter().all(|h| h["sets"].as_array().unwrap().iter().any(|s| s["set"] == "space")));

    // The pick under a budget against 2 random architectures of that budget.
    let mut pick = dnas(&["study", "pick", "--truth"]);
    let out = ok(&pick.arg(&study).arg("--run").arg(&run).args(["--max-macs", "3M", "--random", "2", "--threads", "1"]).output().unwrap());
    assert!(out.contains("the pick beats"), "{out}");
    let p: serde_json::Value = serde_json::from_slice(&std::fs::read(study.join("pick/search-score.json")).unwrap()).unwrap();
    assert_eq!(p["random"].as_array().unwrap().len(), 2);
    assert!(p["random"].as_array().unwrap().iter().all(|r| r["macs"].as_u64().unwrap() <= 3_000_000));
    assert!(p["pick"]["macs"].as_u64().unwrap() <= 3_000_000);

    // A one-shot run predicts through inherited weights: SPOS's predictor on the same truth.
    let oneshot = dir.path().join("spos");
    let mut spos = dnas(&["search", "spos", "--space"]);
    spos.arg(&space).arg("--run").arg(&oneshot);
    ok(&spos
        .args(["--train-subset", "256", "--epochs", "1", "--batch", "32", "--held-out", "256", "--threads", "1"])
        .args(["--population", "4", "--generations", "1", "--max-macs", "3M"])
        .output()
        .unwrap());
    let mut rank = dnas(&["study", "rank", "--truth"]);
    let out = ok(&rank.arg(&study).arg("--run").arg(&oneshot).args(["--threads", "1"]).output().unwrap());
    assert!(out.contains("spos:inherited"), "{out}");
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(study.join("rank/spos.inherited.json")).unwrap()).unwrap();
    // Scored only within the 3M MACs it trained under: the band whole, the space set's dearer
    // architectures counted and named as skipped (and the set left out below 3 scorable).
    assert!(r["scored_on"].as_str().unwrap().contains("max_macs 3000000"), "{r}");
    let space_truth: serde_json::Value = serde_json::from_slice(&std::fs::read(study.join("truth-space.json")).unwrap()).unwrap();
    let over = space_truth["archs"].as_array().unwrap().iter().filter(|a| a["macs"].as_u64().unwrap() > 3_000_000).count();
    for s in r["sets"].as_array().unwrap() {
        let skipped = s["skipped"].as_array().unwrap().len();
        assert_eq!(s["archs"].as_u64().unwrap() as usize + skipped, 4, "{s}");
        assert_eq!(skipped, if s["set"] == "space" { over } else { 0 }, "{s}");
        assert!(s["points"].as_array().unwrap().iter().all(|p| p["macs"].as_u64().unwrap() <= 3_000_000));
        assert!(s["points"].as_array().unwrap().iter().all(|p| (0.0..=1.0).contains(&p["predicted"].as_f64().unwrap())));
    }
    assert_eq!(r["sets"][0]["set"], "band");
    assert_eq!(r["sets"].as_array().unwrap().len(), if 4 - over >= 3 { 2 } else { 1 });
    // Its pick (arch.json) enters a pick comparison under the budget it was searched with, and
    // shares the random architectures (same seed and budget) with the DNA run's comparison.
    let mut pick = dnas(&["study", "pick", "--truth"]);
    ok(&pick.arg(&study).arg("--run").arg(&oneshot).args(["--max-macs", "3M", "--random", "2", "--plan-only"]).output().unwrap());
    let plan = |name: &str| -> Vec<String> {
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(study.join(format!("plan-pick-{name}.json"))).unwrap()).unwrap();
        v["entries"].as_array().unwrap().iter().map(|e| e["key"].as_str().unwrap().to_string()).collect()
    };
    let arch: serde_json::Value = serde_json::from_slice(&std::fs::read(oneshot.join("arch.json")).unwrap()).unwrap();
    let key = dnas::space::point::arch_key(&serde_json::from_value(arch).unwrap());
    assert_eq!(plan("spos")[0], key);
    assert_eq!(plan("spos")[1..], plan("search-score")[1..]);
    let mut pick = dnas(&["study", "pick", "--truth"]);
    let o = pick.arg(&study).arg("--run").arg(&oneshot).args(["--max-macs", "2M", "--random", "2", "--plan-only"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("was searched under max_macs 3000000 / max_params none"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // DNA with another block metric: its own comparison, named after the metric.
    let mut pick = dnas(&["study", "pick", "--truth"]);
    ok(&pick
        .arg(&study)
        .arg("--run")
        .arg(&run)
        .args(["--max-macs", "3M", "--random", "2", "--metric", "cell-z", "--plan-only"])
        .output()
        .unwrap());
    assert_eq!(plan("search-cell-z")[1..], plan("search-score")[1..]);

    // MF-KD: a tiny search, then its low-fidelity predictors (KD and CE at the same fidelity)
    // on the truth set, each truth architecture trained once per predictor, cheaply (held-out
    // after the last epoch, no test pass), and its pick enters a comparison.
    let mf = dir.path().join("mfkd");
    let mut search = dnas(&["search", "mfkd", "--space"]);
    search.arg(&space).arg("--run").arg(&mf).arg("--teacher").arg(teacher());
    ok(&search
        .args(["--train-subset", "256", "--lowfi-fraction", "0.25", "--lowfi-epochs", "1", "--epochs", "1", "--batch", "32"])
        .args([
            "--held-out",
            "256",
            "--init",
            "2",
            "--evals",
            "3",
            "--per-round",
            "1",
            "--promote",
            "1",
            "--max-macs",
            "3M",
            "--threads",
            "1",
        ])
        .output()
        .unwrap());
    // The same search with each batch trained by two `dnas study run` processes: the same
    // evaluations with the same scores, bit for bit, and the processes' logs.
    let mf2 = dir.path().join("mfkd-procs");
    let mut search = dnas(&["search", "mfkd", "--space"]);
    search.arg(&space).arg("--run").arg(&mf2).arg("--teacher").arg(teacher());
    ok(&search
        .args(["--train-subset", "256", "--lowfi-fraction", "0.25", "--lowfi-epochs", "1", "--epochs", "1", "--batch", "32"])
        .args(["--held-out", "256", "--init", "2", "--evals", "3", "--per-round", "1", "--promote", "1", "--max-macs", "3M"])
        .args(["--threads", "1", "--procs", "2"])
        .output()
        .unwrap());
    let history = |d: &Path| -> Vec<(String, u64, String)> {
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(d.join("history.json")).unwrap()).unwrap();
        v["evaluations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["key"].as_str().unwrap().to_string(), e["fidelity"].as_u64().unwrap(), e["score"].to_string()))
            .collect()
    };
    assert_eq!(history(&mf2), history(&mf));
    let logs: Vec<String> =
        std::fs::read_dir(mf2.join("fidelity-0/logs")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(logs.iter().any(|l| l.ends_with("-0of2.log")) && logs.iter().any(|l| l.ends_with("-1of2.log")), "{logs:?}");

    let mut rank = dnas(&["study", "rank", "--truth"]);
    let out = ok(&rank
        .arg(&study)
        .arg("--run")
        .arg(&mf)
        .arg("--teacher")
        .arg(teacher())
        .args(["--threads", "1", "--lowfi", "kd,ce,at"])
        .output()
        .unwrap());
    assert!(out.contains("mfkd:lowfi-kd") && out.contains("mfkd:lowfi-ce") && out.contains("mfkd:lowfi-at"), "{out}");
    // Every pair of predictors compared on the same architectures (paired bootstrap).
    let diffs: serde_json::Value = serde_json::from_slice(&std::fs::read(study.join("rank/differences/mfkd.json")).unwrap()).unwrap();
    let pairs: Vec<(String, String, String)> = diffs
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["a"].as_str().unwrap().into(), d["b"].as_str().unwrap().into(), d["set"].as_str().unwrap().into()))
        .collect();
    // Three pairs of predictors on each of the two sets.
    assert_eq!(pairs.len(), 6, "{pairs:?}");
    for set in ["band", "space"] {
        assert!(pairs.contains(&("mfkd:lowfi-kd".into(), "mfkd:lowfi-ce".into(), set.into())), "{pairs:?}");
    }
    assert!(out.contains("Δτ"), "{out}");
    // Attention transfer at the teacher's cut of each of the space's two blocks, without Hinton.
    let at: serde_json::Value = serde_json::from_slice(&std::fs::read(mf.join("fidelity-0-at/study.json")).unwrap()).unwrap();
    assert!(at["recipe"]["kd"].is_null(), "{at}");
    assert_eq!(at["recipe"]["feature_kd"]["kind"], "at");
    assert_eq!(at["recipe"]["feature_kd"]["teacher_cuts"].as_array().unwrap().len(), 2);
    for (sub, kd) in [("fidelity-0", true), ("fidelity-0-ce", false), ("fidelity-0-at", false)] {
        let rec: serde_json::Value = serde_json::from_slice(&std::fs::read(mf.join(sub).join("study.json")).unwrap()).unwrap();
        assert_eq!(rec["recipe"]["kd"].is_object(), kd, "{sub}");
        let recs: Vec<serde_json::Value> = std::fs::read_dir(mf.join(sub).join("runs"))
            .unwrap()
            .map(|e| serde_json::from_slice(&std::fs::read(e.unwrap().path().join("record.json")).unwrap()).unwrap())
            .collect();
        assert!(recs.len() >= 4, "{sub}: every truth architecture evaluated");
        assert!(recs.iter().all(|r| r["test_top1"].is_null() && r["held_out_top1"].is_f64()), "{sub}: cheap evaluations");
    }
    let mut pick = dnas(&["study", "pick", "--truth"]);
    ok(&pick
        .arg(&study)
        .arg("--run")
        .arg(&mf)
        .arg("--teacher")
        .arg(teacher())
        .args(["--max-macs", "3M", "--random", "2", "--plan-only"])
        .output()
        .unwrap());
    let arch: serde_json::Value = serde_json::from_slice(&std::fs::read(mf.join("arch.json")).unwrap()).unwrap();
    assert_eq!(plan("mfkd")[0], dnas::space::point::arch_key(&serde_json::from_value(arch).unwrap()));

    // The DNA run's pick (one search seed here) retrained with seeds 0 and 1 against the band.
    let mut picks = dnas(&["study", "picks", "--truth"]);
    let out =
        ok(&picks.arg(&study).args(["--name", "dna-score", "--max-macs", "3M", "--threads", "1"]).arg("--run").arg(&run).output().unwrap());
    assert!(out.contains("p vs band") && out.contains("band percentile"), "{out}");
    let p: serde_json::Value = serde_json::from_slice(&std::fs::read(study.join("picks/dna-score.json")).unwrap()).unwrap();
    assert_eq!(p["picks"].as_array().unwrap().len(), 1);
    assert_eq!(p["picks"][0]["seeds"].as_array().unwrap().len(), 2);
    assert!((0.0..=1.0).contains(&p["p_vs_band"].as_f64().unwrap()) && p["band"]["archs"] == 4);
    assert!(p["interval"].is_null(), "one search seed has no interval");
    assert!(p["picks"][0]["search_seconds"].as_f64().unwrap() > 0.0);

    let mut report = dnas(&["report", "--study"]);
    ok(&report.arg(&study).output().unwrap());
    let html = std::fs::read_to_string(study.join("report.html")).unwrap();
    assert!(
        html.contains("Kendall τ")
            && html.contains("Truth sets and their reliability")
            && html.contains("τ ceiling")
            && html.contains("pick beats")
            && html.contains("Picks over search seeds"),
        "report misses a section"
    );
    assert!(study.join("report/study-tau.svg").exists() && study.join("report/study-seeds-space.svg").exists());
    assert!(study.join("report/study-picks.svg").exists());
}
