//! `dnas report --study DIR`: the search-quality page of a study directory — each truth set's
//! reliability (one seed against another); per predictor and set, the predicted score against the
//! retrained top-1 (τ with its interval and the reliability in the title) and the τ ceiling as a
//! line on the τ chart; each pick against the random architectures of its budget; and the truth
//! architectures as a table.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};

use super::plots::{line_chart, Series};
use super::{esc, page, table, Report};
use crate::study::pick::PickReport;
use crate::study::picks::PicksReport;
use crate::study::rank::RankReport;
use crate::study::truth::{StudyDir, Truth};
use crate::util::read_json;

/// Rank reports of the current format; those written before truth v2 (no `version`) are counted,
/// not shown (their single-set τ and seed-vs-seed ceiling are superseded).
fn rank_reports(dir: &Path) -> Result<(Vec<RankReport>, usize)> {
    let values: Vec<serde_json::Value> = reports(dir)?;
    let mut out = Vec::new();
    let mut old = 0;
    for v in values {
        if v["version"].as_u64() == Some(2) {
            out.push(
                serde_json::from_value(v).with_context(|| format!("a rank report in '{}' is not of format version 2", dir.display()))?,
            );
        } else {
            old += 1;
        }
    }
    Ok((out, old))
}

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
    let sets = Truth::load_sets(&study)?;
    let (ranks, old_ranks) = rank_reports(&dir.join("rank"))?;
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

    body.push_str("<h2>Truth sets and their reliability</h2>\n");
    for (set, truth) in &sets {
        let rel = truth.reliability.map_or("not yet measurable".to_string(), |r| {
            format!(
                "seed std {:.2} pt, between-architecture std {:.2} pt, ICC(1) {:.2}, reliability of the {:.1}-seed mean <b>{:.2}</b>, \
                 τ a perfect predictor reaches <b>{:.2}</b>",
                100.0 * r.within_std,
                100.0 * r.between_std,
                r.icc1,
                r.n0,
                r.icc_mean,
                r.tau_ceiling
            )
        });
        let _ = writeln!(
            body,
            "<p><b>{set}</b>: {}/{} runs finished ({} architectures with a value); {rel}.</p>",
            truth.finished_runs,
            truth.planned_runs,
            truth.finished().count()
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
                &format!("{set}: one seed against another (ICC(1) {:.2})", truth.reliability.map_or(f64::NAN, |r| r.icc1)),
                "top-1 % (first seed)",
                "top-1 % (second seed)",
                &[
                    Series { name: format!("architectures ({})", pairs.len()), points: pairs, dots_only: true },
                    Series { name: "y = x".into(), points: vec![(lo, lo), (hi, hi)], dots_only: false },
                ],
            )?;
            charts.push((format!("study-seeds-{set}"), svg));
        }
    }

    if old_ranks > 0 {
        let _ = writeln!(
            body,
            "<p>{old_ranks} rank report(s) of format version 1 (one truth set, seed-vs-seed ceiling) are not shown: \
             rerun <code>dnas study rank</code> for the band and space sets.</p>"
        );
    }
    if !ranks.is_empty() {
        body.push_str("<h2>Ranking quality</h2>\n");
        let opt = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{v:+.3}"));
        let mut rows: Vec<Vec<String>> = Vec::new();
        for r in &ranks {
            for st in &r.sets {
                rows.push(vec![
                    r.predictor.clone(),
                    short(&r.source),
                    st.set.clone(),
                    format!("{} ({} skipped)", st.archs, st.skipped.len()),
                    st.kendall_tau.to_string(),
                    st.spearman_rho.to_string(),
                    opt(st.macs_tau),
                    st.reliability.map_or("—".into(), |x| format!("{:.2}", x.icc_mean)),
                    st.reliability.map_or("—".into(), |x| format!("{:.2}", x.tau_ceiling)),
                    opt(st.tau_corrected),
                    r.partial_tau_macs.map_or("—".into(), |p| p.to_string()),
                ]);
            }
        }
        table(
            &mut body,
            &[
                "predictor",
                "run",
                "set",
                "n",
                "Kendall τ [95%]",
                "Spearman ρ [95%]",
                "τ of MACs",
                "reliability",
                "τ ceiling",
                "τ corrected",
                "partial τ | MACs (all) [95%]",
            ],
            &rows,
        );
        let diffs: Vec<Vec<crate::study::rank::Difference>> = reports(&dir.join("rank").join("differences"))?;
        let rows: Vec<Vec<String>> = diffs
            .iter()
            .flatten()
            .map(|d| {
                vec![
                    format!("{} − {}", d.a, d.b),
                    d.set.clone(),
                    d.archs.to_string(),
                    d.kendall_tau.to_string(),
                    d.spearman_rho.to_string(),
                ]
            })
            .collect();
        if !rows.is_empty() {
            body.push_str("<p>Predictors of one run against each other, paired bootstrap over the same architectures:</p>\n");
            table(&mut body, &["difference", "set", "n", "Δτ [95%]", "Δρ [95%]"], &rows);
        }
        for r in &ranks {
            for st in &r.sets {
                let pts: Vec<(f64, f64)> = st.points.iter().map(|p| (p.predicted, 100.0 * p.truth)).collect();
                let svg = line_chart(
                    &format!(
                        "{} ({}) on {}: τ = {:+.2} [{:+.2}, {:+.2}], reliability {}",
                        r.predictor,
                        short(&r.source),
                        st.set,
                        st.kendall_tau.value,
                        st.kendall_tau.lo,
                        st.kendall_tau.hi,
                        st.reliability.map_or("—".into(), |x| format!("{:.2}", x.icc_mean))
                    ),
                    "predicted (higher is better)",
                    "retrained top-1 % (seed mean)",
                    &[Series { name: format!("truth architectures ({})", pts.len()), points: pts, dots_only: true }],
                )?;
                charts.push((format!("study-rank-{}-{}-{}", short(&r.source), r.predictor.replace(':', "-"), st.set), svg));
            }
        }
        let mut series: Vec<Series> = Vec::new();
        let mut i = 0usize;
        for r in &ranks {
            for st in &r.sets {
                let t = &st.kendall_tau;
                series.push(Series {
                    name: format!("{} {} ({})", short(&r.source), r.predictor, st.set),
                    points: vec![(i as f64, t.lo), (i as f64, t.value), (i as f64, t.hi)],
                    dots_only: false,
                });
                i += 1;
            }
        }
        for (set, truth) in &sets {
            if let Some(rel) = truth.reliability {
                series.push(Series {
                    name: format!("τ ceiling of the {set} truth"),
                    points: vec![(-0.5, rel.tau_ceiling), (i as f64 - 0.5, rel.tau_ceiling)],
                    dots_only: false,
                });
            }
        }
        charts.push(("study-tau".to_string(), line_chart("Kendall τ with 95% interval per predictor and set", "predictor", "τ", &series)?));
    }

    let strategy_picks: Vec<PicksReport> = reports(&dir.join("picks"))?;
    if !strategy_picks.is_empty() {
        body.push_str("<h2>Picks over search seeds against the band set</h2>\n");
        let rows: Vec<Vec<String>> = strategy_picks
            .iter()
            .map(|p| {
                vec![
                    p.name.clone(),
                    p.picks.len().to_string(),
                    format!("{:.2}", 100.0 * p.mean),
                    p.interval.map_or("—".into(), |(lo, hi)| format!("[{:.2}, {:.2}]", 100.0 * lo, 100.0 * hi)),
                    format!("{:.0}%", 100.0 * p.band_percentile_mean),
                    format!("{:.3}", p.p_vs_band),
                    format!("{:.2} ± {:.2}", 100.0 * p.band.mean, 100.0 * p.band.std),
                    p.search_seconds_mean.map_or("—".into(), |s| format!("{s:.0}")),
                    p.random_search.as_ref().map_or("—".into(), |r| format!("{:.2} ({} trainings)", 100.0 * r.mean, r.trainings)),
                ]
            })
            .collect();
        table(
            &mut body,
            &[
                "strategy",
                "search seeds",
                "mean pick top-1 %",
                "95% (t)",
                "band percentile",
                "p vs band",
                "band mean ± std %",
                "search s",
                "random search, equal compute %",
            ],
            &rows,
        );
        let band = sets.iter().find(|(s, _)| s == "band").map(|(_, t)| t);
        let mut series = Vec::new();
        if let Some(b) = band {
            series.push(Series {
                name: "band set (seed means)".into(),
                points: b.finished().filter_map(|a| a.value()).map(|v| (0.0, 100.0 * v)).collect(),
                dots_only: true,
            });
        }
        for (i, p) in strategy_picks.iter().enumerate() {
            series.push(Series {
                name: format!("{} ({} seeds)", p.name, p.picks.len()),
                points: p.picks.iter().map(|q| ((i + 1) as f64, 100.0 * q.top1)).collect(),
                dots_only: true,
            });
        }
        charts.push((
            "study-picks".to_string(),
            line_chart("picks per strategy (x ≥ 1) against the band set (x = 0)", "strategy", "retrained top-1 %", &series)?,
        ));
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
    let mut archs: Vec<_> = sets.iter().flat_map(|(_, t)| t.archs.iter()).collect();
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
