//! [`SearchRun`]: any search run directory, opened one way — a version-2 `search.json`, or a run
//! written before it, whose header is rebuilt from the strategy's own settings file — and asked
//! for its pick, its study predictors and its cost. No other code tells strategies apart by
//! which files a directory holds.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use super::dna::choose::choose;
use super::dna::metric::DnaMetric;
use super::dna::predict::DnaPredictor;
use super::dna::record::dna_seconds;
use super::dna::run::RunDir;
use super::dna::select::Budget as SelectBudget;
use super::mfkd::lowfi::{lowfi_dirs, LowFiPredictor};
use super::oneshot::predict::OneShotPredictor;
use super::{record_path, resolve_space, SearchHeader, SearchRecord, SearchResult, Strategy, SEARCH_FORMAT, SEARCH_VERSION};
use crate::space::arch::Arch;
use crate::space::limits::PathBudget;
use crate::space::Resolved;
use crate::study::predict::Predictor;
use crate::study::truth::{Retrainer, StudyDir};
use crate::util::read_json;

/// A search run directory of any strategy.
pub struct SearchRun {
    pub root: PathBuf,
    pub header: SearchHeader,
    /// `None` until the search has its pick.
    pub result: Option<SearchResult>,
    /// Whether the record was rebuilt from files written before `search.json` version 2.
    pub rebuilt: bool,
}

/// How a run's pick is taken for a study: the limits it must have been searched under (a DNA
/// run selects under them here), DNA's block metric, and the teacher one-shot and MF-KD runs
/// resolve their space on.
pub struct PickRequest<'a> {
    pub limits: PathBudget,
    pub metric: DnaMetric,
    pub teacher: Option<&'a Path>,
}

/// A run's pick: the architecture, the resolved space it comes from, and the teacher a
/// distilling retrain would use.
pub struct Pick {
    pub arch: Arch,
    pub resolved: Resolved,
    pub teacher: Option<PathBuf>,
}

/// What a run's study predictors need besides the run.
pub struct PredictorRequest<'a> {
    /// The study (truth set) they will be scored against: its space must be the run's.
    pub study: &'a StudyDir,
    /// DNA: one block metric, or `all`.
    pub metric: &'a str,
    /// One-shot and MF-KD: the teacher that resolves the space's tensor cuts.
    pub teacher: Option<&'a Path>,
    pub device: tch::Device,
    /// One-shot: held-out batches (of `eval_batch`) each architecture is scored on.
    pub eval_batches: usize,
    pub eval_batch: usize,
    /// MF-KD: which low-fidelity variants (`kd`, `ce`, `both`, …; see `mfkd::lowfi::lowfi_dirs`).
    pub lowfi: &'a str,
    /// MF-KD: the trainer of each low-fidelity evaluation.
    pub lowfi_trainer: &'a dyn Fn() -> Box<dyn Retrainer>,
}

impl SearchRun {
    /// Opens `root`: its `search.json` (version 2), else the files of a run written before it.
    /// A `search.json` of another version is refused with that version named.
    pub fn open(root: &Path) -> Result<SearchRun> {
        let file = record_path(root);
        let v1 = if file.exists() {
            let v = read_json(&file)?;
            match (v["format"].as_str(), v["version"].as_u64()) {
                (Some(SEARCH_FORMAT), Some(n)) if n == SEARCH_VERSION as u64 => {
                    let rec: SearchRecord = serde_json::from_value(v)
                        .with_context(|| format!("'{}' is not a valid version-{SEARCH_VERSION} search record", file.display()))?;
                    return Ok(SearchRun { root: root.to_path_buf(), header: rec.header, result: rec.result, rebuilt: false });
                }
                (Some(SEARCH_FORMAT), Some(n)) => {
                    bail!(
                        "'{}' is search record version {n}; this dnas reads version {SEARCH_VERSION} and the files before it",
                        file.display()
                    )
                }
                (None, _) if v["strategy"].is_string() => Some(v),
                _ => bail!("'{}' is not a dnas search record (format {SEARCH_FORMAT})", file.display()),
            }
        } else {
            None
        };
        rebuild(root, v1)
    }

