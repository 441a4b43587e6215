//! Shared by the step benchmarks (bench_supernet, bench_oneshot): PyTorch reference processes
//! driven over stdin, so that every contestant is timed in the same rounds in a rotating order,
//! and the table of ms/step, paired ratios and memory.
//!
//! Protocol of a reference script: after its warm-up it prints `{"ready": true, "torch": …}`;
//! each line `run FIRST END` runs steps FIRST..END and answers `{"ms_per_step": …}`; `quit`
//! answers with `peak_rss_mib`, `minor_faults` and, on CUDA, `cuda_max_allocated_mib` and
//! `gpu_used_mib`, then exits.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};

pub fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

pub fn flag(name: &str) -> bool {
    std::env::args().any(|a| a == name)
}

/// GPU memory (MiB) nvidia-smi reports for process `pid` (context included), if it can tell.
pub fn gpu_mib(pid: u32) -> Option<f64> {
    let out = Command::new("nvidia-smi").args(["--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"]).output().ok()?;
    String::from_utf8_lossy(&out.stdout).lines().find_map(|l| {
        let mut f = l.split(',').map(str::trim);
        (f.next()? == pid.to_string()).then(|| f.next()?.parse().ok())?
    })
}

/// The reference processes: memory format, and whether they run with dnas's allocator settings.
pub const REFERENCES: [(&str, bool); 3] = [("contiguous", false), ("channels_last", false), ("channels_last", true)];

/// One PyTorch reference process, waiting for `run` lines.
pub struct Reference {
    pub label: String,
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    pub ms: Vec<f64>,
    /// Its `ready` line (torch version, parameter count).
    pub ready: serde_json::Value,
}

impl Reference {
    /// Starts `script SPEC FMT cpu|cuda fp32|amp` and waits until it has taken its warm-up steps.
    /// `tuned`: run it with the allocator settings dnas uses (see `dnas::util::malloc`), through
    /// glibc's environment tunables.
    pub fn spawn(script: &Path, spec: &Path, fmt: &str, tuned: bool, cuda: bool, amp: bool) -> Result<Reference> {
        let mut cmd = Command::new("python3");
        if tuned {
            cmd.env("GLIBC_TUNABLES", "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=2147483647");
        }
        let mut child = cmd
            .arg(script)
            .arg(spec)
            .arg(fmt)
            .arg(if cuda { "cuda" } else { "cpu" })
            .arg(if amp { "amp" } else { "fp32" })
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("running python3 {} (source tools/env.sh first)", script.display()))?;
        let stdin = child.stdin.take().context("reference stdin")?;
        let stdout = BufReader::new(child.stdout.take().context("reference stdout")?);
        let what = if tuned { format!("{fmt}, dnas malloc") } else { fmt.to_string() };
        let mut r =
            Reference { label: format!("PyTorch eager ({what})"), child, stdin, stdout, ms: Vec::new(), ready: serde_json::Value::Null };
        let ready = r.answer()?;
        if ready["ready"] != true {
            bail!("reference ({fmt}) did not start: {ready}");
        }
        if let Some(v) = ready["torch"].as_str() {
            r.label = format!("PyTorch {v} eager ({what})");
        }
        r.ready = ready;
        Ok(r)
    }

    fn answer(&mut self) -> Result<serde_json::Value> {
        let mut line = String::new();
        if self.stdout.read_line(&mut line)? == 0 {
            bail!("the reference exited early (its error is above)");
        }
        serde_json::from_str(&line).with_context(|| format!("reference said '{}'", line.trim()))
    }

    /// Runs steps `first..end` there; returns ms per step.
    pub fn run(&mut self, first: usize, end: usize) -> Result<f64> {
        writeln!(self.stdin, "run {first} {end}")?;
        self.stdin.flush()?;
        let ms = self.answer()?["ms_per_step"].as_f64().context("reference gave no ms_per_step")?;
        self.ms.push(ms);
        Ok(ms)
    }

    /// Ends the process; returns its closing report (peak RSS, GPU memory).
    pub fn finish(mut self) -> Result<serde_json::Value> {
        writeln!(self.stdin, "quit")?;
        self.stdin.flush()?;
        let v = self.answer()?;
        self.child.wait()?;
        Ok(v)
    }
}

/// Writes `spec` to a temporary file and starts one `script` process per [`REFERENCES`] entry;
/// returns them and the directory to remove afterwards.
pub fn spawn_references(script: &Path, spec: &serde_json::Value, tag: &str, cuda: bool, amp: bool) -> Result<(Vec<Reference>, PathBuf)> {
    let dir = temp_dir(tag)?;
    let spec_path = dir.join("spec.json");
    std::fs::write(&spec_path, serde_json::to_vec(spec)?)?;
    let refs = REFERENCES.iter().map(|&(fmt, tuned)| Reference::spawn(script, &spec_path, fmt, tuned, cuda, amp)).collect::<Result<_>>()?;
    Ok((refs, dir))
}

/// Zeroes the gradients that exist (PyTorch's `zero_grad`, without allocating missing ones).
pub fn zero_grads(params: &[(String, tch::Tensor, bool)]) {
    for (_, p, _) in params {
        let mut g = p.grad();
        if g.defined() {
            let _ = g.f_zero_();
        }
    }
}

/// Fails unless every reference built a network of exactly `params` parameters (the same
/// network, not a look-alike).
pub fn check_params(refs: &[Reference], params: i64) -> Result<()> {
    for r in refs {
        if r.ready["params"].as_i64() != Some(params) {
            bail!("{} built {} parameters, dnas {params}: not the same network", r.label, r.ready["params"]);
        }
    }
    Ok(())
}

