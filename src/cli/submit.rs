//! `dnas submit slurm`: the demo's DNA chain as Slurm jobs. One array job with a task per block
//! (`dnas train --block $i`, then `dnas evaluate --block $i`, the demo's own settings), then one
//! job `--dependency=afterok:<array>` running `dnas demo` with the same arguments in the same
//! directory: it finds every block trained and ranked (so it skips both) and runs select →
//! retrain → export → validate, exactly as `dnas demo` alone would. The job scripts land in
//! `DIR/slurm/` and are plain files: what was submitted is what you can read.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};

use super::demo::{evaluate_args, paths, train_args, DemoArgs};
use super::Outcome;
use crate::util::write_atomic;

#[derive(Subcommand)]
pub enum SubmitCommand {
    /// Submit a run's blocks as a Slurm array and the gather step as a dependent job.
    Slurm(SlurmArgs),
}

#[derive(Args)]
pub struct SlurmArgs {
    #[command(flatten)]
    demo: DemoArgs,
    /// Partition (sbatch --partition); default: the cluster's default.
    #[arg(long)]
    partition: Option<String>,
    /// Account to charge (sbatch --account).
    #[arg(long)]
    account: Option<String>,
    /// GPUs per job (sbatch --gres=gpu:N); 0 = none.
    #[arg(long, default_value_t = 0)]
    gpus_per_job: usize,
    /// CPU cores per job (sbatch --cpus-per-task).
    #[arg(long, default_value_t = 2)]
    cpus_per_job: usize,
    /// Memory per job (sbatch --mem, e.g. 4G).
    #[arg(long, default_value = "4G")]
    mem: String,
    /// Time limit per job (sbatch --time, e.g. 2:00:00); default: the partition's.
    #[arg(long)]
    time: Option<String>,
    /// Write the job scripts and print the commands, submit nothing.
    #[arg(long)]
    dry_run: bool,
    /// The sbatch program.
    #[arg(long, default_value = "sbatch")]
    sbatch: String,
}

