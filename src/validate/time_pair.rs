//! The interleaved latency timing of a model and its reference on an ONNX Runtime target, run in
//! a process of its own (`dnas time-pair`, hidden; the gate starts it).
//!
//! Why a process: the two sessions must share one intra-op thread pool. With a pool each (ORT's
//! default), the idle session's workers spin on the same cores while the other runs, and with
//! more threads than cores (ort-cpu-4t on a 2-core CI machine) a CPU hog beside the gate moved the
//! interleaved ratio as much as the sequential one (`tools/bench_gate.sh`). ORT allows one
//! environment per process and the shared pool is a property of the environment, sized once, so
//! each target gets its own process; the parent has already used ORT for top-1.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{anyhow, bail, Context, Result};

use super::latency::{measure_pair, LatencyConfig, LatencyRow, Target, Timing};
use super::model_file::read_model_file;
use super::ort_rt::{init_shared_pool_environment, OrtProvider};

/// What the child prints on stdout: one JSON object.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct PairOutput {
    pub format: String,
    pub model: LatencyRow,
    pub reference: LatencyRow,
}

const FORMAT: &str = "dnas.time-pair";

/// The threads of the shared pool a target's process is created with: the target's own for the
/// CPU provider; 1 for XNNPACK (its threads are the provider's, ORT's own pool stays at 1) and CUDA.
fn pool_threads(target: Target) -> Result<usize> {
    match target {
        Target::Ort { provider: OrtProvider::Cpu, threads } => Ok(threads),
        Target::Ort { .. } => Ok(1),
        Target::Tract => bail!("tract has no ONNX Runtime thread pool: time it in the calling process"),
    }
}

/// The child's work: both models timed interleaved on `target` in this process, whose ORT
/// environment is created here with the one shared pool.
pub fn time_pair_here(model: &Path, reference: &Path, target: Target, cfg: LatencyConfig) -> Result<PairOutput> {
    init_shared_pool_environment(pool_threads(target)?)?;
    let (mb, _, ms) = read_model_file(model)?;
    let (rb, _, rs) = read_model_file(reference)?;
    let (mut model, mut reference) = measure_pair((&mb, &ms), (&rb, &rs), target, cfg, Timing::Interleaved)?;
    for row in [&mut model, &mut reference] {
        row.timing = "interleaved with the reference (ABBA), in a process of their own".into();
        if row.available {
            row.optimization.push_str(", one intra-op pool shared with the reference");
        }
    }
    Ok(PairOutput { format: FORMAT.into(), model, reference })
}

/// The parent: times `model` against `reference` on `target` in a child `dnas time-pair`
/// (`exe`: this binary), returning (model row, reference row).
pub fn measure_pair_in_child(
    exe: &Path,
    model: &Path,
    reference: &Path,
    target: Target,
    cfg: LatencyConfig,
) -> Result<(LatencyRow, LatencyRow)> {
    pool_threads(target)?;
    let out = Command::new(exe)
        .arg("time-pair")
        .arg("--model")
        .arg(model)
        .arg("--reference")
        .arg(reference)
        .args(["--target", &target.label(), "--warmup", &cfg.warmup.to_string(), "--runs", &cfg.runs.to_string()])
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("cannot start '{}' to time {}", exe.display(), target.label()))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        bail!("the timing process for {} failed ({}): {}", target.label(), out.status, err.trim());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let parsed: PairOutput = text
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .ok_or_else(|| anyhow!("the timing process '{}' for {} printed no {FORMAT} result", exe.display(), target.label()))?;
    if parsed.format != FORMAT {
        bail!("the timing process '{}' printed format '{}', expected {FORMAT}", exe.display(), parsed.format);
    }
    Ok((parsed.model, parsed.reference))
}
