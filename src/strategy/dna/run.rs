//! A search run directory: plain files every stage reads and writes, so stages can run, resume
//! or be replaced on their own, and blocks can train as separate processes (or hosts) sharing it.
//!
//! ```text
//! run.json                      teacher (sha256), space, data, seed, supernet training settings
//! teacher.onnx, space.json      copies: the run needs nothing outside itself
//! train/blocks-0-1/             one training group's log (train.jsonl) and final weights
//! blocks/<i>/ckpt/              block i's checkpoint, whatever group it trains in
//! blocks/<i>/train.lock         held by the one process training block i
//! blocks/<i>/weights.safetensors, blocks/<i>/done.json   a finished block
//! eval/block-<i>.json           rankings of every candidate of block i (dnas evaluate)
//! arch.json                     the selected architecture (dnas select)
//! ```
//!
//! `run.json` holds no timestamps, so two processes creating the same run write the same bytes.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::data::DataSpec;
use crate::ir::{fixed_input_shapes, Graph};
use crate::space::{resolve, CutRef, Resolved, SearchSpace};
use crate::teacher::cuts::{auto_cuts, named_cuts};
use crate::util::{sha256_hex, write_atomic};

/// Supernet training settings (DNA's defaults: Adam, weight decay 1e-4 except BN and biases,
/// learning rate per block from the space, × 0.9 per epoch).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SupernetTrain {
    pub epochs: usize,
    pub batch: usize,
    /// Train on the first N samples of the training split.
    pub train_subset: Option<usize>,
    /// Stop after this many steps (smoke runs and tests).
    pub max_steps: Option<usize>,
    pub weight_decay: f64,
    /// Learning-rate factor per epoch.
    pub gamma: f64,
    pub augment: bool,
    /// Held-out batches (of 256) for the loss printed after every epoch.
    pub probe_batches: usize,
    pub ckpt_every: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TeacherRecord {
    pub file: String,
    pub sha256: String,
    /// Where it was copied from.
    pub source: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub format: String,
    pub version: u32,
    pub teacher: TeacherRecord,
    /// `name@version` of the space; the file is `space.json`.
    pub space: String,
    pub data: DataSpec,
    pub seed: u64,
    pub train: SupernetTrain,
}

pub struct RunDir {
    pub root: PathBuf,
    pub record: RunRecord,
}

impl RunDir {
    /// Creates the run (copying teacher and space in), or opens it when it already exists with
    /// the same settings; a different teacher, space, data, seed or training setting is an error.
    pub fn create(root: &Path, teacher: &Path, space: &Path, data: DataSpec, seed: u64, train: SupernetTrain) -> Result<RunDir> {
        let tbytes = std::fs::read(teacher).with_context(|| format!("cannot read teacher '{}'", teacher.display()))?;
        let sbytes = std::fs::read(space).with_context(|| format!("cannot read search space '{}'", space.display()))?;
        let parsed = SearchSpace::parse(std::str::from_utf8(&sbytes).unwrap_or(""))
            .with_context(|| format!("search space '{}'", space.display()))?;
        let record = RunRecord {
            format: "dnas.run".into(),
            version: 1,
            teacher: TeacherRecord { file: "teacher.onnx".into(), sha256: sha256_hex(&tbytes), source: teacher.display().to_string() },
            space: format!("{}@{}", parsed.name, parsed.version),
            data,
            seed,
            train,
        };
        if root.join("run.json").exists() {
            let run = RunDir::open(root)?;
            if run.record.teacher.sha256 != record.teacher.sha256 || run.record.space != record.space {
                bail!(
                    "'{}' is a run of teacher {} with space {}; not of '{}' with {}",
                    root.display(),
                    run.record.teacher.source,
                    run.record.space,
                    teacher.display(),
                    record.space
                );
            }
            let existing = std::fs::read(root.join("space.json")).unwrap_or_default();
            if existing != sbytes {
                bail!("'{}' was created with another version of space '{}'", root.display(), record.space);
            }
            run.check_same(&record)?;
            return Ok(run);
        }
        // Fail before writing anything (and not in the middle of training) when the teacher is
        // unreadable or the space does not fit it.
        let graph = crate::onnx::read_model(&tbytes).with_context(|| format!("teacher '{}'", teacher.display()))?;
        let what = format!("teacher '{}'", teacher.display());
        let (graph, adapted) = crate::teacher::layout::adapt(graph, &what)?;
        if let Some(note) = adapted.describe() {
            eprintln!("{what}: {note}");
        }
        resolve_with_teacher(&parsed, &graph).with_context(|| format!("space '{}' on teacher '{}'", space.display(), teacher.display()))?;
        std::fs::create_dir_all(root).with_context(|| format!("cannot create '{}'", root.display()))?;
        write_atomic(&root.join("teacher.onnx"), &tbytes)?;
        write_atomic(&root.join("space.json"), &sbytes)?;
        write_atomic(&root.join("run.json"), serde_json::to_string_pretty(&record)?.as_bytes())?;
        Ok(RunDir { root: root.to_path_buf(), record })
    }

