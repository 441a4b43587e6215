//! `dnas time-pair` (hidden; the gate starts it): the child process of an interleaved timing
//! (`validate::time_pair`), printing one JSON object.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use super::Outcome;
use crate::validate::latency::{LatencyConfig, Target};
use crate::validate::time_pair::time_pair_here;

#[derive(Args)]
pub struct TimePairArgs {
    #[arg(long)]
    model: PathBuf,
    #[arg(long)]
    reference: PathBuf,
    /// An ONNX Runtime target: ort-cpu-<N>t, ort-xnnpack-<N>t or ort-cuda.
    #[arg(long)]
    target: String,
    #[arg(long)]
    warmup: usize,
    #[arg(long)]
    runs: usize,
}

/// The child: `dnas time-pair --model M --reference R --target T --warmup W --runs N`.
pub fn time_pair(a: TimePairArgs) -> Result<Outcome> {
    let out = time_pair_here(&a.model, &a.reference, Target::parse(&a.target)?, LatencyConfig { warmup: a.warmup, runs: a.runs })?;
    println!("{}", serde_json::to_string(&out)?);
    Ok(Outcome::Ok)
}
