//! `dnas search spos|cream` through the binary on Fashion-MNIST with a tiny space: a
//! Cream run SIGKILLed mid-training after its board has filled resumes to the same weights and
//! the same board as an uninterrupted run; SPOS's evolutionary pick and every scored
//! architecture stay within the budget; the pick is an architecture `dnas retrain` accepts.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::TINY_SPACE;

fn search(strategy: &str, space: &Path, run: &Path, extra: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_dnas"));
    c.args(["search", strategy, "--space"])
        .arg(space)
        .arg("--run")
        .arg(run)
        .args(["--train-subset", "512", "--batch", "32", "--epochs", "3", "--held-out", "256", "--threads", "1"])
        .args(["--ckpt-every", "4", "--max-macs", "3M", "--seed", "5", "--json"])
        .args(extra);
    c
}

fn ok(o: &std::process::Output) -> serde_json::Value {
    assert!(o.status.success(), "exit {:?}\n{}", o.status.code(), String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// A search's `--json` output is its `search.json` (the typed version-2 header and the result):
/// the result, after checking the header says what ran.
fn searched(o: &std::process::Output, strategy: &str, run: &Path) -> serde_json::Value {
    let v = ok(o);
    assert_eq!(
        (v["format"].as_str(), v["version"].as_u64(), v["strategy"].as_str()),
        (Some("dnas.search"), Some(2), Some(strategy)),
        "{v}"
    );
    assert_eq!(v["limits"]["max_macs"], 3_000_000, "{v}");
    assert_eq!(v["seed"], 5, "{v}");
    let file: serde_json::Value = serde_json::from_slice(&std::fs::read(run.join("search.json")).unwrap()).unwrap();
    assert_eq!(file, v, "the printed record is the run's search.json");
    assert_eq!(v["result"]["arch"], "arch.json");
    v["result"].clone()
}

fn space_file(dir: &Path) -> PathBuf {
    let p = dir.join("space.json");
    std::fs::write(&p, TINY_SPACE).unwrap();
    p
}

#[test]
fn cream_resumed_after_sigkill_equals_an_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let space = space_file(dir.path());
    // Meta matching (the default) with an update every 5 steps: the meta layer and the board's
    // image slices must travel in the checkpoint too.
    let cream = ["--cream-warmup-epochs", "0.5", "--board", "4", "--meta-every", "5"];
    let full = dir.path().join("full");
    let r = searched(&search("cream", &space, &full, &cream).output().unwrap(), "cream", &full);
    assert_eq!(r["detail"]["train_steps"], 48);
    assert!(r["macs"].as_u64().unwrap() <= 3_000_000, "{r}");
    let board: serde_json::Value = serde_json::from_slice(&std::fs::read(full.join("board.json")).unwrap()).unwrap();
    assert!(board["distilled_steps"].as_u64().unwrap() > 0 && !board["board"]["entries"].as_array().unwrap().is_empty(), "{board}");
    assert!(board["board"]["entries"].as_array().unwrap().iter().all(|e| e["macs"].as_u64().unwrap() <= 3_000_000));
    assert_eq!(board["matching"], "meta");
    let updates = board["meta"]["updates"].as_array().unwrap();
    assert!(updates.len() >= 6 && updates.iter().all(|u| u[0].as_u64().unwrap() % 5 == 0), "{}", board["meta"]);
    let w = common::tensor_bytes(&full.join("train/final.safetensors"));
    assert!(w["cream.meta.weight"].iter().any(|&b| b != 0), "the meta layer learnt nothing");
    // The pick is the board entry with the best held-out top-1 (every entry re-scored), not the
    // board's first entry by its training-batch top-1.
    let rescored = r["detail"]["rescored"].as_array().unwrap();
    assert_eq!(rescored.len(), board["board"]["entries"].as_array().unwrap().len());
    let best = rescored.iter().filter_map(|e| e["held_out_top1_inherited"].as_f64()).fold(f64::MIN, f64::max);
    assert_eq!(r["detail"]["held_out_top1_inherited"].as_f64().unwrap(), best, "{r}");
    assert!(rescored.iter().any(|e| e["key"] == r["key"] && e["held_out_top1_inherited"].as_f64() == Some(best)));
    let arch: serde_json::Value = serde_json::from_slice(&std::fs::read(full.join("arch.json")).unwrap()).unwrap();
    assert_eq!(arch["predicted"]["higher_is_better"], true);
    assert_eq!(arch["predicted"]["score"].as_f64(), Some(best));

    // Again, killed after a checkpoint past the warm-up (the board is in it), then resumed.
    let cut = dir.path().join("cut");
    let mut child = search("cream", &space, &cut, &cream).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let ckpt = cut.join("train/ckpt/checkpoint.json");
    let t0 = Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(&ckpt) {
            let meta: serde_json::Value = serde_json::from_str(&text).unwrap();
            if meta["step"].as_u64().unwrap() >= 20 {
                assert!(!meta["extra"]["learner"]["board"]["entries"].as_array().unwrap().is_empty(), "the checkpoint holds the board");
                child.kill().unwrap();
                break;
            }
        }
        assert!(t0.elapsed() < Duration::from_secs(180), "no checkpoint appeared");
        std::thread::sleep(Duration::from_millis(2));
    }
    child.wait().unwrap();
    assert!(!cut.join("arch.json").exists(), "killed before the end");
    let r2 = searched(&search("cream", &space, &cut, &cream).output().unwrap(), "cream", &cut);
    let (a, b) = (common::tensor_bytes(&full.join("train/final.safetensors")), common::tensor_bytes(&cut.join("train/final.safetensors")));
    assert_eq!(a.len(), b.len());
    for (k, v) in &a {
        assert!(b[k] == *v, "tensor '{k}' differs after resume");
    }
    assert_eq!(std::fs::read(full.join("board.json")).unwrap(), std::fs::read(cut.join("board.json")).unwrap(), "board after resume");
    assert_eq!(r["key"], r2["key"]);

    // Other settings in the same run directory are refused, naming the field.
    let o = search("cream", &space, &cut, &["--cream-warmup-epochs", "1", "--board", "4", "--meta-every", "5"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("cream.warmup_steps"), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn spos_evolution_stays_within_the_budget_and_its_pick_retrains() {
    let dir = tempfile::tempdir().unwrap();
    let space = space_file(dir.path());
    let run = dir.path().join("spos");
    let r = searched(&search("spos", &space, &run, &["--population", "6", "--generations", "2"]).output().unwrap(), "spos", &run);
    let evo: serde_json::Value = serde_json::from_slice(&std::fs::read(run.join("evolution.json")).unwrap()).unwrap();
    let scored = evo["scored"].as_array().unwrap();
    assert!(scored.len() >= 6, "{}", scored.len());
    assert!(scored.iter().all(|s| s["macs"].as_u64().unwrap() <= 3_000_000));
    let scores: Vec<f64> = scored.iter().map(|s| s["score"].as_f64().unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "best first: {scores:?}");
    assert!(scores.iter().all(|s| (0.0..=1.0).contains(s)));
    assert_eq!(r["key"], scored[0]["key"], "the pick is the best scored");
    // The pick is an architecture the rest of the chain reads.
    let o = Command::new(env!("CARGO_BIN_EXE_dnas"))
        .args(["retrain", "--arch"])
        .arg(run.join("arch.json"))
        .arg("-o")
        .arg(dir.path().join("student"))
        .args(["--train-subset", "128", "--epochs", "1", "--batch", "32", "--threads", "1", "--no-validate", "--json"])
        .output()
        .unwrap();
    let res = ok(&o);
    assert_eq!(res["macs"], r["macs"]);
    // An unknown strategy is refused by name.
    let o = search("darts", &space, &dir.path().join("x"), &[]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("darts"), "{}", String::from_utf8_lossy(&o.stderr));
}
