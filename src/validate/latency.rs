//! Latency of an ONNX model at batch 1 on a named runtime setting ("target"): warm-up runs,
//! then timed runs, reported as p50/p90/p99 with the settings that produced them. A target whose
//! provider the loaded runtime lacks gives an "unavailable" row, never CPU numbers under its name.

use std::time::Instant;

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

use super::ort_rt::{OrtModel, OrtProvider};
use super::tract_rt::TractModel;
use super::Array;

/// Where a model is timed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Ort {
        provider: OrtProvider,
        threads: usize,
    },
    /// tract (single-threaded, optimised plan for the fixed input shape).
    Tract,
}

/// The targets `dnas validate` measures unless told otherwise: mobile-class CPU settings (1 and 4
/// threads), XNNPACK and CUDA when the loaded onnxruntime has them, and tract.
pub const DEFAULT_TARGETS: &[&str] = &["ort-cpu-1t", "ort-cpu-4t", "ort-xnnpack-1t", "ort-cuda", "tract"];

impl Target {
    /// `ort-cpu-<N>t`, `ort-xnnpack-<N>t`, `ort-cuda` or `tract`.
    pub fn parse(label: &str) -> Result<Target> {
        let threads = |rest: &str| -> Result<usize> {
            match rest.strip_suffix('t').and_then(|n| n.parse::<usize>().ok()) {
                Some(n) if n > 0 => Ok(n),
                _ => bail!("target '{label}': expected a thread count such as '-1t' or '-4t'"),
            }
        };
        Ok(if label == "tract" {
            Target::Tract
        } else if label == "ort-cuda" {
            Target::Ort { provider: OrtProvider::Cuda, threads: 1 }
        } else if let Some(rest) = label.strip_prefix("ort-cpu-") {
            Target::Ort { provider: OrtProvider::Cpu, threads: threads(rest)? }
        } else if let Some(rest) = label.strip_prefix("ort-xnnpack-") {
            Target::Ort { provider: OrtProvider::Xnnpack, threads: threads(rest)? }
        } else {
            bail!("unknown latency target '{label}' (ort-cpu-<N>t, ort-xnnpack-<N>t, ort-cuda, tract)")
        })
    }

    pub fn label(&self) -> String {
        match self {
            Target::Tract => "tract".into(),
            Target::Ort { provider: OrtProvider::Cuda, .. } => "ort-cuda".into(),
            Target::Ort { provider: OrtProvider::Cpu, threads } => format!("ort-cpu-{threads}t"),
            Target::Ort { provider: OrtProvider::Xnnpack, threads } => format!("ort-xnnpack-{threads}t"),
        }
    }
}

#[derive(Clone, Copy, Debug, Serialize)]
pub struct LatencyConfig {
    pub warmup: usize,
    pub runs: usize,
}

impl Default for LatencyConfig {
    fn default() -> Self {
        LatencyConfig { warmup: 10, runs: 50 }
    }
}

/// One latency measurement with the settings it ran under.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LatencyRow {
    pub target: String,
    pub runtime: String,
    pub provider: String,
    pub threads: usize,
    pub optimization: String,
    pub warmup: usize,
    pub runs: usize,
    pub batch: usize,
    /// How the runs were timed: "alone", or interleaved / sequential with the budget's reference.
    pub timing: String,
    pub available: bool,
    /// Why a row is unavailable.
    pub note: Option<String>,
    pub p50_ms: Option<f64>,
    pub p90_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub mean_ms: Option<f64>,
    /// Interleaved timing only: percentiles of the per-round ratio model/reference (each round
    /// times one run of each within a millisecond or so, so a load on the machine lands on both
    /// and cancels). The budget's `max_ratio` lines use these when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paired_ratio: Option<PairedRatio>,
}

/// Percentiles of per-round model/reference time ratios.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct PairedRatio {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
}

