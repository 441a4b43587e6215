//! Slurm job scripts for a DNA run: one array job with a task per block still to train and rank
//! (each runs the given train and evaluate command lines with `--block $SLURM_ARRAY_TASK_ID`,
//! requeued to resume from its checkpoint when preempted), then one gather job
//! `--dependency=afterok:<array>`. The scripts land in `DIR/slurm/` as plain files — what was
//! submitted is what you can read — and `slurm/submitted.json` records the job ids.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::util::write_atomic;

/// Resources of every job (sbatch options).
pub struct JobResources {
    pub cpus: usize,
    /// e.g. 4G.
    pub mem: String,
    /// 0 = none.
    pub gpus: usize,
    pub partition: Option<String>,
    pub account: Option<String>,
    /// e.g. 2:00:00.
    pub time: Option<String>,
}

/// The written scripts and the command lines in them.
pub struct Scripts {
    pub dir: PathBuf,
    pub logs: PathBuf,
    pub blocks_script: PathBuf,
    pub gather_script: PathBuf,
    /// The array's blocks (those not yet trained and ranked).
    pub todo: Vec<usize>,
    pub blocks: usize,
    pub train_cmd: String,
    pub eval_cmd: String,
    pub gather_cmd: String,
}

/// `slurm/submitted.json`.
#[derive(Serialize)]
pub struct Submitted {
    pub format: String,
    pub version: u32,
    pub array_job: String,
    pub gather_job: String,
    pub blocks: usize,
    pub array_blocks: Vec<usize>,
    pub scripts: serde_json::Value,
    pub logs: PathBuf,
}

/// A shell word: single-quoted unless it is plainly safe.
fn quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:=,+@%".contains(c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

fn command_line(dnas: &Path, args: &[OsString]) -> String {
    let mut out = quote(&dnas.display().to_string());
    for a in args {
        out.push(' ');
        out.push_str(&quote(&a.to_string_lossy()));
    }
    out
}

/// Runs a dnas command so that preemption resumes it: Slurm sends USR1 to this script two
/// minutes before the time limit (`--signal=B:USR1@120`), the script passes it on, dnas writes
/// a checkpoint at the next step and exits 3, and the task requeues itself to resume there. (A
/// requeue or cancellation from outside sends SIGTERM to dnas directly: the same checkpoint.)
const PREEMPTION: &str = r#"run() {
  "$@" & pid=$!
  trap 'kill -USR1 "$pid" 2>/dev/null' USR1
  while :; do
    rc=0
    wait "$pid" || rc=$?
    # A trap interrupts `wait` while the command still runs: wait again.
    kill -0 "$pid" 2>/dev/null || break
  done
  [ "$rc" -eq 0 ] && return 0
  if [ "$rc" -eq 3 ]; then
    echo "preempted: requeueing ${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID} to resume from its checkpoint"
    scontrol requeue "${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"
    exit 0
  fi
  return "$rc"
}
"#;

/// Slurm's array index list: "0,2,3".
pub fn array_spec(blocks: &[usize]) -> String {
    blocks.iter().map(|b| b.to_string()).collect::<Vec<_>>().join(",")
}

