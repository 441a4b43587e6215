//! Deployment budgets (`schemas/budget.schema.json`): limits on params, MACs, top-1 and latency
//! per target, absolute or as a ratio to a reference model timed in the same run (ratios survive
//! noisy CI machines). [`Budget::check`] turns measurements into violations, each naming the
//! budget line (`file:line field`) it breaks.

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::{Deserialize, Serialize};

use super::latency::{LatencyRow, Target};
use crate::util::schema::{load_with, parse_checked};

const SCHEMA: &str = include_str!("../../schemas/budget.schema.json");

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatencyLimit {
    pub target: String,
    #[serde(default = "default_percentile")]
    pub percentile: u32,
    #[serde(default)]
    pub max_ms: Option<f64>,
    #[serde(default)]
    pub max_ratio: Option<f64>,
    #[serde(default)]
    pub required: bool,
}

fn default_percentile() -> u32 {
    50
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    pub format: String,
    pub version: u32,
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub max_params: Option<u64>,
    #[serde(default)]
    pub max_macs: Option<u64>,
    #[serde(default)]
    pub min_top1: Option<f64>,
    #[serde(default)]
    pub reference: Option<String>,
    #[serde(default)]
    pub latency: Vec<LatencyLimit>,
    /// The file it was read from and its text (for line numbers); not part of the JSON.
    #[serde(skip)]
    pub path: PathBuf,
    #[serde(skip)]
    text: String,
}

/// What the model measured, as the budget needs it.
pub struct Measured<'a> {
    pub params: u64,
    pub macs: u64,
    /// (runtime, top-1) for every runtime whose accuracy was measured; `None` when accuracy was
    /// not measured at all (`--no-accuracy`): a `min_top1` line is then reported as skipped.
    pub top1: Option<&'a [(String, f64)]>,
    pub latency: &'a [LatencyRow],
    /// The reference model's rows (same targets), when the budget names one.
    pub reference: &'a [LatencyRow],
}

#[derive(Clone, Debug, Serialize)]
pub struct Violation {
    /// JSON field path in the budget file, e.g. `latency[1]`.
    pub field: String,
    /// 1-based line of that field in the budget file.
    pub line: usize,
    pub message: String,
}

/// A budget line that could not be checked here (its target is unavailable).
#[derive(Clone, Debug, Serialize)]
pub struct Skipped {
    pub field: String,
    pub line: usize,
    pub reason: String,
}

impl Budget {
    pub fn load(path: &Path) -> Result<Budget> {
        let mut b = load_with(path, "budget", Budget::parse)?;
        b.path = path.to_path_buf();
        Ok(b)
    }

    pub fn parse(text: &str) -> Result<Budget> {
        let mut b: Budget = parse_checked(text, SCHEMA, "a budget")?;
        for (i, l) in b.latency.iter().enumerate() {
            Target::parse(&l.target).map_err(|e| anyhow::anyhow!("latency[{i}].target: {e}"))?;
        }
        if b.latency.iter().any(|l| l.max_ratio.is_some()) && b.reference.is_none() {
            anyhow::bail!("a latency line has max_ratio but the budget names no 'reference' model");
        }
        b.text = text.to_string();
        Ok(b)
    }

    /// The reference model's path (relative paths are relative to the budget file).
    pub fn reference_path(&self) -> Option<PathBuf> {
        self.reference.as_ref().map(|r| self.path.parent().unwrap_or(Path::new(".")).join(r))
    }

    /// Every target the budget's latency lines name, in order, without repeats.
    pub fn targets(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for l in &self.latency {
            if !out.contains(&l.target) {
                out.push(l.target.clone());
            }
        }
        out
    }

    /// 1-based line of the `nth` occurrence of `"key"` in the file (1 if not found).
    fn line_of(&self, key: &str, nth: usize) -> usize {
        let pat = format!("\"{key}\"");
        self.text.lines().enumerate().filter(|(_, l)| l.contains(&pat)).nth(nth).map_or(1, |(i, _)| i + 1)
    }

    pub fn check(&self, m: &Measured) -> (Vec<Violation>, Vec<Skipped>) {
        let (mut v, mut skipped) = (Vec::new(), Vec::new());
        let file = self.path.display().to_string();
        let mut fail = |field: &str, line: usize, message: String| {
            v.push(Violation { field: field.into(), line, message: format!("{file}:{line} {field}: {message}") })
        };
        if let Some(max) = self.max_params {
            if m.params > max {
                fail("max_params", self.line_of("max_params", 0), format!("{} params > {max}", m.params));
            }
        }
        if let Some(max) = self.max_macs {
            if m.macs > max {
                fail("max_macs", self.line_of("max_macs", 0), format!("{} MACs > {max}", m.macs));
            }
        }
        if let (Some(_), None) = (self.min_top1, m.top1) {
            skipped.push(Skipped {
                field: "min_top1".into(),
                line: self.line_of("min_top1", 0),
                reason: "accuracy was not measured (--no-accuracy)".into(),
            });
        }
        if let (Some(min), Some(measured)) = (self.min_top1, m.top1) {
            for (runtime, top1) in measured {
                if *top1 < min {
                    fail(
                        "min_top1",
                        self.line_of("min_top1", 0),
                        format!("top-1 {:.2}% through {runtime} < {:.2}%", 100.0 * top1, 100.0 * min),
                    );
                }
            }
        }
        for (i, l) in self.latency.iter().enumerate() {
            let field = format!("latency[{i}]");
            let line = self.line_of("target", i);
            let p = l.percentile;
            let row = m.latency.iter().find(|r| r.target == l.target);
            let ms = match row {
                Some(r) if r.available => r.percentile(p),
                _ => None,
            };
            let Some(ms) = ms else {
                let reason = row.and_then(|r| r.note.clone()).unwrap_or_else(|| format!("{} was not measured", l.target));
                if l.required {
                    fail(&field, line, format!("{} is required but {reason}", l.target));
                } else {
                    skipped.push(Skipped { field: field.clone(), line, reason });
                }
                continue;
            };
            if let Some(max) = l.max_ms {
                if ms > max {
                    fail(&field, line, format!("{} p{p} {ms:.3} ms > {max} ms", l.target));
                }
            }
            if let Some(max) = l.max_ratio {
                match m.reference.iter().find(|r| r.target == l.target).and_then(|r| r.percentile(p)) {
                    Some(ref_ms) => {
                        // Interleaved timing: the per-round ratio; sequential: ratio of percentiles.
                        let paired = row.and_then(|r| r.paired_ratio).and_then(|q| q.percentile(p));
                        let ratio = paired.unwrap_or(ms / ref_ms);
                        if ratio > max {
                            let how = if paired.is_some() { "run against run" } else { "of the percentiles" };
                            fail(
                                &field,
                                line,
                                format!(
                                    "{} p{p} {ms:.3} ms vs the reference's {ref_ms:.3} ms: ratio {ratio:.2}× ({how}) > {max}×",
                                    l.target
                                ),
                            );
                        }
                    }
                    None => fail(&field, line, format!("the reference model was not timed on {}", l.target)),
                }
            }
        }
        (v, skipped)
    }
}

/// MACs and params limits: the flags, else the budget file's `max_macs` / `max_params`.
pub fn cost_limits(budget: Option<&Path>, max_macs: Option<u64>, max_params: Option<u64>) -> Result<(Option<u64>, Option<u64>)> {
    match budget {
        Some(b) => {
            let budget = Budget::load(b)?;
            Ok((max_macs.or(budget.max_macs), max_params.or(budget.max_params)))
        }
        None => Ok((max_macs, max_params)),
    }
}