    pub fn strategy(&self) -> Strategy {
        self.header.strategy
    }

    /// Refuses a run of another space than the study's.
    pub fn check_space(&self, expected: &str) -> Result<()> {
        super::check_space(&self.root, &self.header.space, expected)
    }

    /// The run's pick under `req.limits`. DNA selects it here from its rankings with
    /// `req.metric`; the others' `arch.json` must have been searched under exactly those limits
    /// (else the comparison with random architectures within them would not be fair).
    pub fn pick(&self, req: &PickRequest) -> Result<Pick> {
        if self.strategy() == Strategy::Dna {
            let run = RunDir::open(&self.root)?;
            let teacher = run.root.join(&run.record.teacher.file);
            let resolved = run.resolve(&run.teacher()?)?;
            let budget = SelectBudget { max_macs: req.limits.max_macs, max_params: req.limits.max_params, ..Default::default() };
            let choice = choose(&run, budget, None, 1, req.metric)?;
            let arch = choice.archs.into_iter().next().context("no architecture fits the budget")?;
            return Ok(Pick { arch, resolved, teacher: Some(teacher) });
        }
        let file = self.root.join(self.result.as_ref().map_or("arch.json", |r| r.arch.as_str()));
        if !file.exists() {
            bail!(
                "'{}' has no pick: its search has not finished (dnas search {} --run {})",
                file.display(),
                self.strategy(),
                self.root.display()
            );
        }
        let arch = Arch::load(&file)?;
        if self.header.limits != req.limits {
            let show = |v: Option<u64>| v.map_or("none".to_string(), |v| v.to_string());
            bail!(
                "'{}' was searched under max_macs {} / max_params {}, not the pick's {} / {}: search again under that budget",
                self.root.display(),
                show(self.header.limits.max_macs),
                show(self.header.limits.max_params),
                show(req.limits.max_macs),
                show(req.limits.max_params)
            );
        }
        let resolved = resolve_space(&self.root.join("space.json"), req.teacher)?;
        Ok(Pick { arch, resolved, teacher: req.teacher.map(Path::to_path_buf) })
    }

    /// The run's study predictors, each with its label: DNA one per block metric, SPOS and
    /// Cream the inherited-weight top-1, MF-KD one per low-fidelity variant.
    pub fn predictors(&self, req: &PredictorRequest) -> Result<Vec<(String, Box<dyn Predictor>)>> {
        self.check_space(&req.study.record.space)?;
        let mut out: Vec<(String, Box<dyn Predictor>)> = Vec::new();
        match self.strategy() {
            Strategy::Dna => {
                let run = RunDir::open(&self.root)?;
                let metrics = if req.metric == "all" { DnaMetric::ALL.to_vec() } else { vec![DnaMetric::parse(req.metric)?] };
                for m in metrics {
                    out.push((m.label().into(), Box::new(DnaPredictor::from_run("dna", &run, m)?)));
                }
            }
            Strategy::Spos | Strategy::Cream => {
                let space = resolve_space(&self.root.join("space.json"), req.teacher)?;
                let p = OneShotPredictor::from_run(&self.root, space, req.eval_batches, req.eval_batch, req.device)?;
                out.push(("inherited".into(), Box::new(p)));
            }
            Strategy::Mfkd => {
                let resolved = resolve_space(&self.root.join("space.json"), req.teacher)?;
                for (label, dir) in lowfi_dirs(&self.root, req.lowfi, req.study, &resolved)? {
                    let p = LowFiPredictor { label: format!("mfkd:{label}"), dir, trainer: (req.lowfi_trainer)(), seed: 0 };
                    out.push((label, Box::new(p)));
                }
            }
        }
        Ok(out)
    }

