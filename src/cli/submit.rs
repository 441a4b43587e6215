//! `dnas submit slurm`: the demo's DNA chain as Slurm jobs (`pipeline::slurm`). One array job
//! with a task per block (`dnas train --block $i`, then `dnas evaluate --block $i`, the demo's
//! own settings), then one job `--dependency=afterok:<array>` running `dnas demo` with the same
//! arguments in the same directory: it finds every block trained and ranked (so it skips both)
//! and runs select → retrain → export → validate, exactly as `dnas demo` alone would.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};

use super::demo::{evaluate_args, paths, train_args, DemoArgs};
use super::Outcome;
use crate::pipeline::slurm::{array_spec, submit as submit_jobs, write_scripts, JobResources};

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
    let res = JobResources {
        cpus: a.cpus_per_job,
        mem: a.mem.clone(),
        gpus: a.gpus_per_job,
        partition: a.partition.clone(),
        account: a.account.clone(),
        time: a.time.clone(),
    };
    let commands = (
        &train_args(&a.demo, &d.settings, &d.search)[..],
        &evaluate_args(&a.demo, &d.settings, &d.search)[..],
        &demo_command(&a.demo, &d.dir)[..],
    );
    let s = write_scripts(&d.dir, &dnas, commands, (blocks, todo), &res)?;
    println!("job scripts: {} (array tasks for blocks {}), {}", s.blocks_script.display(), array_spec(&s.todo), s.gather_script.display());
    println!("  each task:  {}\n              {}\n  then:       {}", s.train_cmd, s.eval_cmd, s.gather_cmd);
    if a.dry_run {
        println!("--dry-run: nothing submitted. To submit by hand:");
        println!("  a=$({} --parsable {})", a.sbatch, s.blocks_script.display());
        println!("  {} --dependency=afterok:$a {}", a.sbatch, s.gather_script.display());
        return Ok(Outcome::Ok);
    }
    if s.todo.is_empty() {
        println!("every block is trained and ranked: only the gather job is submitted");
    }
    let r = submit_jobs(&a.sbatch, &s)?;
    println!("submitted: array job {} (blocks {}), gather job {}", r.array_job, array_spec(&s.todo), r.gather_job);
    println!("follow: squeue -j {},{}; logs in {}", r.array_job, r.gather_job, s.logs.display());
    Ok(Outcome::Ok)
}
