//! The strategy contract, through the binary and the library: `dnas search <strategy>` for all
//! four strategies on Fashion-MNIST with the shipped teacher and a tiny space, each writing the
//! same typed `search.json` header and an `arch.json` carrying the teacher's hash; every run
//! then opened through the one interface (`strategy::SearchRun`), which gives its pick and its
//! study predictors. Runs written before the version-2 record still open; a record of an
//! unknown version and a directory that is no search run are refused by name.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::TINY_SPACE;
use dnas::space::arch::Arch;
use dnas::space::limits::PathBudget;
use dnas::strategy::dna::metric::DnaMetric;
use dnas::strategy::{PickRequest, PredictorRequest, SearchRun, Strategy};
use dnas::study::truth::{Recipe, Retrainer, StudyDir, Trained};

fn teacher() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/fmnist_teacher.onnx")
}

/// Each strategy's tiny settings besides the shared ones.
fn own_flags(s: Strategy) -> &'static [&'static str] {
    match s {
        Strategy::Dna => &["--rank-batches", "1", "--rank-batch", "64", "--recal-batch", "64"],
        Strategy::Spos => &["--population", "4", "--generations", "1", "--eval-batches", "1", "--eval-batch", "64"],
        Strategy::Cream => {
            &["--board", "2", "--cream-warmup-epochs", "0.5", "--matching", "top1", "--eval-batches", "1", "--eval-batch", "64"]
        }
        Strategy::Mfkd => {
            &["--lowfi-fraction", "0.5", "--lowfi-epochs", "1", "--init", "2", "--evals", "2", "--per-round", "1", "--promote", "1"]
        }
    }
}

