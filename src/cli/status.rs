//! `dnas status --run DIR`: where a run directory stands (`pipeline::status`), printed.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use super::Outcome;
use crate::pipeline::status::{run_status, RunStatus};

#[derive(Args)]
pub struct StatusArgs {
    /// A demo directory (its `search/`) or a search run directory.
    #[arg(long)]
    run: PathBuf,
    #[arg(long)]
    json: bool,
}

pub fn status(a: StatusArgs) -> Result<Outcome> {
    let s = run_status(&a.run)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&s)?);
    } else {
        print_status(&s);
    }
    Ok(Outcome::Ok)
}

fn print_status(s: &RunStatus) {
    println!("run {}", s.run.display());
    println!("{:<6} {:<12} {:<30} {:>7} {:>8} {:>12}  slurm / holder", "block", "name", "state", "steps", "seconds", "held-out MSE");
    for b in &s.blocks {
        let f = |v: Option<f64>, p: usize| v.map_or("-".into(), |v| format!("{v:.p$}"));
        println!(
            "{:<6} {:<12} {:<30} {:>7} {:>8} {:>12}  {}",
            b.block,
            b.name,
            b.state,
            b.steps.or(b.checkpoint_step.map(|s| s as u64)).map_or("-".into(), |s| s.to_string()),
            f(b.seconds, 0),
            f(b.held_out_mse, 5),
            b.slurm.clone().or(b.holder.clone()).unwrap_or_default()
        );
        if let Some(r) = &b.reason {
            println!("       reason: {r}");
        }
    }
    let g = &s.gather;
    println!(
        "gather: arch {} · student {} · ONNX {} · demo record {}{}",
        yes(g.arch),
        yes(g.student),
        yes(g.onnx),
        yes(g.demo_record),
        g.slurm.as_ref().map(|s| format!(" · slurm {s}")).unwrap_or_default()
    );
    if !s.all_done() {
        println!("(blocks not done: rerun `dnas submit slurm` with the same arguments — finished blocks are skipped)");
    }
}

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}
