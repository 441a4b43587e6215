//! `dnas eval`: top-1 of any ONNX classifier on a dataset split through ONNX Runtime and tract
//! (no libtorch: part of the validation build), and the data flags every command shares.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Args;

use super::Outcome;
use crate::data::loader::LoaderConfig;
use crate::data::{open, DataSpec, Loader};
use crate::validate::accuracy::{ort_top1, tract_top1};

#[derive(Args, Clone)]
pub struct DataArgs {
    /// fmnist (embedded default), idx:DIR, cifar10:DIR, cifar100:DIR or folder:DIR.
    #[arg(long, default_value = "fmnist")]
    pub data: String,
    /// Samples carved from train (seeded) as the held-out split.
    #[arg(long, default_value_t = 5000)]
    pub held_out: usize,
    /// ImageFolder only: crop size and channels.
    #[arg(long)]
    pub size: Option<u32>,
    #[arg(long)]
    pub channels: Option<usize>,
    /// Decoding threads.
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
}

impl DataArgs {
    pub fn spec(&self, seed: u64) -> DataSpec {
        DataSpec { source: self.data.clone(), held_out: self.held_out, seed, size: self.size, channels: self.channels }
    }
}

#[derive(Args)]
pub struct EvalArgs {
    model: PathBuf,
    #[command(flatten)]
    data: DataArgs,
    /// test, held-out or train.
    #[arg(long, default_value = "test")]
    split: String,
    #[arg(long, default_value_t = 256)]
    batch: usize,
    /// ORT intra-op threads (0 = ORT's default).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    #[arg(long)]
    no_tract: bool,
    /// Exit 1 when ORT's top-1 is below this (0..1).
    #[arg(long)]
    min_top1: Option<f64>,
    #[arg(long)]
    json: bool,
}

pub fn eval(a: EvalArgs) -> Result<Outcome> {
    let bytes = std::fs::read(&a.model).with_context(|| format!("cannot read '{}'", a.model.display()))?;
    // Import first: a clear error for a bad model before any runtime sees it.
    crate::onnx::read_model(&bytes).with_context(|| format!("'{}'", a.model.display()))?;
    let splits = open(&a.data.spec(0))?;
    let set = crate::validate::gate::split(&splits, &a.split)?;
    let loader = Loader::new(Arc::new(set.clone()), LoaderConfig { workers: a.data.workers, ..LoaderConfig::eval(a.batch) });
    let mut results = vec![ort_top1(&bytes, &loader, a.threads).with_context(|| format!("'{}' through ONNX Runtime", a.model.display()))?];
    if !a.no_tract {
        results.push(tract_top1(&bytes, &loader).with_context(|| format!("'{}' through tract", a.model.display()))?);
    }
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({"model": a.model, "data": a.data.data, "split": a.split, "results": results})
            )?
        );
    } else {
        println!("{} on {} ({} split)", a.model.display(), a.data.data, a.split);
        println!("{:<12} {:>8} {:>8} {:>9} {:>8}", "runtime", "correct", "total", "top-1", "seconds");
        for r in &results {
            println!("{:<12} {:>8} {:>8} {:>8.2}% {:>8.1}", r.runtime, r.correct, r.total, 100.0 * r.top1, r.seconds);
        }
    }
    if let Some(min) = a.min_top1 {
        if results[0].top1 < min {
            eprintln!("top-1 {:.4} is below --min-top1 {min}", results[0].top1);
            return Ok(Outcome::CheckFailed);
        }
    }
    Ok(Outcome::Ok)
}
