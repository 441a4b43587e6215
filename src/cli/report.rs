//! `dnas report --run DIR [-o report.html] [--validate R.json]`: the HTML report of a demo or
//! search run (see `crate::report`); every chart is also written as `report/<name>.svg`.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use super::Outcome;
use crate::util::write_atomic;

#[derive(Args)]
pub struct ReportArgs {
    /// A `dnas demo` directory or a search run directory.
    #[arg(long, required_unless_present = "study", conflicts_with = "study")]
    run: Option<PathBuf>,
    /// A study directory (`dnas study truth -o DIR`): ranking quality, noise ceiling, picks.
    #[arg(long)]
    study: Option<PathBuf>,
    /// Output HTML (default RUN/report.html; the SVGs go to report/ beside it).
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// A validation report (`dnas validate --report`) to include; a demo directory has its own.
    #[arg(long)]
    validate: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

pub fn report(a: ReportArgs) -> Result<Outcome> {
    let (r, dir) = match (&a.study, &a.run) {
        (Some(s), _) => (crate::report::study::render(s)?, s.clone()),
        (None, Some(run)) => (crate::report::render(run, a.validate.as_deref())?, run.clone()),
        (None, None) => anyhow::bail!("give --run or --study"),
    };
    let out = a.output.clone().unwrap_or_else(|| dir.join("report.html"));
    write_atomic(&out, r.html.as_bytes())?;
    let svg_dir = out.parent().filter(|p| !p.as_os_str().is_empty()).map_or_else(|| PathBuf::from("report"), |p| p.join("report"));
    let mut files = Vec::new();
    for (name, svg) in &r.charts {
        let f = svg_dir.join(format!("{name}.svg"));
        write_atomic(&f, svg.as_bytes())?;
        files.push(f);
    }
    if a.json {
        println!("{}", serde_json::json!({"html": out, "charts": files}));
    } else {
        println!("wrote {} ({} charts, also as SVG files in {})", out.display(), files.len(), svg_dir.display());
    }
    Ok(Outcome::Ok)
}