impl PairedRatio {
    pub fn percentile(&self, p: u32) -> Option<f64> {
        match p {
            50 => Some(self.p50),
            90 => Some(self.p90),
            99 => Some(self.p99),
            _ => None,
        }
    }
}

impl LatencyRow {
    pub fn percentile(&self, p: u32) -> Option<f64> {
        match p {
            50 => self.p50_ms,
            90 => self.p90_ms,
            99 => self.p99_ms,
            _ => None,
        }
    }
}

/// Nearest-rank percentile of sorted samples.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

/// A deterministic input of `shape` (values in [-1, 1)).
pub fn probe_input(shape: &[usize]) -> Array {
    let mut rng = crate::util::Rng::new(0x1a7e);
    let n = shape.iter().product();
    Array { shape: shape.to_vec(), data: (0..n).map(|_| (rng.uniform() * 2.0 - 1.0) as f32).collect() }
}

/// How a model and its reference share the clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Timing {
    /// One timed run of each in turn (ABBA order), so a load that comes and goes on the machine
    /// lands on both and cancels in their ratio. The default.
    Interleaved,
    /// All the model's runs, then all the reference's (how dnas timed before; kept to measure
    /// the difference, see `tools/bench_gate.sh`).
    Sequential,
}

/// A model made ready on one target: the row to fill and the closure running one inference
/// (`None` when the target is unavailable: the row says why).
struct Prepared {
    row: LatencyRow,
    run: Option<Box<dyn FnMut() -> Result<()>>>,
}

fn prepare(bytes: &[u8], input_shape: &[usize], target: Target, cfg: LatencyConfig, timing: &str) -> Result<Prepared> {
    if cfg.runs == 0 {
        bail!("the number of timed runs must be at least 1");
    }
    let x = probe_input(input_shape);
    let mut row = LatencyRow {
        target: target.label(),
        runtime: String::new(),
        provider: String::new(),
        threads: 1,
        optimization: String::new(),
        warmup: cfg.warmup,
        runs: cfg.runs,
        batch: input_shape.first().copied().unwrap_or(1),
        timing: timing.to_string(),
        available: true,
        note: None,
        p50_ms: None,
        p90_ms: None,
        p99_ms: None,
        mean_ms: None,
        paired_ratio: None,
    };
    let run: Box<dyn FnMut() -> Result<()>> = match target {
        Target::Tract => {
            row.runtime = "tract".into();
            row.provider = "tract (CPU)".into();
            row.optimization = "into_optimized".into();
            let m = TractModel::new(bytes, input_shape)?;
            Box::new(move || m.run(&x).map(|_| ()))
        }
        Target::Ort { provider, threads } => {
            row.runtime = "onnxruntime".into();
            row.provider = provider.ort_name().into();
            row.threads = threads;
            row.optimization = "ORT_ENABLE_ALL (default), intra-op spinning on (default)".into();
            if !provider.available()? {
                row.available = false;
                row.note = Some(format!("unavailable: the loaded onnxruntime has no {}", provider.ort_name()));
                return Ok(Prepared { row, run: None });
            }
            let mut m = OrtModel::with_provider(bytes, threads, provider)?;
            Box::new(move || m.run(&x).map(|_| ()))
        }
    };
    Ok(Prepared { row, run: Some(run) })
}

fn time_once(run: &mut dyn FnMut() -> Result<()>, ms: &mut Vec<f64>) -> Result<()> {
    let t = Instant::now();
    run()?;
    ms.push(t.elapsed().as_secs_f64() * 1000.0);
    Ok(())
}

fn summarize(row: &mut LatencyRow, mut ms: Vec<f64>) {
    row.mean_ms = Some(ms.iter().sum::<f64>() / ms.len() as f64);
    ms.sort_by(f64::total_cmp);
    row.p50_ms = Some(percentile(&ms, 50.0));
    row.p90_ms = Some(percentile(&ms, 90.0));
    row.p99_ms = Some(percentile(&ms, 99.0));
}