/// Writes `DIR/slurm/blocks.sh` (an array over `todo` of `blocks` blocks: `dnas` with `train`,
/// then with `evaluate`, each given `--block`) and `gather.sh` (`dnas` with `gather`).
pub fn write_scripts(
    dir: &Path,
    dnas: &Path,
    (train, evaluate, gather): (&[OsString], &[OsString], &[OsString]),
    (blocks, todo): (usize, Vec<usize>),
    res: &JobResources,
) -> Result<Scripts> {
    let slurm_dir = dir.join("slurm");
    let logs = slurm_dir.join("logs");
    std::fs::create_dir_all(&logs).with_context(|| format!("cannot create '{}'", logs.display()))?;
    let header = |name: &str, extra: &[String]| -> String {
        let mut h = format!("#!/bin/bash\n# Written by `dnas submit slurm` for {}.\n#SBATCH --job-name={name}\n", dir.display());
        for l in extra {
            h.push_str(&format!("#SBATCH {l}\n"));
        }
        h.push_str(&format!("#SBATCH --cpus-per-task={}\n#SBATCH --mem={}\n", res.cpus, res.mem));
        if res.gpus > 0 {
            h.push_str(&format!("#SBATCH --gres=gpu:{}\n", res.gpus));
        }
        for (k, v) in [("partition", &res.partition), ("account", &res.account), ("time", &res.time)] {
            if let Some(v) = v {
                h.push_str(&format!("#SBATCH --{k}={v}\n"));
            }
        }
        h.push_str("set -euo pipefail\n");
        h
    };
    let block = "\"$SLURM_ARRAY_TASK_ID\"";
    let train_cmd = format!("{} --block {block}", command_line(dnas, train));
    let eval_cmd = format!("{} --block {block}", command_line(dnas, evaluate));
    let array_opts = [
        format!("--array={}", array_spec(&todo)),
        format!("--output={}/block-%a.out", logs.display()),
        "--requeue".into(),
        "--signal=B:USR1@120".into(),
        // A requeued task appends to its log: both runs stay readable.
        "--open-mode=append".into(),
    ];
    let block_script = format!(
        "{}{PREEMPTION}echo \"block $SLURM_ARRAY_TASK_ID of {blocks} on $(hostname)\"\nrun {train_cmd}\nrun {eval_cmd}\n",
        header("dnas-blocks", &array_opts)
    );
    let gather_cmd = command_line(dnas, gather);
    let gather_script = format!("{}{gather_cmd}\n", header("dnas-gather", &[format!("--output={}/gather.out", logs.display())]));
    let (blocks_script, gather_path) = (slurm_dir.join("blocks.sh"), slurm_dir.join("gather.sh"));
    write_atomic(&blocks_script, block_script.as_bytes())?;
    write_atomic(&gather_path, gather_script.as_bytes())?;
    Ok(Scripts { dir: slurm_dir, logs, blocks_script, gather_script: gather_path, todo, blocks, train_cmd, eval_cmd, gather_cmd })
}

/// Submits the scripts with `sbatch` (the array, then the gather job after it; only the gather
/// job when every block is done) and writes `slurm/submitted.json`.
pub fn submit(sbatch: &str, s: &Scripts) -> Result<Submitted> {
    let run = |extra: &[String], script: &Path| -> Result<String> {
        let out = Command::new(sbatch)
            .arg("--parsable")
            .args(extra)
            .arg(script)
            .output()
            .with_context(|| format!("cannot run '{sbatch}' (is Slurm installed here? --dry-run writes the scripts only)"))?;
        if !out.status.success() {
            bail!("{sbatch} {} failed: {}", script.display(), String::from_utf8_lossy(&out.stderr).trim());
        }
        // --parsable prints "id" or "id;cluster".
        Ok(String::from_utf8_lossy(&out.stdout).trim().split(';').next().unwrap_or_default().to_string())
    };
    let (array_job, gather_job) = if s.todo.is_empty() {
        (String::new(), run(&[], &s.gather_script)?)
    } else {
        let array = run(&[], &s.blocks_script)?;
        let gather = run(&[format!("--dependency=afterok:{array}")], &s.gather_script)?;
        (array, gather)
    };
    let rec = Submitted {
        format: "dnas.slurm".into(),
        version: 1,
        array_job,
        gather_job,
        blocks: s.blocks,
        array_blocks: s.todo.clone(),
        scripts: serde_json::json!({"blocks": s.blocks_script, "gather": s.gather_script}),
        logs: s.logs.clone(),
    };
    write_atomic(&s.dir.join("submitted.json"), serde_json::to_string_pretty(&rec)?.as_bytes())?;
    Ok(rec)
}
