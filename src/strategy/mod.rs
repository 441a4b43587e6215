//! The search strategies side by side — [`dna`] (block-wise KD supernets), [`oneshot`] (SPOS and
//! Cream of the Crop over one whole-network supernet), [`mfkd`] (low-fidelity training with KD
//! and a Gaussian-process surrogate) — and the one contract between them and everything after a
//! search:
//!
//! - [`Strategy`]: the closed set of strategies;
//! - `search.json` ([`SearchRecord`], format `dnas.search` version 2): the typed header every
//!   strategy writes when its search starts (strategy, space, teacher hash, cost limits, seed,
//!   settings) and the result it adds when it has its pick (the `arch.json` it wrote, what the
//!   predicted number is and which direction is better, the search's cost);
//! - [`SearchRun`]: the one way to open any search run — a version-2 record, or a run directory
//!   written before it (`run.json`, `oneshot.json`, `mfkd.json`, the free-form `search.json`) —
//!   and ask it for its pick ([`SearchRun::pick`]), its study predictors
//!   ([`SearchRun::predictors`]) and its cost ([`SearchRun::search_seconds`]).
//!
//! Strategies depend on the shared `space`, `train`, `data` and `study` (the predictor
//! interface); nothing below depends on them.

pub mod dna;
pub mod mfkd;
pub mod oneshot;
mod open;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::space::arch::Arch;
use crate::space::limits::PathBudget;
use crate::space::{resolve_standalone, Resolved, SearchSpace};
use crate::util::{read_json, write_atomic};

pub use open::{Pick, PickRequest, PredictorRequest, SearchRun};

/// `search.json`'s format name and the version this build writes.
pub const SEARCH_FORMAT: &str = "dnas.search";
pub const SEARCH_VERSION: u32 = 2;

/// A search strategy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// Block-wise supernets distilled from the teacher's blocks, ranked per block, selected
    /// exactly under the budget.
    Dna,
    /// Single-path one-shot: uniform path sampling, evolutionary search on inherited weights.
    Spos,
    /// Cream of the Crop: prioritized paths teaching the sampled ones.
    Cream,
    /// Multi-fidelity search with knowledge distillation: no weight sharing.
    Mfkd,
}

impl Strategy {
    pub const ALL: [Strategy; 4] = [Strategy::Dna, Strategy::Spos, Strategy::Cream, Strategy::Mfkd];

    pub fn name(self) -> &'static str {
        match self {
            Strategy::Dna => "dna",
            Strategy::Spos => "spos",
            Strategy::Cream => "cream",
            Strategy::Mfkd => "mfkd",
        }
    }

    pub fn parse(s: &str) -> Result<Strategy> {
        Strategy::ALL.into_iter().find(|x| x.name() == s).with_context(|| format!("unknown strategy '{s}' (dna, spos, cream, mfkd)"))
    }

    /// The file of the strategy's own settings in its run directory.
    pub fn settings_file(self) -> &'static str {
        match self {
            Strategy::Dna => "run.json",
            Strategy::Spos | Strategy::Cream => "oneshot.json",
            Strategy::Mfkd => "mfkd.json",
        }
    }
}

impl std::fmt::Display for Strategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What every strategy says about its search before it runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SearchHeader {
    pub format: String,
    pub version: u32,
    pub strategy: Strategy,
    /// The searched space, `name@version`.
    pub space: String,
    /// SHA-256 of the teacher the space was resolved on (and distilled from); empty when the
    /// space resolved without one.
    pub teacher_sha256: String,
    /// The pick's cost limits (one-shot and MF-KD: every sampled path's too; DNA trains without
    /// them and applies them when it selects).
    pub limits: PathBudget,
    /// Seed of data order, initial weights and sampling.
    pub seed: u64,
    /// The strategy's own settings, as in its settings file ([`Strategy::settings_file`]).
    pub settings: Value,
}

impl SearchHeader {
    pub fn new(strategy: Strategy, space: String, teacher_sha256: String, limits: PathBudget, seed: u64, settings: Value) -> SearchHeader {
        SearchHeader { format: SEARCH_FORMAT.into(), version: SEARCH_VERSION, strategy, space, teacher_sha256, limits, seed, settings }
    }
}

/// What a search found, and what it cost.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SearchResult {
    /// The pick's architecture file, relative to the run directory.
    pub arch: String,
    /// The pick's architecture key (`space::point::arch_key`).
    pub key: String,
    pub macs: u64,
    pub params: u64,
    /// The pick's predicted quality: what the number is, and whether higher is better (the same
    /// as `arch.json`'s `predicted` block).
    pub score: f64,
    pub score_kind: String,
    pub higher_is_better: bool,
    /// Seconds spent training (supernets; MF-KD's evaluations, reused ones included) and
    /// searching besides (ranking, evolution, board re-scoring, exact selection); disjoint, so
    /// their sum is the search's compute.
    pub train_seconds: f64,
    pub search_seconds: f64,
    /// Strategy-specific figures (evaluations per fidelity, board size, …).
    #[serde(default)]
    pub detail: Value,
}

