//! `dnas report`: one self-contained HTML page (inline SVG, no scripts, no network) from the
//! plain files of a run directory — a `dnas demo` directory (`demo.json`) or a search run
//! of any strategy (`search.json`, or the files written before it). It shows the per-block supernet training curves, every candidate's
//! score against its MACs with the selected one marked, the selected architecture as a table, the
//! retrain curve, and the validation tables. Each chart is also written as its own SVG file.

mod mfkd;
pub mod plots;
pub mod study;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::Value;

use crate::strategy::dna::run::RunDir;
use crate::strategy::{SearchRun, Strategy};
use crate::util::read_json;
use plots::{line_chart, scatter_chart, Series};

/// A rendered report: the page and its charts (file stem, SVG).
pub struct Report {
    pub html: String,
    pub charts: Vec<(String, String)>,
}

/// JSON lines of a `train.jsonl`; a torn last line (a run killed mid-write) is ignored.
fn read_jsonl(path: &Path) -> Result<Vec<Value>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read '{}'", path.display()))?;
    Ok(text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect())
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// What a report is drawn from.
struct Sources {
    root: PathBuf,
    demo: Option<Value>,
    /// The search run (of any strategy), when there is one.
    search: Option<SearchRun>,
    /// The selected architecture, when selection ran.
    arch: Option<Value>,
    student_dir: Option<PathBuf>,
    validation: Option<Value>,
}

impl Sources {
    fn open(dir: &Path, validate: Option<&Path>) -> Result<Sources> {
        let (demo, search) = if dir.join("demo.json").exists() {
            let d = read_json(&dir.join("demo.json"))?;
            // Paths in demo.json are as given when the demo ran; fall back to the layout inside `dir`.
            let given = d["search"].as_str().map(PathBuf::from).unwrap_or_else(|| dir.join("search"));
            let search = SearchRun::open(&given).or_else(|_| SearchRun::open(&dir.join("search"))).ok();
            (Some(d), search)
        } else {
            let run = SearchRun::open(dir)
                .with_context(|| format!("'{}' is neither a demo directory (demo.json) nor a search run", dir.display()))?;
            (None, Some(run))
        };
        let search_arch = search.as_ref().map(|r| r.root.join(r.result.as_ref().map_or("arch.json", |x| x.arch.as_str())));
        let arch_path = demo.as_ref().and_then(|d| d["arch"].as_str().map(PathBuf::from)).filter(|p| p.exists()).or(search_arch);
        let arch = match arch_path.filter(|p| p.exists()) {
            Some(p) => Some(read_json(&p)?),
            None => None,
        };
        let student_dir = demo.as_ref().map(|_| dir.join("student")).filter(|p| p.join("train.jsonl").exists());
        let validation = match validate {
            Some(p) => Some(read_json(p)?),
            None if dir.join("student.validate.json").exists() => Some(read_json(&dir.join("student.validate.json"))?),
            None => None,
        };
        Ok(Sources { root: dir.to_path_buf(), demo, search, arch, student_dir, validation })
    }
}

/// Per-block training curves: the block's loss from the step lines of every training group
/// that trained it (`parts`), and its held-out MSE after each epoch (`blocks/<i>/done.json`).
fn block_curves(run: &RunDir, block: usize, name: &str) -> Result<Vec<Series>> {
    let mut series = Vec::new();
    let mut train = Vec::new();
    let groups = std::fs::read_dir(run.root.join("train")).map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect::<Vec<_>>());
    for g in groups.unwrap_or_default() {
        let log = g.join("train.jsonl");
        if !log.exists() {
            continue;
        }
        for line in read_jsonl(&log)? {
            if let (Some(step), Some(v)) = (line["step"].as_f64(), line["parts"][name].as_f64()) {
                train.push((step, v));
            }
        }
    }
    train.sort_by(|a, b| a.0.total_cmp(&b.0));
    train.dedup_by(|a, b| a.0 == b.0);
    if !train.is_empty() {
        series.push(Series { name: "training MSE (sampled paths)".into(), points: train, dots_only: false });
    }
    if run.is_done(block) {
        let done = read_json(&run.done_path(block))?;
        let held: Vec<f64> = done["held_out_mse"].as_array().map(|a| a.iter().filter_map(Value::as_f64).collect()).unwrap_or_default();
        let steps = done["steps"].as_f64().unwrap_or(0.0);
        let epochs = held.len().saturating_sub(1).max(1) as f64;
        let pts = held.iter().enumerate().map(|(e, &v)| (steps * e as f64 / epochs, v)).collect();
        series.push(Series { name: "held-out MSE (fixed paths)".into(), points: pts, dots_only: true });
    }
    Ok(series)
}

