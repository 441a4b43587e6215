//! The report's MF-KD section: every evaluation's held-out top-1 against MACs, one colour per
//! fidelity, the pick marked; and the surrogate's prediction (before the evaluation) against
//! the score observed, for the evaluations the Gaussian process proposed.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use serde_json::Value;

use super::plots::{line_chart, Series};
use crate::util::read_json;

pub(super) fn mfkd_sections(run: &Path, arch: Option<&Value>, body: &mut String, charts: &mut Vec<(String, String)>) -> Result<()> {
    let h = read_json(&run.join("history.json")).unwrap_or_default();
    let evals = h["evaluations"].as_array().cloned().unwrap_or_default();
    let fidelities = evals.iter().filter_map(|e| e["fidelity"].as_u64()).max().map_or(0, |m| m as usize + 1);
    let secs: f64 = evals.iter().filter_map(|e| e["seconds"].as_f64()).sum();
    let _ = writeln!(
        body,
        "<h2>MF-KD search</h2>\n<p>{} evaluations ({}) trained alone, {secs:.0} s of training in all.</p>\n<div class=\"grid\">",
        evals.len(),
        (0..fidelities)
            .map(|f| format!("{} at fidelity {f}", evals.iter().filter(|e| e["fidelity"] == f).count()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let point = |e: &Value| Some((e["macs"].as_f64()? / 1e6, 100.0 * e["score"].as_f64()?));
    let mut series: Vec<Series> = (0..fidelities)
        .map(|f| Series {
            name: format!("fidelity {f}"),
            points: evals.iter().filter(|e| e["fidelity"] == f).filter_map(point).collect(),
            dots_only: true,
        })
        .collect();
    if let Some(p) = arch.and_then(|a| Some((a["predicted"]["macs"].as_f64()? / 1e6, 100.0 * a["predicted"]["score"].as_f64()?))) {
        series.push(Series { name: "pick (highest fidelity)".into(), points: vec![p], dots_only: true });
    }
    if series.iter().any(|s| !s.points.is_empty()) {
        let svg = line_chart("MF-KD: held-out top-1 of every evaluation", "MMACs", "held-out top-1 %", &series)?;
        body.push_str(&svg);
        charts.push(("mfkd-evaluations".into(), svg));
    }
    let predicted: Vec<(f64, f64)> =
        evals.iter().filter_map(|e| Some((100.0 * e["predicted"][0].as_f64()?, 100.0 * e["score"].as_f64()?))).collect();
    if !predicted.is_empty() {
        let lo = predicted.iter().flat_map(|p| [p.0, p.1]).fold(f64::INFINITY, f64::min);
        let hi = predicted.iter().flat_map(|p| [p.0, p.1]).fold(f64::NEG_INFINITY, f64::max);
        let svg = line_chart(
            "MF-KD surrogate: predicted (before evaluation) vs observed",
            "GP mean, held-out top-1 %",
            "observed %",
            &[
                Series { name: "proposed by UCB".into(), points: predicted, dots_only: true },
                Series { name: "y = x".into(), points: vec![(lo, lo), (hi, hi)], dots_only: false },
            ],
        )?;
        body.push_str(&svg);
        charts.push(("mfkd-surrogate".into(), svg));
    }
    body.push_str("</div>\n");
    Ok(())
}