impl SearchResult {
    /// The result for `arch` (written as `file` in the run directory), its predicted block copied.
    pub fn of_arch(arch: &Arch, file: &str, train_seconds: f64, search_seconds: f64, detail: Value) -> SearchResult {
        let p = &arch.predicted;
        SearchResult {
            arch: file.into(),
            key: crate::space::point::arch_key(arch),
            macs: p.macs,
            params: p.params,
            score: p.score,
            score_kind: p.score_kind.clone(),
            higher_is_better: p.higher_is_better.unwrap_or(false),
            train_seconds,
            search_seconds,
            detail,
        }
    }
}

/// `search.json`: the header, then the result once the search has its pick.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SearchRecord {
    #[serde(flatten)]
    pub header: SearchHeader,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<SearchResult>,
}

pub fn record_path(root: &Path) -> PathBuf {
    root.join("search.json")
}

/// A search starts: writes its header. A run that already has the same header keeps its record
/// (a resumed search, its result included); a different header (DNA selecting under other
/// limits) replaces it and drops the old result.
pub fn begin(root: &Path, header: &SearchHeader) -> Result<()> {
    let path = record_path(root);
    if path.exists() {
        if let Ok(rec) = serde_json::from_value::<SearchRecord>(read_json(&path)?) {
            if rec.header == *header {
                return Ok(());
            }
        }
    }
    write_atomic(&path, serde_json::to_string_pretty(&SearchRecord { header: header.clone(), result: None })?.as_bytes())
}

/// A search has its pick: adds the result to the run's record (written by [`begin`]).
pub fn finish(root: &Path, result: SearchResult) -> Result<SearchRecord> {
    let path = record_path(root);
    let mut rec: SearchRecord = serde_json::from_value(read_json(&path)?)
        .with_context(|| format!("'{}' is not a version-{SEARCH_VERSION} search record", path.display()))?;
    rec.result = Some(result);
    write_atomic(&path, serde_json::to_string_pretty(&rec)?.as_bytes())?;
    Ok(rec)
}

/// A space file resolved on the teacher when one is given, else on its own (automatic cut
/// indices only): how one-shot and MF-KD runs, and the study, resolve a run's `space.json`.
pub fn resolve_space(space: &Path, teacher: Option<&Path>) -> Result<Resolved> {
    let s = SearchSpace::load(space)?;
    match teacher {
        Some(t) => {
            let g = crate::teacher::layout::for_training(crate::onnx::read_file(t)?, &format!("teacher '{}'", t.display()))?;
            dna::run::resolve_with_teacher(&s, &g).with_context(|| format!("space '{}' on teacher '{}'", space.display(), t.display()))
        }
        None => resolve_standalone(&s).with_context(|| format!("space '{}' (give --teacher for tensor cuts)", space.display())),
    }
}

/// SHA-256 of a teacher file, or empty without one.
pub fn teacher_sha256(teacher: Option<&Path>) -> Result<String> {
    match teacher {
        Some(t) => Ok(crate::util::sha256_hex(&std::fs::read(t).with_context(|| format!("cannot read teacher '{}'", t.display()))?)),
        None => Ok(String::new()),
    }
}

/// `name@version` of a resolved space.
pub fn space_id(resolved: &Resolved) -> String {
    format!("{}@{}", resolved.space.name, resolved.space.version)
}

/// Refuses a run of another space than `expected` (a study's, a truth set's).
pub fn check_space(run: &Path, searched: &str, expected: &str) -> Result<()> {
    if searched != expected {
        bail!("'{}' searched space {searched} but the study is of {expected}", run.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strategy_names_round_trip_and_unknown_is_refused() {
        for s in Strategy::ALL {
            assert_eq!(Strategy::parse(s.name()).unwrap(), s);
            assert_eq!(serde_json::to_value(s).unwrap(), Value::String(s.name().into()));
        }
        assert!(Strategy::parse("darts").unwrap_err().to_string().contains("darts"));
    }

    #[test]
    fn begin_keeps_a_matching_record_and_replaces_another() {
        let dir = tempfile::tempdir().unwrap();
        let h = SearchHeader::new(Strategy::Spos, "s@1".into(), String::new(), PathBudget::default(), 3, Value::Null);
        begin(dir.path(), &h).unwrap();
        let r = SearchResult {
            arch: "arch.json".into(),
            key: "k".into(),
            macs: 1,
            params: 2,
            score: 0.5,
            score_kind: "x".into(),
            higher_is_better: true,
            train_seconds: 1.0,
            search_seconds: 2.0,
            detail: Value::Null,
        };
        finish(dir.path(), r.clone()).unwrap();
        begin(dir.path(), &h).unwrap();
        let rec: SearchRecord = serde_json::from_value(read_json(&record_path(dir.path())).unwrap()).unwrap();
        assert_eq!(rec.result.as_ref(), Some(&r), "a resumed search keeps its result");
        assert_eq!(rec.header.version, SEARCH_VERSION);
        let other = SearchHeader { limits: PathBudget { max_macs: Some(5), max_params: None }, ..h };
        begin(dir.path(), &other).unwrap();
        let rec: SearchRecord = serde_json::from_value(read_json(&record_path(dir.path())).unwrap()).unwrap();
        assert_eq!(rec.header, other);
        assert!(rec.result.is_none(), "other limits drop the old result");
    }
}