    pub fn open(root: &Path) -> Result<RunDir> {
        let p = root.join("run.json");
        let text = std::fs::read_to_string(&p).with_context(|| {
            format!(
                "'{}' is not a search run (no run.json); create one with dnas train --run DIR --teacher T.onnx --space S.json",
                root.display()
            )
        })?;
        let record: RunRecord = serde_json::from_str(&text).with_context(|| format!("'{}' is not a valid run record", p.display()))?;
        if record.format != "dnas.run" || record.version != 1 {
            bail!("'{}': unknown run format {} v{}", p.display(), record.format, record.version);
        }
        Ok(RunDir { root: root.to_path_buf(), record })
    }

    /// Errors when `other` (settings given on this command line) differs from the run's.
    pub fn check_same(&self, other: &RunRecord) -> Result<()> {
        let (a, b) = (serde_json::to_value(&self.record)?, serde_json::to_value(other)?);
        for key in ["data", "seed", "train"] {
            if a[key] != b[key] {
                bail!("'{}' was created with {key} = {}, not {}: use another --run directory", self.root.display(), a[key], b[key]);
            }
        }
        Ok(())
    }

    pub fn teacher(&self) -> Result<Graph> {
        let p = self.root.join(&self.record.teacher.file);
        let bytes = std::fs::read(&p).with_context(|| format!("cannot read '{}'", p.display()))?;
        if sha256_hex(&bytes) != self.record.teacher.sha256 {
            bail!("'{}' changed since the run was created (sha256 differs from run.json)", p.display());
        }
        let g = crate::onnx::read_model(&bytes).with_context(|| format!("'{}'", p.display()))?;
        crate::teacher::layout::for_training(g, &format!("teacher '{}'", p.display()))
    }

    pub fn space(&self) -> Result<SearchSpace> {
        SearchSpace::load(&self.root.join("space.json"))
    }

    /// The space bound to the teacher's cuts.
    pub fn resolve(&self, teacher: &Graph) -> Result<Resolved> {
        resolve_with_teacher(&self.space()?, teacher).with_context(|| format!("space '{}' on the run's teacher", self.record.space))
    }

    pub fn block_dir(&self, i: usize) -> PathBuf {
        self.root.join("blocks").join(i.to_string())
    }
    pub fn weights_path(&self, i: usize) -> PathBuf {
        self.block_dir(i).join("weights.safetensors")
    }
    pub fn done_path(&self, i: usize) -> PathBuf {
        self.block_dir(i).join("done.json")
    }
    pub fn is_done(&self, i: usize) -> bool {
        self.done_path(i).exists() && self.weights_path(i).exists()
    }
    pub fn group_dir(&self, blocks: &[usize]) -> PathBuf {
        let ids: Vec<String> = blocks.iter().map(|b| b.to_string()).collect();
        self.root.join("train").join(format!("blocks-{}", ids.join("-")))
    }
    pub fn eval_path(&self, i: usize) -> PathBuf {
        self.root.join("eval").join(format!("block-{i}.json"))
    }
}

/// Binds `space` to `teacher`: automatic cut indices and tensor names become (name, [c, h, w])
/// at the space's input size.
pub fn resolve_with_teacher(space: &SearchSpace, teacher: &Graph) -> Result<Resolved> {
    let mut shapes = fixed_input_shapes(teacher, 1)?;
    let input = teacher.data_inputs().next().ok_or_else(|| anyhow!("the teacher has no data input"))?.name.clone();
    let declared = shapes.get(&input).cloned().unwrap_or_default();
    let want = vec![1, space.input[0], space.input[1], space.input[2]];
    if declared.len() == 4 && declared[1] != want[1] {
        bail!("input: the space has {} input channels, the teacher {}", want[1], declared[1]);
    }
    shapes.insert(input, want);
    let facts = crate::exec::infer(teacher, &shapes)?;
    let auto = auto_cuts(teacher, &facts)?;
    let chw = |s: &[usize]| -> Result<[usize; 3]> {
        match s {
            [_, c, h, w] => Ok([*c, *h, *w]),
            other => bail!("cut shape {other:?} is not [N, C, H, W]"),
        }
    };
    resolve(space, &|c: &CutRef| match c {
        CutRef::Auto(i) => {
            let p = auto.get(*i).ok_or_else(|| {
                anyhow!("the teacher has {} automatic cuts (#0..#{}); #{i} does not exist", auto.len(), auto.len().saturating_sub(1))
            })?;
            Ok((p.tensor.clone(), chw(&p.shape)?))
        }
        CutRef::Tensor(name) => {
            let p = named_cuts(teacher, &facts, std::slice::from_ref(name))?.remove(0);
            Ok((p.tensor, chw(&p.shape)?))
        }
    })
}