    /// The search's compute in seconds (training plus searching): its record's, or for a DNA run
    /// not selected through `search.json`, its block trainings (blocks trained together counted
    /// once) plus its rankings. `None` while unknown.
    pub fn search_seconds(&self) -> Option<f64> {
        if let Some(r) = &self.result {
            let s = r.train_seconds + r.search_seconds;
            return (s > 0.0).then_some(s);
        }
        if self.strategy() != Strategy::Dna {
            return None;
        }
        dna_seconds(&RunDir::open(&self.root).ok()?).map(|(t, r)| t + r)
    }
}

/// The record of a run written before `search.json` version 2 (or a DNA run not yet selected):
/// the header from the strategy's settings file, the result from the free-form `search.json`
/// (`v1`) and `arch.json`.
fn rebuild(root: &Path, v1: Option<Value>) -> Result<SearchRun> {
    let strategy = match v1.as_ref().and_then(|v| v["strategy"].as_str()) {
        Some(s) => Strategy::parse(s).with_context(|| format!("'{}'", record_path(root).display()))?,
        None if root.join("run.json").exists() => Strategy::Dna,
        None if root.join("mfkd.json").exists() => Strategy::Mfkd,
        None if root.join("oneshot.json").exists() => {
            let rec = read_json(&root.join("oneshot.json"))?;
            Strategy::parse(rec["strategy"].as_str().unwrap_or_default())
                .with_context(|| format!("'{}'", root.join("oneshot.json").display()))?
        }
        None => bail!(
            "'{}' is not a search run: it has no search.json (nor the run.json, oneshot.json or mfkd.json of earlier versions)",
            root.display()
        ),
    };
    let arch_file = root.join("arch.json");
    let arch = if arch_file.exists() { Some(Arch::load(&arch_file)?) } else { None };
    let limits_of = |v: &Value| PathBudget { max_macs: v["max_macs"].as_u64(), max_params: v["max_params"].as_u64() };
    let header = if strategy == Strategy::Dna {
        let run = RunDir::open(root)?;
        let limits = arch.as_ref().map(|a| limits_of(&a.budget)).unwrap_or_default();
        let settings = serde_json::to_value(&run.record)?;
        SearchHeader::new(strategy, run.record.space.clone(), run.record.teacher.sha256.clone(), limits, run.record.seed, settings)
    } else {
        let file = root.join(strategy.settings_file());
        let rec = read_json(&file)?;
        let teacher = rec["teacher_sha256"].as_str().map(String::from).or_else(|| arch.as_ref().map(|a| a.teacher_sha256.clone()));
        SearchHeader::new(
            strategy,
            rec["space"].as_str().with_context(|| format!("'{}' names no space", file.display()))?.to_string(),
            teacher.unwrap_or_default(),
            limits_of(&rec["budget"]),
            rec["seed"].as_u64().unwrap_or(0),
            rec,
        )
    };
    let result = match (&arch, &v1) {
        (Some(a), Some(v)) => {
            // Version 1: MF-KD's search_seconds was the invocation's wall time, containing the
            // training of its evaluations; one-shot runs' were disjoint from training.
            let train = v["train_seconds"].as_f64().unwrap_or(0.0);
            let search = if strategy == Strategy::Mfkd { 0.0 } else { v["search_seconds"].as_f64().unwrap_or(0.0) };
            Some(SearchResult::of_arch(a, "arch.json", train, search, v["detail"].clone()))
        }
        (Some(a), None) if strategy == Strategy::Dna => {
            let (train, rank) = dna_seconds(&RunDir::open(root)?).unwrap_or((0.0, 0.0));
            Some(SearchResult::of_arch(a, "arch.json", train, rank, Value::Null))
        }
        _ => None,
    };
    Ok(SearchRun { root: root.to_path_buf(), header, result, rebuilt: true })
}