/// Times `bytes` on `target` with `input_shape` (batch first): warm-up runs, then timed runs.
pub fn measure(bytes: &[u8], input_shape: &[usize], target: Target, cfg: LatencyConfig) -> Result<LatencyRow> {
    let Prepared { mut row, run } = prepare(bytes, input_shape, target, cfg, "alone")?;
    let Some(mut run) = run else { return Ok(row) };
    for _ in 0..cfg.warmup {
        run()?;
    }
    let mut ms = Vec::with_capacity(cfg.runs);
    for _ in 0..cfg.runs {
        time_once(&mut run, &mut ms)?;
    }
    summarize(&mut row, ms);
    Ok(row)
}

/// A model to time: its bytes and its input shape (batch first).
pub type Timee<'a> = (&'a [u8], &'a [usize]);

/// Times a model and its reference on one target, returning (model row, reference row).
/// `Interleaved`: both are loaded and warmed, then each round times one run of each (after an
/// untimed one of the same model), the order alternating (A B, B A, …) so a load that comes and
/// goes lands on both. `Sequential`: [`measure`] of one, then of the other.
pub fn measure_pair(
    model: Timee,
    reference: Timee,
    target: Target,
    cfg: LatencyConfig,
    timing: Timing,
) -> Result<(LatencyRow, LatencyRow)> {
    if timing == Timing::Sequential {
        let mut a = measure(model.0, model.1, target, cfg)?;
        let mut b = measure(reference.0, reference.1, target, cfg)?;
        a.timing = "sequential (model, then reference)".into();
        b.timing = a.timing.clone();
        return Ok((a, b));
    }
    let label = "interleaved with the reference (ABBA)";
    let a = prepare(model.0, model.1, target, cfg, label)?;
    let b = prepare(reference.0, reference.1, target, cfg, label)?;
    let (mut ra, mut fa, mut rb, mut fb) = match (a, b) {
        (Prepared { row: ra, run: Some(fa) }, Prepared { row: rb, run: Some(fb) }) => (ra, fa, rb, fb),
        // The provider is missing: both rows say so.
        (a, b) => return Ok((a.row, b.row)),
    };
    for _ in 0..cfg.warmup {
        fa()?;
        fb()?;
    }
    let (mut ma, mut mb) = (Vec::with_capacity(cfg.runs), Vec::with_capacity(cfg.runs));
    // Each timed run follows an untimed run of the same model, so it sees the warm caches a
    // deployed model runs with (as a block of runs does), not the other model's leftovers.
    let warm_then_time = |run: &mut dyn FnMut() -> Result<()>, ms: &mut Vec<f64>| -> Result<()> {
        run()?;
        time_once(run, ms)
    };
    for i in 0..cfg.runs {
        if i % 2 == 0 {
            warm_then_time(&mut fa, &mut ma)?;
            warm_then_time(&mut fb, &mut mb)?;
        } else {
            warm_then_time(&mut fb, &mut mb)?;
            warm_then_time(&mut fa, &mut ma)?;
        }
    }
    let mut ratios: Vec<f64> = ma.iter().zip(&mb).map(|(a, b)| a / b).collect();
    ratios.sort_by(f64::total_cmp);
    ra.paired_ratio = Some(PairedRatio { p50: percentile(&ratios, 50.0), p90: percentile(&ratios, 90.0), p99: percentile(&ratios, 99.0) });
    summarize(&mut ra, ma);
    summarize(&mut rb, mb);
    Ok((ra, rb))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 90.0), 90.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&[3.0], 99.0), 3.0);
    }

    #[test]
    fn target_labels_round_trip() {
        for l in ["ort-cpu-1t", "ort-cpu-4t", "ort-xnnpack-2t", "ort-cuda", "tract"] {
            assert_eq!(Target::parse(l).unwrap().label(), l);
        }
        assert!(Target::parse("ort-cpu-0t").is_err());
        assert!(Target::parse("coreml").unwrap_err().to_string().contains("unknown latency target"));
    }
}