pub fn submit(c: SubmitCommand) -> Result<Outcome> {
    match c {
        SubmitCommand::Slurm(a) => slurm(a),
    }
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
fn array_spec(blocks: &[usize]) -> String {
    blocks.iter().map(|b| b.to_string()).collect::<Vec<_>>().join(",")
}

fn absolute(p: &Path) -> Result<PathBuf> {
    Ok(if p.is_absolute() { p.to_path_buf() } else { std::env::current_dir()?.join(p) })
}

/// The demo arguments again, as a command line (for the gather job).
fn demo_command(a: &DemoArgs, dir: &Path) -> Vec<OsString> {
    let mut v: Vec<OsString> = vec!["demo".into(), "--preset".into(), a.preset_name().into(), "-o".into(), dir.into()];
    let mut push = |k: &str, val: String| {
        v.push(k.into());
        v.push(val.into());
    };
    push("--device", a.device.clone());
    push("--threads", a.threads.to_string());
    push("--data", a.data.clone());
    push("--seed", a.seed.to_string());
    push("--strategy", a.strategy.clone());
    for (k, p) in [("--teacher", &a.teacher), ("--space", &a.space), ("--budget", &a.budget)] {
        if let Some(p) = p {
            push(k, p.display().to_string());
        }
    }
    if let Some(m) = a.max_macs {
        push("--max-macs", m.to_string());
    }
    v
}

fn slurm(mut a: SlurmArgs) -> Result<Outcome> {
    if a.demo.strategy != "dna" {
        bail!(
            "--strategy {}: only the DNA chain has independent blocks to spread over jobs (use dnas demo for the others)",
            a.demo.strategy
        );
    }
    // Every path absolute: the jobs start in other working directories, on other hosts.
    for p in [&mut a.demo.teacher, &mut a.demo.space, &mut a.demo.budget, &mut a.demo.output].into_iter().flatten() {
        *p = absolute(p)?;
    }
    let mut d = paths(&a.demo)?;
    d.dir = absolute(&d.dir)?;
    d.search = absolute(&d.search)?;
    a.demo.output = Some(d.dir.clone());
    let dnas = std::env::current_exe().context("cannot find the dnas executable")?;

    // The run directory is made here, once, so that the array tasks only open it.
    let mut create = train_args(&a.demo, &d.settings, &d.search);
    if !d.search.join("run.json").exists() {
        create.extend(["--teacher".into(), d.teacher.clone().into(), "--space".into(), d.space.clone().into()]);
    }
    create.push("--create-only".into());
    let mut full: Vec<OsString> = vec!["dnas".into()];
    full.extend(create.iter().cloned());
    super::run(full).context("creating the search run before submitting")?;
    let run = crate::strategy::dna::run::RunDir::open(&d.search)?;
    let blocks = run.space()?.blocks.len();
    // Only blocks not yet trained and ranked: a resubmission reruns what failed, nothing else.
    let todo: Vec<usize> = (0..blocks).filter(|&i| !(run.is_done(i) && run.eval_path(i).exists())).collect();

    let slurm_dir = d.dir.join("slurm");
    let logs = slurm_dir.join("logs");
    std::fs::create_dir_all(&logs).with_context(|| format!("cannot create '{}'", logs.display()))?;
    let header = |name: &str, extra: &[String]| -> String {
        let mut h = format!("#!/bin/bash\n# Written by `dnas submit slurm` for {}.\n#SBATCH --job-name={name}\n", d.dir.display());
        for l in extra {
            h.push_str(&format!("#SBATCH {l}\n"));
        }
        h.push_str(&format!("#SBATCH --cpus-per-task={}\n#SBATCH --mem={}\n", a.cpus_per_job, a.mem));
        if a.gpus_per_job > 0 {
            h.push_str(&format!("#SBATCH --gres=gpu:{}\n", a.gpus_per_job));
        }
        for (k, v) in [("partition", &a.partition), ("account", &a.account), ("time", &a.time)] {
            if let Some(v) = v {
                h.push_str(&format!("#SBATCH --{k}={v}\n"));
            }
        }
        h.push_str("set -euo pipefail\n");
        h
    };
    let block = "\"$SLURM_ARRAY_TASK_ID\"";
    let train_cmd = format!("{} --block {block}", command_line(&dnas, &train_args(&a.demo, &d.settings, &d.search)));
    let eval_cmd = format!("{} --block {block}", command_line(&dnas, &evaluate_args(&a.demo, &d.settings, &d.search)));
    let block_script = format!(
        "{}{PREEMPTION}echo \"block $SLURM_ARRAY_TASK_ID of {blocks} on $(hostname)\"\nrun {train_cmd}\nrun {eval_cmd}\n",
        header(
            "dnas-blocks",
            &[
                format!("--array={}", array_spec(&todo)),
                format!("--output={}/block-%a.out", logs.display()),
                "--requeue".into(),
                "--signal=B:USR1@120".into(),
                // A requeued task appends to its log: both runs stay readable.
                "--open-mode=append".into()
            ]
        )
    );
    let gather_cmd = command_line(&dnas, &demo_command(&a.demo, &d.dir));
    let gather_script = format!("{}{gather_cmd}\n", header("dnas-gather", &[format!("--output={}/gather.out", logs.display())]));
    let (block_path, gather_path) = (slurm_dir.join("blocks.sh"), slurm_dir.join("gather.sh"));
    write_atomic(&block_path, block_script.as_bytes())?;
    write_atomic(&gather_path, gather_script.as_bytes())?;
    println!("job scripts: {} (array tasks for blocks {}), {}", block_path.display(), array_spec(&todo), gather_path.display());
    println!("  each task:  {train_cmd}\n              {eval_cmd}\n  then:       {gather_cmd}");
    if a.dry_run {
        println!("--dry-run: nothing submitted. To submit by hand:");
        println!("  a=$({} --parsable {})", a.sbatch, block_path.display());
        println!("  {} --dependency=afterok:$a {}", a.sbatch, gather_path.display());
        return Ok(Outcome::Ok);
    }
    let sbatch = |extra: &[String], script: &Path| -> Result<String> {
        let out = Command::new(&a.sbatch)
            .arg("--parsable")
            .args(extra)
            .arg(script)
            .output()
            .with_context(|| format!("cannot run '{}' (is Slurm installed here? --dry-run writes the scripts only)", a.sbatch))?;
        if !out.status.success() {
            bail!("{} {} failed: {}", a.sbatch, script.display(), String::from_utf8_lossy(&out.stderr).trim());
        }
        // --parsable prints "id" or "id;cluster".
        Ok(String::from_utf8_lossy(&out.stdout).trim().split(';').next().unwrap_or_default().to_string())
    };
    let (array, gather) = if todo.is_empty() {
        println!("every block is trained and ranked: only the gather job is submitted");
        (String::new(), sbatch(&[], &gather_path)?)
    } else {
        let array = sbatch(&[], &block_path)?;
        let gather = sbatch(&[format!("--dependency=afterok:{array}")], &gather_path)?;
        (array, gather)
    };
    let record = serde_json::json!({
        "format": "dnas.slurm", "version": 1, "array_job": array, "gather_job": gather, "blocks": blocks, "array_blocks": todo,
        "scripts": {"blocks": block_path, "gather": gather_path}, "logs": logs,
    });
    write_atomic(&slurm_dir.join("submitted.json"), serde_json::to_string_pretty(&record)?.as_bytes())?;
    println!("submitted: array job {array} (blocks {}), gather job {gather}", array_spec(&todo));
    println!("follow: squeue -j {array},{gather}; logs in {}", logs.display());
    Ok(Outcome::Ok)
}