fn table(out: &mut String, head: &[&str], rows: &[Vec<String>]) {
    out.push_str("<table><tr>");
    for h in head {
        let _ = write!(out, "<th>{}</th>", esc(h));
    }
    out.push_str("</tr>");
    for r in rows {
        out.push_str("<tr>");
        for c in r {
            let _ = write!(out, "<td>{}</td>", esc(c));
        }
        out.push_str("</tr>");
    }
    out.push_str("</table>\n");
}

fn num(v: &Value) -> String {
    match v.as_f64() {
        Some(x) if x.fract() == 0.0 && x.abs() < 1e15 => format!("{x:.0}"),
        Some(x) => format!("{x:.4}"),
        None => v.as_str().map(String::from).unwrap_or_else(|| "-".into()),
    }
}

/// The DNA search's sections: per-block supernet curves and candidate scatters; returns the
/// selected architecture's rows (block, ops, score, rank).
fn dna_sections(search: &RunDir, arch: Option<&Value>, body: &mut String, charts: &mut Vec<(String, String)>) -> Result<Vec<Vec<String>>> {
    // Supernet training and candidate rankings, block by block.
    let space = search.space()?;
    let names: Vec<String> = space.blocks.iter().map(|b| b.name.clone()).collect();
    body.push_str("<h2>Supernet training (per block)</h2>\n<div class=\"grid\">\n");
    for (i, name) in names.iter().enumerate() {
        let series = block_curves(search, i, name)?;
        if series.is_empty() {
            let _ = writeln!(body, "<p>block {i} ('{}') has not been trained.</p>", esc(name));
            continue;
        }
        let svg = line_chart(&format!("block {i} ({name}): MSE to the teacher"), "step", "MSE", &series)?;
        body.push_str(&svg);
        charts.push((format!("train-block-{i}"), svg));
    }
    body.push_str("</div>\n<h2>Candidates: score vs MACs (selected in red)</h2>\n<div class=\"grid\">\n");
    let mut arch_rows = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let path = search.eval_path(i);
        if !path.exists() {
            let _ = writeln!(body, "<p>block {i} ('{}') has not been evaluated.</p>", esc(name));
            continue;
        }
        let ranking = read_json(&path)?;
        let cands = ranking["candidates"].as_array().cloned().unwrap_or_default();
        let pts: Vec<(f64, f64)> = cands.iter().filter_map(|c| Some((c["macs"].as_f64()?, c["score"].as_f64()?))).collect();
        let chosen_block = arch.and_then(|a| a["blocks"].as_array().and_then(|b| b.iter().find(|b| b["name"] == name.as_str())).cloned());
        let chosen_cand = chosen_block.as_ref().and_then(|b| cands.iter().find(|c| c["id"] == b["candidate"]));
        let chosen = chosen_cand.and_then(|c| Some((c["macs"].as_f64()?, c["score"].as_f64()?)));
        let metric = ranking["metric"].as_str().unwrap_or("score");
        let svg = scatter_chart(&format!("block {i} ({name}): {} candidates", cands.len()), "block MACs", metric, &pts, chosen)?;
        body.push_str(&svg);
        charts.push((format!("candidates-block-{i}"), svg));
        if let (Some(b), Some(c)) = (&chosen_block, chosen_cand) {
            let rank = cands.iter().position(|x| x["id"] == c["id"]).map_or(0, |p| p + 1);
            arch_rows.push(vec![
                format!("{i} {name}"),
                num(&b["out"]),
                num(&b["stride"]),
                b["layers"].as_array().map(|l| l.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" → ")).unwrap_or_default(),
                format!("{:.4}", c["score"].as_f64().unwrap_or(f64::NAN)),
                format!("{rank} of {}", cands.len()),
                num(&c["params"]),
                num(&c["macs"]),
            ]);
        }
    }
    body.push_str("</div>\n");
    Ok(arch_rows)
}