fn search(s: Strategy, space: &Path, run: &Path) -> serde_json::Value {
    let o = Command::new(env!("CARGO_BIN_EXE_dnas"))
        .args(["search", s.name(), "--space"])
        .arg(space)
        .arg("--run")
        .arg(run)
        .arg("--teacher")
        .arg(teacher())
        .args(["--train-subset", "256", "--epochs", "1", "--batch", "32", "--held-out", "256", "--threads", "1"])
        .args(["--max-macs", "3M", "--seed", "5", "--json"])
        .args(own_flags(s))
        .output()
        .unwrap();
    assert!(o.status.success(), "{s}: exit {:?}\n{}", o.status.code(), String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{s}: stdout is not one JSON document ({e}):\n{}", String::from_utf8_lossy(&o.stdout)))
}

/// A trainer that must not be called: the predictors are built here, not run.
struct NotHere;

impl Retrainer for NotHere {
    fn retrain(&mut self, _: &Arch, _: u64, _: &Path, _: &Recipe) -> anyhow::Result<Trained> {
        anyhow::bail!("not in this test")
    }
    fn device(&self) -> String {
        "cpu".into()
    }
    fn threads(&self) -> usize {
        1
    }
}

#[test]
fn every_strategy_searches_through_one_contract() {
    dnas::cli::train::set_threads(1);
    let dir = tempfile::tempdir().unwrap();
    let space = dir.path().join("space.json");
    std::fs::write(&space, TINY_SPACE).unwrap();
    let sha = dnas::util::sha256_hex(&std::fs::read(teacher()).unwrap());
    let limits = PathBudget { max_macs: Some(3_000_000), max_params: None };
    let mut runs = Vec::new();
    for s in Strategy::ALL {
        let root = dir.path().join(s.name());
        let printed = search(s, &space, &root);
        let run = SearchRun::open(&root).unwrap();
        assert!(!run.rebuilt, "{s}: a version-2 record");
        assert_eq!(
            serde_json::to_value(dnas::strategy::SearchRecord { header: run.header.clone(), result: run.result.clone() }).unwrap(),
            printed
        );
        let h = &run.header;
        assert_eq!((h.format.as_str(), h.version, h.strategy, h.seed), ("dnas.search", 2, s, 5), "{s}");
        assert_eq!(h.teacher_sha256, sha, "{s}: the header names the teacher");
        assert_eq!(h.limits, limits, "{s}");
        assert!(h.space.starts_with("fmnist_tiny"), "{s}: {}", h.space);
        let r = run.result.as_ref().unwrap_or_else(|| panic!("{s}: no result"));
        let arch = Arch::load(&root.join(&r.arch)).unwrap();
        assert_eq!(arch.teacher_sha256, sha, "{s}: arch.json names the teacher");
        assert_eq!(dnas::space::point::arch_key(&arch), r.key, "{s}");
        assert!(r.macs <= 3_000_000 && r.macs == arch.predicted.macs, "{s}: {} MACs", r.macs);
        assert_eq!(r.score, arch.predicted.score, "{s}");
        assert_eq!(r.higher_is_better, s != Strategy::Dna, "{s}: DNA's score is a loss sum, the others' a top-1");
        assert_eq!(arch.predicted.higher_is_better, Some(r.higher_is_better), "{s}");
        assert!(!r.score_kind.is_empty() && r.train_seconds > 0.0 && r.search_seconds >= 0.0, "{s}: {r:?}");
        assert_eq!(run.search_seconds(), Some(r.train_seconds + r.search_seconds), "{s}");
        runs.push((s, run));
    }

    // Each run's pick, asked the one way: DNA selects again under the limits (the same
    // architecture as its arch.json), the others return theirs; other limits are refused.
    for (s, run) in &runs {
        let req = PickRequest { limits, metric: DnaMetric::Score, teacher: Some(&teacher()) };
        let pick = run.pick(&req).unwrap_or_else(|e| panic!("{s}: {e:#}"));
        assert_eq!(dnas::space::point::arch_key(&pick.arch), run.result.as_ref().unwrap().key, "{s}");
        assert!(pick.teacher.is_some(), "{s}");
        if *s != Strategy::Dna {
            let other = PickRequest { limits: PathBudget { max_macs: Some(2_000_000), max_params: None }, ..req };
            let e = run.pick(&other).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(e.contains("was searched under max_macs 3000000"), "{s}: {e}");
        }
    }

    // Their study predictors, against a study of the same space (MF-KD's low fidelity is one).
    let study = StudyDir::open(&dir.path().join("mfkd/fidelity-0")).unwrap();
    let trainer = || -> Box<dyn Retrainer> { Box::new(NotHere) };
    for (s, run) in &runs {
        let req = PredictorRequest {
            study: &study,
            metric: "all",
            teacher: Some(&teacher()),
            device: tch::Device::Cpu,
            eval_batches: 1,
            eval_batch: 64,
            lowfi: "both",
            lowfi_trainer: &trainer,
        };
        let mut ps = run.predictors(&req).unwrap_or_else(|e| panic!("{s}: {e:#}"));
        let labels: Vec<&str> = ps.iter().map(|(l, _)| l.as_str()).collect();
        match s {
            Strategy::Dna => assert_eq!(labels, DnaMetric::ALL.iter().map(|m| m.label()).collect::<Vec<_>>()),
            Strategy::Spos | Strategy::Cream => assert_eq!(labels, ["inherited"]),
            Strategy::Mfkd => assert_eq!(labels, ["lowfi-kd", "lowfi-ce"]),
        }
        if *s != Strategy::Mfkd {
            let pick = Arch::load(&run.root.join("arch.json")).unwrap();
            let v = ps[0].1.predict(&pick).unwrap();
            assert!(v.is_finite(), "{s}: {v}");
            if *s != Strategy::Dna {
                assert!((0.0..=1.0).contains(&v), "{s}: top-1 {v}");
            }
        }
    }

    // A run written before the version-2 record (free-form search.json, settings file) opens
    // with the same header fields and pick; an unknown version and a non-run are refused.
    let old = dir.path().join("spos-v1");
    std::fs::create_dir_all(&old).unwrap();
    for f in ["oneshot.json", "space.json", "arch.json"] {
        std::fs::copy(dir.path().join("spos").join(f), old.join(f)).unwrap();
    }
    let new = &runs[1].1;
    let r = new.result.as_ref().unwrap();
    let v1 = serde_json::json!({"strategy": "spos", "arch": "arch.json", "key": r.key, "macs": r.macs, "params": r.params,
        "train_steps": 8, "train_seconds": r.train_seconds, "search_seconds": r.search_seconds, "detail": {}});
    std::fs::write(old.join("search.json"), v1.to_string()).unwrap();
    let o = SearchRun::open(&old).unwrap();
    assert!(o.rebuilt);
    assert_eq!((o.strategy(), &o.header.space, o.header.limits, o.header.seed), (Strategy::Spos, &new.header.space, limits, 5));
    assert_eq!(o.header.teacher_sha256, sha, "from arch.json");
    assert_eq!(o.result.as_ref().map(|x| x.key.clone()), Some(r.key.clone()));
    assert_eq!(o.search_seconds(), new.search_seconds());

    let mut v3 = printed_record(&dir.path().join("cream"));
    v3["version"] = 3.into();
    std::fs::write(dir.path().join("cream/search.json"), v3.to_string()).unwrap();
    let e = SearchRun::open(&dir.path().join("cream")).err().unwrap().to_string();
    assert!(e.contains("version 3"), "{e}");
    let e = SearchRun::open(dir.path()).err().unwrap().to_string();
    assert!(e.contains("is not a search run"), "{e}");
}

fn printed_record(run: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(run.join("search.json")).unwrap()).unwrap()
}
