//! Latency of an ONNX model at batch 1 on a named runtime setting ("target"): warm-up runs,
//! then timed runs, reported as p50/p90/p99 with the settings that produced them. A target whose
//! provider the loaded runtime lacks gives an "unavailable" row, never CPU numbers under its name.

use std::time::Instant;

use anyhow::{bail, Result};
use serde::Serialize;

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
#[derive(Clone, Debug, Serialize)]
pub struct LatencyRow {
    pub target: String,
    pub runtime: String,
    pub provider: String,
    pub threads: usize,
    pub optimization: String,
    pub warmup: usize,
    pub runs: usize,
    pub batch: usize,
    pub available: bool,
    /// Why a row is unavailable.
    pub note: Option<String>,
    pub p50_ms: Option<f64>,
    pub p90_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub mean_ms: Option<f64>,
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

/// Times `bytes` on `target` with `input_shape` (batch first).
pub fn measure(bytes: &[u8], input_shape: &[usize], target: Target, cfg: LatencyConfig) -> Result<LatencyRow> {
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
        available: true,
        note: None,
        p50_ms: None,
        p90_ms: None,
        p99_ms: None,
        mean_ms: None,
    };
    let mut run: Box<dyn FnMut() -> Result<()>> = match target {
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
                return Ok(row);
            }
            let mut m = OrtModel::with_provider(bytes, threads, provider)?;
            Box::new(move || m.run(&x).map(|_| ()))
        }
    };
    for _ in 0..cfg.warmup {
        run()?;
    }
    let mut ms = Vec::with_capacity(cfg.runs);
    for _ in 0..cfg.runs {
        let t = Instant::now();
        run()?;
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let mean = ms.iter().sum::<f64>() / ms.len() as f64;
    ms.sort_by(f64::total_cmp);
    row.p50_ms = Some(percentile(&ms, 50.0));
    row.p90_ms = Some(percentile(&ms, 90.0));
    row.p99_ms = Some(percentile(&ms, 99.0));
    row.mean_ms = Some(mean);
    Ok(row)
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
