//! `dnas report --study DIR`: the search-quality page of a study directory — per predictor, the
//! predicted score against the retrained top-1 of every truth architecture (τ in the title); the
//! noise ceiling (seed against seed, and as a line on the τ chart); each pick against the random
//! architectures of its budget; and the truth set as a table.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};

use super::plots::{line_chart, Series};
use super::{esc, page, table, Report};
use crate::study::pick::PickReport;
use crate::study::rank::RankReport;
use crate::study::truth::{StudyDir, Truth};
use crate::util::read_json;

fn reports<T: serde::de::DeserializeOwned>(dir: &Path) -> Result<Vec<T>> {
    let mut files: Vec<_> = match std::fs::read_dir(dir) {
        Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == "json")).collect(),
        Err(_) => return Ok(vec![]),
    };
    files.sort();
    files
        .iter()
        .map(|f| serde_json::from_value(read_json(f)?).with_context(|| format!("'{}' is not a study report", f.display())))
        .collect()
}

fn pct(v: Option<f64>) -> String {
    v.map_or("—".into(), |v| format!("{:.2}", 100.0 * v))
}

/// Renders the page of study directory `dir`.
pub fn render(dir: &Path) -> Result<Report> {
    let study = StudyDir::open(dir)?;
    let truth = Truth::load(&study, "truth")?;
    let ranks: Vec<RankReport> = reports(&dir.join("rank"))?;
    let picks: Vec<PickReport> = reports(&dir.join("pick"))?;
    let mut charts = Vec::new();
    let mut body = String::new();
    let title = format!("dnas study {}", dir.display());
    let _ = writeln!(
        body,
        "<h1>{}</h1><p class=\"src\">space {} · recipe <code>{}</code></p>",
        esc(&title),
        esc(&study.record.space),
        esc(&serde_json::to_string(&study.record.recipe)?)
    );

    let n = &truth.noise;
    body.push_str("<h2>Truth set and noise floor</h2>\n");
    let _ = writeln!(
        body,
        "<p>{}/{} runs finished ({} architectures with a value). Seed-to-seed std {} pt over {} pairs; spread (max − min) {} pt; \
         std/spread {}; Kendall τ between seeds <b>{}</b> — the ceiling for any predictor.</p>",
        truth.finished_runs,
        truth.planned_runs,
        truth.finished().count(),
        pct(n.seed_std),
        n.pairs,
        pct(n.spread),
        n.noise_to_spread.map_or("—".into(), |v| format!("{v:.2}")),
        n.tau_seeds.map_or("—".into(), |v| format!("{v:+.3}"))
    );
    let pairs: Vec<(f64, f64)> = truth
        .archs
        .iter()
        .filter_map(|a| {
            let mut v = a.top1.values();
            Some((100.0 * v.next()?, 100.0 * v.next()?))
        })
        .collect();
    if pairs.len() >= 2 {
        let lo = pairs.iter().map(|p| p.0.min(p.1)).fold(f64::INFINITY, f64::min);
        let hi = pairs.iter().map(|p| p.0.max(p.1)).fold(f64::NEG_INFINITY, f64::max);
        let svg = line_chart(
            &format!("noise ceiling: seed vs seed, τ = {:+.2}", n.tau_seeds.unwrap_or(f64::NAN)),
            "top-1 % (first seed)",
            "top-1 % (second seed)",
            &[
                Series { name: format!("architectures ({})", pairs.len()), points: pairs, dots_only: true },
                Series { name: "y = x".into(), points: vec![(lo, lo), (hi, hi)], dots_only: false },
            ],
        )?;
        charts.push(("study-noise".to_string(), svg));
    }

    if !ranks.is_empty() {
        body.push_str("<h2>Ranking quality</h2>\n");
        let rows: Vec<Vec<String>> = ranks
            .iter()
            .map(|r| {
                vec![
                    r.predictor.clone(),
                    r.source.clone(),
                    r.archs.to_string(),
                    r.kendall_tau.to_string(),
                    r.spearman_rho.to_string(),
                    r.precision_top_quarter.to_string(),
                    r.macs_tau.map_or("—".into(), |v| format!("{v:+.3}")),
                ]
            })
            .collect();
        table(
            &mut body,
            &["predictor", "run", "n", "Kendall τ [95%]", "Spearman ρ [95%]", "precision top ¼ [95%]", "τ of MACs alone"],
            &rows,
        );
        let diffs: Vec<Vec<crate::study::rank::Difference>> = reports(&dir.join("rank").join("differences"))?;
        let rows: Vec<Vec<String>> = diffs
            .iter()
            .flatten()
            .map(|d| vec![format!("{} − {}", d.a, d.b), d.archs.to_string(), d.kendall_tau.to_string(), d.spearman_rho.to_string()])
            .collect();
        if !rows.is_empty() {
            body.push_str("<p>Predictors of one run against each other, paired bootstrap over the same architectures:</p>\n");
            table(&mut body, &["difference", "n", "Δτ [95%]", "Δρ [95%]"], &rows);
        }
        for r in &ranks {
            let pts: Vec<(f64, f64)> = r.points.iter().map(|p| (p.predicted, 100.0 * p.truth)).collect();
            let svg = line_chart(
                &format!(
                    "{} ({}): τ = {:+.2} [{:+.2}, {:+.2}]",
                    r.predictor,
                    short(&r.source),
                    r.kendall_tau.value,
                    r.kendall_tau.lo,
                    r.kendall_tau.hi
                ),
                "predicted (higher is better)",
                "retrained top-1 %",
                &[Series { name: format!("truth architectures ({})", pts.len()), points: pts, dots_only: true }],
            )?;
            charts.push((format!("study-rank-{}-{}", short(&r.source), r.predictor.replace(':', "-")), svg));
        }
        let mut series: Vec<Series> = ranks
            .iter()
            .enumerate()
            .map(|(i, r)| Series {
                name: format!("{} {}", short(&r.source), r.predictor),
                points: vec![(i as f64, r.kendall_tau.lo), (i as f64, r.kendall_tau.value), (i as f64, r.kendall_tau.hi)],
                dots_only: false,
            })
            .collect();
        if let Some(c) = n.tau_seeds {
            series.push(Series {
                name: "noise ceiling (τ seed vs seed)".into(),
                points: vec![(-0.5, c), (ranks.len() as f64 - 0.5, c)],
                dots_only: false,
            });
        }
        charts.push(("study-tau".to_string(), line_chart("Kendall τ with 95% interval per predictor", "predictor", "τ", &series)?));
    }

    if !picks.is_empty() {
        body.push_str("<h2>The pick against random architectures of the same budget</h2>\n");
        let rows: Vec<Vec<String>> = picks
            .iter()
            .map(|p| {
                vec![
                    p.name.clone(),
                    p.budget.to_string(),
                    format!("{:.2}", 100.0 * p.pick.top1),
                    format!("{} of {}", p.beats, p.random.len()),
                    format!("{:.0}%", 100.0 * p.percentile),
                    format!("{:.2}", 100.0 * p.random_mean),
                    format!("{:.2}", 100.0 * p.random_best),
                ]
            })
            .collect();
        table(&mut body, &["search", "budget", "pick top-1 %", "beats", "percentile", "random mean %", "random best %"], &rows);
        for p in &picks {
            let svg = line_chart(
                &format!("{}: pick beats {} of {}", p.name, p.beats, p.random.len()),
                "MMACs",
                "retrained top-1 %",
                &[
                    Series {
                        name: format!("random within budget ({})", p.random.len()),
                        points: p.random.iter().map(|r| (r.macs as f64 / 1e6, 100.0 * r.top1)).collect(),
                        dots_only: true,
                    },
                    Series { name: "pick".into(), points: vec![(p.pick.macs as f64 / 1e6, 100.0 * p.pick.top1)], dots_only: true },
                ],
            )?;
            charts.push((format!("study-pick-{}", p.name), svg));
        }
    }

    body.push_str("<div class=\"grid\">");
    for (_, svg) in &charts {
        body.push_str(svg);
    }
    body.push_str("</div>\n<h2>Truth architectures</h2>\n");
    let mut archs: Vec<_> = truth.archs.iter().collect();
    archs.sort_by(|a, b| b.value().unwrap_or(-1.0).total_cmp(&a.value().unwrap_or(-1.0)));
    let rows: Vec<Vec<String>> = archs
        .iter()
        .map(|a| {
            let seeds: Vec<String> = a.top1.iter().map(|(s, v)| format!("s{s}: {:.2}", 100.0 * v)).collect();
            vec![a.key.clone(), a.macs.to_string(), a.params.to_string(), pct(a.value()), seeds.join(", "), a.why.clone()]
        })
        .collect();
    table(&mut body, &["architecture", "MACs", "params", "top-1 %", "per seed", "why sampled"], &rows);
    Ok(Report { html: page(&title, &body), charts })
}

/// The last path component of a run directory, for labels.
fn short(source: &str) -> String {
    Path::new(source).file_name().and_then(|s| s.to_str()).unwrap_or(source).to_string()
}