/// The search run's own sections, by its strategy; DNA's also give the selected architecture's
/// table rows (per block: its candidate's score and rank).
fn search_sections(
    run: &SearchRun,
    arch: Option<&Value>,
    body: &mut String,
    charts: &mut Vec<(String, String)>,
) -> Result<Vec<Vec<String>>> {
    match run.strategy() {
        Strategy::Dna => dna_sections(&RunDir::open(&run.root)?, arch, body, charts),
        Strategy::Spos | Strategy::Cream => oneshot_sections(run, arch, body, charts).map(|_| Vec::new()),
        Strategy::Mfkd => mfkd::mfkd_sections(&run.root, arch, body, charts).map(|_| Vec::new()),
    }
}

/// A one-shot search's sections: the supernet's training loss; Cream's board history (top-1 on
/// the training batch against MACs of every admitted path, by quarter of training) or SPOS's
/// evolution (inherited held-out top-1 of every scored architecture), the pick in red.
fn oneshot_sections(search: &SearchRun, arch: Option<&Value>, body: &mut String, charts: &mut Vec<(String, String)>) -> Result<()> {
    let run = &search.root;
    let strategy = search.strategy().name();
    let _ = writeln!(body, "<h2>One-shot search ({})</h2>\n<div class=\"grid\">", esc(strategy));
    let log = read_jsonl(&run.join("train").join("train.jsonl")).unwrap_or_default();
    let loss: Vec<(f64, f64)> = log.iter().filter_map(|l| Some((l["step"].as_f64()?, l["loss"].as_f64()?))).collect();
    if !loss.is_empty() {
        let svg = line_chart(
            "one-shot supernet: training loss",
            "step",
            "loss",
            &[Series { name: "loss".into(), points: loss, dots_only: false }],
        )?;
        body.push_str(&svg);
        charts.push(("oneshot-loss".into(), svg));
    }
    let pick = arch.and_then(|a| Some((a["predicted"]["macs"].as_f64()? / 1e6, 100.0 * a["predicted"]["score"].as_f64()?)));
    let mut series = Vec::new();
    let title;
    if run.join("board.json").exists() {
        let b = read_json(&run.join("board.json"))?;
        let hist: Vec<(f64, f64, f64)> = b["history"]
            .as_array()
            .map(|h| h.iter().filter_map(|e| Some((e[0].as_f64()?, e[2].as_f64()? / 1e6, 100.0 * e[1].as_f64()?))).collect())
            .unwrap_or_default();
        let last = hist.iter().map(|h| h.0).fold(1.0, f64::max);
        for q in 0..4 {
            let pts: Vec<(f64, f64)> =
                hist.iter().filter(|h| ((4.0 * h.0 / (last + 1.0)) as usize).min(3) == q).map(|h| (h.1, h.2)).collect();
            if !pts.is_empty() {
                series.push(Series { name: format!("admitted in quarter {} of training", q + 1), points: pts, dots_only: true });
            }
        }
        title = format!("Cream board history: {} admissions", hist.len());
    } else {
        let e = read_json(&run.join("evolution.json")).unwrap_or_default();
        let pts: Vec<(f64, f64)> = e["scored"]
            .as_array()
            .map(|v| v.iter().filter_map(|s| Some((s["macs"].as_f64()? / 1e6, 100.0 * s["score"].as_f64()?))).collect())
            .unwrap_or_default();
        title = format!("SPOS evolution: {} architectures scored", pts.len());
        series.push(Series { name: "scored (inherited weights)".into(), points: pts, dots_only: true });
    }
    if let Some(p) = pick {
        series.push(Series { name: "pick (inherited held-out top-1)".into(), points: vec![p], dots_only: true });
    }
    if series.iter().any(|s| !s.points.is_empty()) {
        let svg = line_chart(&title, "MMACs", "top-1 %", &series)?;
        body.push_str(&svg);
        charts.push((format!("oneshot-{strategy}"), svg));
    }
    body.push_str("</div>\n");
    Ok(())
}

