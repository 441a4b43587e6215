//! Where a DNA run directory stands (`dnas status`): per block done (steps, seconds, final
//! held-out MSE), training (who holds its lock), interrupted (its last checkpoint), ranked — and
//! the gather step's artifacts; where `dnas submit slurm` left `slurm/submitted.json` and Slurm
//! answers, the jobs' states and the failed tasks' log tails. Read-only: it never takes a lock.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Result;
use serde::Serialize;
use serde_json::Value;

use crate::strategy::dna::run::RunDir;
use crate::util::read_json;

#[derive(Serialize)]
pub struct BlockStatus {
    pub block: usize,
    pub name: String,
    /// done | training | interrupted | pending | failed
    pub state: String,
    pub steps: Option<u64>,
    /// The step of the block's last checkpoint (`blocks/<i>/ckpt/`), if it has one.
    pub checkpoint_step: Option<usize>,
    pub seconds: Option<f64>,
    pub held_out_mse: Option<f64>,
    pub ranked: bool,
    /// Who holds the block's lock (a live process), if anyone.
    pub holder: Option<String>,
    /// Slurm's state of this block's array task, when known.
    pub slurm: Option<String>,
    /// Why it failed (the end of its log), when it did.
    pub reason: Option<String>,
}

/// Slurm job states by array task (`squeue`, then `scontrol show job` for finished ones).
fn slurm_states(job: &str) -> Vec<(Option<usize>, String)> {
    let mut out = Vec::new();
    if let Ok(o) = Command::new("scontrol").args(["show", "job", "-o", job]).output() {
        for line in String::from_utf8_lossy(&o.stdout).lines() {
            let field = |k: &str| line.split_whitespace().find_map(|w| w.strip_prefix(&format!("{k}=")).map(str::to_string));
            if let Some(state) = field("JobState") {
                out.push((field("ArrayTaskId").and_then(|t| t.parse().ok()), state));
            }
        }
    }
    out
}

fn log_tail(path: &Path, lines: usize) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let all: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    Some(all[all.len().saturating_sub(lines)..].join(" | "))
}

/// The gather step's artifacts and the Slurm state of its job.
#[derive(Serialize)]
pub struct GatherStatus {
    pub arch: bool,
    pub student: bool,
    pub onnx: bool,
    pub demo_record: bool,
    pub slurm: Option<String>,
}

#[derive(Serialize)]
pub struct RunStatus {
    pub run: PathBuf,
    pub blocks: Vec<BlockStatus>,
    pub gather: GatherStatus,
    /// `slurm/submitted.json`, when `dnas submit slurm` wrote one.
    pub submitted: Option<Value>,
}

impl RunStatus {
    pub fn all_done(&self) -> bool {
        self.blocks.iter().all(|b| b.state == "done")
    }
}

/// The status of `dir`: a demo directory (its `search/`) or a search run directory.
pub fn run_status(dir: &Path) -> Result<RunStatus> {
    let (dir, search) =
        if dir.join("search/run.json").exists() { (dir.to_path_buf(), dir.join("search")) } else { (dir.to_path_buf(), dir.to_path_buf()) };
    let run = RunDir::open(&search)?;
    let space = run.space()?;
    let submitted = read_json(&dir.join("slurm/submitted.json")).ok();
    let array_states = submitted.as_ref().and_then(|s| s["array_job"].as_str()).map(slurm_states).unwrap_or_default();
    let mut blocks = Vec::new();
    for (i, b) in space.blocks.iter().enumerate() {
        let done = read_json(&run.done_path(i)).ok();
        let lock = run.block_dir(i).join("train.lock");
        // Read-only: status never takes (or writes) a block's lock.
        let holder = crate::util::lock::probe(&lock);
        let ckpt = crate::strategy::dna::block_checkpoints::checkpoint_step(&run.block_dir(i)).transpose();
        let interrupted = match &ckpt {
            Some(Ok(step)) => format!("interrupted (checkpoint at step {step})"),
            Some(Err(_)) => "interrupted (checkpoint unreadable)".into(),
            None => String::new(),
        };
        let slurm = array_states.iter().find(|(t, _)| *t == Some(i)).map(|(_, s)| s.clone());
        let failed = matches!(slurm.as_deref(), Some("FAILED" | "TIMEOUT" | "OUT_OF_MEMORY" | "NODE_FAIL" | "CANCELLED"));
        let state = if done.is_some() && run.eval_path(i).exists() {
            "done"
        } else if failed {
            "failed"
        } else if holder.is_some() {
            "training"
        } else if done.is_some() {
            "trained, not ranked"
        } else if ckpt.is_some() {
            &interrupted
        } else {
            "pending"
        };
        let reason = if failed {
            submitted.as_ref().and_then(|s| s["logs"].as_str()).and_then(|l| log_tail(&Path::new(l).join(format!("block-{i}.out")), 3))
        } else {
            None
        };
        blocks.push(BlockStatus {
            block: i,
            name: b.name.clone(),
            state: state.into(),
            steps: done.as_ref().and_then(|d| d["steps"].as_u64()),
            checkpoint_step: ckpt.and_then(|c| c.ok()),
            seconds: done.as_ref().and_then(|d| d["seconds"].as_f64()),
            held_out_mse: done.as_ref().and_then(|d| d["held_out_mse"].as_array()?.last()?.as_f64()),
            ranked: run.eval_path(i).exists(),
            holder,
            slurm,
            reason,
        });
    }
    let gather_state =
        submitted.as_ref().and_then(|s| s["gather_job"].as_str()).and_then(|j| slurm_states(j).into_iter().next()).map(|(_, s)| s);
    let gather = GatherStatus {
        arch: search.join("arch.json").exists(),
        student: dir.join("student/result.json").exists(),
        onnx: dir.join("student.onnx").exists(),
        demo_record: dir.join("demo.json").exists(),
        slurm: gather_state,
    };
    Ok(RunStatus { run: search, blocks, gather, submitted })
}