pub fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return f64::NAN;
    }
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// `--cuda` / `--amp`: the device (checked to exist) and a synchronisation that waits for it.
pub fn device_from_flags() -> Result<(tch::Device, bool, impl Fn())> {
    let (cuda, amp) = (flag("--cuda"), flag("--amp"));
    if amp && !cuda {
        bail!("--amp needs --cuda");
    }
    if cuda && !tch::Cuda::is_available() {
        bail!("--cuda: libtorch sees no CUDA device");
    }
    let device = if cuda { tch::Device::Cuda(0) } else { tch::Device::Cpu };
    Ok((device, amp, move || {
        if cuda {
            tch::Cuda::synchronize(0);
        }
    }))
}

/// The checkout (DNAS_ROOT where a carried binary runs on another machine).
pub fn root() -> PathBuf {
    std::env::var_os("DNAS_ROOT").map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
}

pub fn temp_dir(tag: &str) -> Result<PathBuf> {
    let d = std::env::temp_dir().join(format!("dnas-bench-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d)?;
    Ok(d)
}

/// Times `rounds` chunks of `chunk` steps after `warmup`: dnas's `run_step(s)` and every
/// reference on the same steps, the order rotating each round. Returns dnas's ms/step per round.
pub fn interleave(
    refs: &mut [Reference],
    warmup: usize,
    rounds: usize,
    chunk: usize,
    run_step: &mut dyn FnMut(usize) -> Result<()>,
    sync: &dyn Fn(),
) -> Result<Vec<f64>> {
    for s in 0..warmup {
        run_step(s)?;
    }
    sync();
    let mut dnas_ms = Vec::new();
    for r in 0..rounds {
        let (first, end) = (warmup + r * chunk, warmup + (r + 1) * chunk);
        for k in 0..=refs.len() {
            match (r + k) % (refs.len() + 1) {
                0 => {
                    let t = Instant::now();
                    for s in first..end {
                        run_step(s)?;
                    }
                    sync();
                    dnas_ms.push(t.elapsed().as_secs_f64() * 1000.0 / chunk as f64);
                }
                i => {
                    refs[i - 1].run(first, end)?;
                }
            }
        }
    }
    Ok(dnas_ms)
}

/// Closes the references and prints the table: ms/step (median, best round), the paired ratio
/// dnas/reference per round (median, range), peak RSS and GPU memory; then the ratio to the
/// fastest PyTorch as installed (the goal) and to the fastest of all.
pub fn report(refs: Vec<Reference>, dnas_ms: &[f64], tuned: bool, cuda: bool) -> Result<()> {
    let dnas_rss = dnas::util::peak_rss_mib();
    let dnas_faults = dnas::util::malloc::minor_faults();
    let dnas_gpu = if cuda { gpu_mib(std::process::id()) } else { None };
    let mut rows = Vec::new();
    for r in refs {
        let (label, ms) = (r.label.clone(), r.ms.clone());
        rows.push((label, ms, r.finish()?));
    }
    let ref_faults: Vec<String> =
        rows.iter().map(|(l, _, v)| format!("{l}: {}", v["minor_faults"].as_u64().map_or("?".into(), |f| f.to_string()))).collect();
    println!("minor page faults, whole process: dnas {dnas_faults}; {}", ref_faults.join("; "));
    let mib = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.0}"));
    println!(
        "{:<56} {:>17} {:>24} {:>13} {:>13} {:>15}",
        "", "ms/step", "dnas/this median [range]", "peak RSS MiB", "GPU used MiB", "CUDA max alloc"
    );
    let ms_cell = |v: &[f64]| format!("{:.2} ({:.2})", median(v), v.iter().copied().fold(f64::INFINITY, f64::min));
    let me = if tuned { "dnas (tch, channels_last, dnas malloc)" } else { "dnas (tch, channels_last, system malloc)" };
    println!("{:<56} {:>17} {:>24} {:>13.0} {:>13} {:>15}", me, ms_cell(dnas_ms), "1.00", dnas_rss, mib(dnas_gpu), "-");
    // (label, median ms, paired ratio)
    type Best = Option<(String, f64, f64)>;
    let (mut best, mut best_any): (Best, Best) = (None, None);
    for (k, (label, ms, v)) in rows.iter().enumerate() {
        let paired: Vec<f64> = dnas_ms.iter().zip(ms).map(|(d, r)| d / r).collect();
        let (lo, hi) = paired.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), &p| (lo.min(p), hi.max(p)));
        let ratio = median(&paired);
        println!(
            "{:<56} {:>17} {:>24} {:>13.0} {:>13} {:>15}",
            label,
            ms_cell(ms),
            format!("{ratio:.2} [{lo:.2}–{hi:.2}]"),
            v["peak_rss_mib"].as_f64().unwrap_or(f64::NAN),
            mib(v["gpu_used_mib"].as_f64()),
            mib(v["cuda_max_allocated_mib"].as_f64())
        );
        let entry = Some((label.clone(), median(ms), ratio));
        if !REFERENCES[k].1 && best.as_ref().is_none_or(|b| median(ms) < b.1) {
            best = entry.clone();
        }
        if best_any.as_ref().is_none_or(|b| median(ms) < b.1) {
            best_any = entry;
        }
    }
    if let Some((label, _, ratio)) = best {
        println!("ratio dnas / fastest PyTorch as installed ({label}), median of paired rounds: {ratio:.2} (goal ≤ 1.00)");
    }
    if let Some((label, _, ratio)) = best_any {
        println!("ratio dnas / fastest reference of all ({label}): {ratio:.2}");
    }
    Ok(())
}