/// The self-contained page around `body`.
fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{}</title><style>\
         body{{font-family:sans-serif;margin:2em;max-width:1360px}} table{{border-collapse:collapse;margin:0.5em 0}} \
         td,th{{border:1px solid #ccc;padding:3px 8px;text-align:left}} .grid{{display:flex;flex-wrap:wrap;gap:12px}} \
         .src{{color:#666}} code{{background:#f4f4f4}}</style></head><body>\n{}\n<p class=\"src\">dnas {}</p></body></html>\n",
        esc(title),
        body,
        env!("CARGO_PKG_VERSION")
    )
}

/// Renders the report of `dir` (a demo directory or a search run); `validate` adds a
/// validation report (`dnas validate --report`) to a search run's page.
pub fn render(dir: &Path, validate: Option<&Path>) -> Result<Report> {
    let src = Sources::open(dir, validate)?;
    let mut charts: Vec<(String, String)> = Vec::new();
    let mut body = String::new();
    let title = match &src.demo {
        Some(d) => format!("dnas demo --preset {}", d["preset"].as_str().unwrap_or("?")),
        None => format!("dnas search run {}", src.root.display()),
    };
    let _ = writeln!(body, "<h1>{}</h1><p class=\"src\">{}</p>", esc(&title), esc(&src.root.display().to_string()));

    if let Some(d) = &src.demo {
        body.push_str("<h2>Teacher vs searched</h2>\n");
        let rows: Vec<Vec<String>> = d["table"]["rows"]
            .as_array()
            .map(|rows| {
                rows.iter()
                    .map(|r| {
                        let unit = r["unit"].as_str().unwrap_or("");
                        let f = |v: &Value| match (v.as_f64(), unit) {
                            (Some(x), "percent") => format!("{:.2}%", 100.0 * x),
                            (Some(x), "ms") => format!("{x:.3}"),
                            (Some(x), _) => format!("{x:.0}"),
                            (None, _) => "-".into(),
                        };
                        let ratio = match (r["teacher"].as_f64(), r["student"].as_f64()) {
                            (Some(t), Some(s)) if unit == "percent" => format!("{:+.2} pt", 100.0 * (s - t)),
                            (Some(t), Some(s)) if t > 0.0 => format!("{:.3}×", s / t),
                            _ => "-".into(),
                        };
                        vec![r["metric"].as_str().unwrap_or("").to_string(), f(&r["teacher"]), f(&r["student"]), ratio]
                    })
                    .collect()
            })
            .unwrap_or_default();
        table(&mut body, &["", "teacher", "searched", "searched / teacher"], &rows);
        let _ = writeln!(
            body,
            "<p>Budget <code>{}</code>: <b>{}</b>. Total wall time {:.0} s on <code>{}</code>.</p>",
            esc(d["budget"].as_str().unwrap_or("")),
            if d["pass"].as_bool() == Some(true) { "PASS" } else { "FAIL" },
            d["wall_seconds"].as_f64().unwrap_or(0.0),
            esc(d["device"].as_str().unwrap_or("cpu"))
        );
        let stages: Vec<Vec<String>> = d["stages"]
            .as_array()
            .map(|s| {
                s.iter()
                    .map(|r| {
                        vec![
                            r["name"].as_str().unwrap_or("").into(),
                            format!(
                                "{:.0}{}",
                                r["seconds"].as_f64().unwrap_or(0.0),
                                if r["skipped"].as_bool() == Some(true) { " (resumed)" } else { "" }
                            ),
                            r["command"].as_str().unwrap_or("").into(),
                        ]
                    })
                    .collect()
            })
            .unwrap_or_default();
        body.push_str("<h3>Stages</h3>\n");
        table(&mut body, &["stage", "seconds", "command"], &stages);
    }

    let arch_rows = match &src.search {
        Some(run) => search_sections(run, src.arch.as_ref(), &mut body, &mut charts)?,
        None => Vec::new(),
    };
    if let Some(a) = &src.arch {
        body.push_str("<h2>Selected architecture</h2>\n");
        let p = &a["predicted"];
        let _ = writeln!(
            body,
            "<p>Whole network (stem and head included, BatchNorm folded): {} MACs, {} parameters, total score {}.</p>",
            num(&p["macs"]),
            num(&p["params"]),
            num(&p["score"])
        );
        table(&mut body, &["block", "out ch", "stride", "layers", "score", "rank in block", "params", "MACs"], &arch_rows);
    }

    if let Some(sd) = &src.student_dir {
        let log = read_jsonl(&sd.join("train.jsonl"))?;
        let loss: Vec<(f64, f64)> = log.iter().filter_map(|l| Some((l["step"].as_f64()?, l["loss"].as_f64()?))).collect();
        let held: Vec<(f64, f64)> = log.iter().filter_map(|l| Some((l["step"].as_f64()?, l["eval"]["held_out_loss"].as_f64()?))).collect();
        let top1: Vec<(f64, f64)> =
            log.iter().filter_map(|l| Some((l["step"].as_f64()?, 100.0 * l["eval"]["held_out_top1"].as_f64()?))).collect();
        body.push_str("<h2>Retraining the selected architecture</h2>\n<div class=\"grid\">\n");
        if !loss.is_empty() {
            let s = vec![
                Series { name: "training loss".into(), points: loss, dots_only: false },
                Series { name: "held-out cross-entropy".into(), points: held, dots_only: true },
            ];
            let svg = line_chart("student: loss", "step", "loss", &s)?;
            body.push_str(&svg);
            charts.push(("retrain-loss".into(), svg));
        }
        if !top1.is_empty() {
            let svg = line_chart(
                "student: held-out top-1",
                "step",
                "top-1 %",
                &[Series { name: "held-out top-1".into(), points: top1, dots_only: true }],
            )?;
            body.push_str(&svg);
            charts.push(("retrain-top1".into(), svg));
        }
        body.push_str("</div>\n");
    }

    if let Some(v) = &src.validation {
        body.push_str("<h2>Validation</h2>\n");
        let _ = writeln!(
            body,
            "<p><code>{}</code>: {} parameters, {} MACs, input {}.</p>",
            esc(v["model"].as_str().unwrap_or("")),
            num(&v["params"]),
            num(&v["macs"]),
            esc(&v["input_shape"].to_string())
        );
        let acc: Vec<Vec<String>> = v["accuracy"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|r| {
                        vec![
                            r["runtime"].as_str().unwrap_or("").into(),
                            format!("{:.2}%", 100.0 * r["top1"].as_f64().unwrap_or(f64::NAN)),
                            format!("{}/{}", num(&r["correct"]), num(&r["total"])),
                        ]
                    })
                    .collect()
            })
            .unwrap_or_default();
        if !acc.is_empty() {
            table(&mut body, &["runtime", "top-1", "correct"], &acc);
        }
        let reference = v["reference"]["latency"].as_array().cloned().unwrap_or_default();
        let lat: Vec<Vec<String>> = v["latency"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|r| {
                        let f = |k: &str| r[k].as_f64().map_or("-".into(), |x| format!("{x:.3}"));
                        let refp = reference.iter().find(|x| x["target"] == r["target"]).and_then(|x| x["p50_ms"].as_f64());
                        let settings = if r["available"].as_bool() == Some(true) {
                            format!(
                                "{}, {} thread(s), batch {}, {} warm-up + {} runs",
                                num(&r["provider"]),
                                num(&r["threads"]),
                                num(&r["batch"]),
                                num(&r["warmup"]),
                                num(&r["runs"])
                            )
                        } else {
                            r["note"].as_str().unwrap_or("unavailable").into()
                        };
                        vec![
                            r["target"].as_str().unwrap_or("").into(),
                            f("p50_ms"),
                            f("p90_ms"),
                            f("p99_ms"),
                            refp.map_or("-".into(), |x| format!("{x:.3}")),
                            settings,
                        ]
                    })
                    .collect()
            })
            .unwrap_or_default();
        table(&mut body, &["latency target", "p50 ms", "p90 ms", "p99 ms", "reference p50 ms", "settings"], &lat);
        let budget = v["budget"]["file"].as_str().unwrap_or("");
        if !budget.is_empty() {
            let viol: Vec<String> = v["violations"]
                .as_array()
                .map(|a| a.iter().filter_map(|x| x["message"].as_str().map(String::from)).collect())
                .unwrap_or_default();
            let _ = writeln!(
                body,
                "<p>Budget <code>{}</code>: <b>{}</b>{}</p>",
                esc(budget),
                if v["pass"].as_bool() == Some(true) { "PASS" } else { "FAIL" },
                if viol.is_empty() {
                    String::new()
                } else {
                    format!("<br>{}", viol.iter().map(|m| esc(m)).collect::<Vec<_>>().join("<br>"))
                }
            );
        }
    }

    let html = page(&title, &body);
    Ok(Report { html, charts })
}
