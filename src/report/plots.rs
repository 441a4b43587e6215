//! The report's charts, drawn with plotters into SVG strings: line charts (training curves) and
//! a cost-vs-loss scatter with the chosen candidate marked and the Pareto front drawn.

use anyhow::{anyhow, bail, Result};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

/// One series of a line chart.
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    /// Draw each point as a dot and no line (e.g. a few held-out evaluations).
    pub dots_only: bool,
}

const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(23, 190, 207),
];
const CHOSEN: RGBColor = RGBColor(214, 39, 40);
const SIZE: (u32, u32) = (640, 360);

/// Padded range of `v`: never empty, so a single point still gets axes.
fn range(v: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    let (lo, hi) = v.filter(|x| x.is_finite()).fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), x| (l.min(x), h.max(x)));
    if !lo.is_finite() {
        return None;
    }
    let pad = if hi > lo { 0.05 * (hi - lo) } else { lo.abs().max(1.0) * 0.05 };
    Some((lo - pad, hi + pad))
}

fn err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("drawing a chart: {e:?}")
}

type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// The frame every chart shares (white page, caption, axes with their labels, legend) around
/// what `draw` puts on it, as an SVG document.
fn render(
    title: &str,
    labels: (&str, &str),
    xr: (f64, f64),
    yr: (f64, f64),
    x_fmt: &dyn Fn(&f64) -> String,
    draw: impl FnOnce(&mut Chart) -> Result<()>,
) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d(xr.0..xr.1, yr.0..yr.1)
            .map_err(err)?;
        chart.configure_mesh().x_desc(labels.0).y_desc(labels.1).x_label_formatter(x_fmt).light_line_style(WHITE).draw().map_err(err)?;
        draw(&mut chart)?;
        chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw().map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

fn finite(p: &&(f64, f64)) -> bool {
    p.0.is_finite() && p.1.is_finite()
}

/// A line chart of `series` (x, y) as an SVG document.
pub fn line_chart(title: &str, x_label: &str, y_label: &str, series: &[Series]) -> Result<String> {
    let all = || series.iter().flat_map(|s| s.points.iter());
    let (Some(xr), Some(yr)) = (range(all().map(|p| p.0)), range(all().map(|p| p.1))) else {
        bail!("chart '{title}' has no finite data points");
    };
    let x_fmt = |v: &f64| if xr.1 - xr.0 >= 10.0 { format!("{v:.0}") } else { format!("{v:.2}") };
    render(title, (x_label, y_label), xr, yr, &x_fmt, |chart| {
        for (k, s) in series.iter().enumerate() {
            let color = PALETTE[k % PALETTE.len()];
            let pts: Vec<(f64, f64)> = s.points.iter().filter(finite).copied().collect();
            // A single point makes no line: draw it as a dot.
            if s.dots_only || pts.len() == 1 {
                chart
                    .draw_series(pts.iter().map(|&p| Circle::new(p, 4, color.filled())))
                    .map_err(err)?
                    .label(s.name.clone())
                    .legend(move |(x, y)| Circle::new((x + 10, y), 4, color.filled()));
            } else {
                chart
                    .draw_series(LineSeries::new(pts, color.stroke_width(2)))
                    .map_err(err)?
                    .label(s.name.clone())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
            }
        }
        Ok(())
    })
}

/// A scatter of candidates (cost, loss) with the Pareto front (lowest loss at each cost or
/// less) as a line and `chosen` as a larger red dot.
pub fn scatter_chart(title: &str, x_label: &str, y_label: &str, points: &[(f64, f64)], chosen: Option<(f64, f64)>) -> Result<String> {
    let all = || points.iter().chain(chosen.iter());
    let (Some(xr), Some(yr)) = (range(all().map(|p| p.0)), range(all().map(|p| p.1))) else {
        bail!("chart '{title}' has no finite data points");
    };
    let mut front: Vec<(f64, f64)> = points.iter().filter(finite).copied().collect();
    front.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    let mut best = f64::INFINITY;
    front.retain(|p| {
        let keep = p.1 < best;
        best = best.min(p.1);
        keep
    });
    render(title, (x_label, y_label), xr, yr, &|v| format!("{:.2}M", v / 1e6), |chart| {
        let dot = PALETTE[0].mix(0.55);
        chart
            .draw_series(points.iter().filter(finite).map(|&p| Circle::new(p, 3, dot.filled())))
            .map_err(err)?
            .label(format!("candidates ({})", points.len()))
            .legend(move |(x, y)| Circle::new((x + 10, y), 3, dot.filled()));
        chart
            .draw_series(LineSeries::new(front, PALETTE[2].stroke_width(1)))
            .map_err(err)?
            .label("Pareto front")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], PALETTE[2].stroke_width(1)));
        if let Some(c) = chosen {
            chart
                .draw_series(std::iter::once(Circle::new(c, 7, CHOSEN.filled())))
                .map_err(err)?
                .label("selected")
                .legend(|(x, y)| Circle::new((x + 10, y), 6, CHOSEN.filled()));
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scatter_draws_every_point_and_the_choice() {
        let pts: Vec<(f64, f64)> = (0..25).map(|i| (1e5 * (i + 1) as f64, 1.0 / (i + 1) as f64 + 0.01 * (i % 3) as f64)).collect();
        let svg = scatter_chart("t", "MACs", "score", &pts, Some(pts[7])).unwrap();
        // 25 candidates + 1 chosen + 2 legend dots.
        assert_eq!(svg.matches("<circle").count(), 28);
        assert!(svg.contains("fill=\"#D62728\""), "the chosen candidate is drawn in red");
        assert!(scatter_chart("t", "x", "y", &[], None).is_err());
    }

    #[test]
    fn line_chart_has_a_polyline_per_series() {
        let s = vec![
            Series { name: "a".into(), points: (0..10).map(|i| (i as f64, (10 - i) as f64)).collect(), dots_only: false },
            Series { name: "b".into(), points: vec![(2.0, 3.0), (9.0, 1.0)], dots_only: true },
        ];
        let svg = line_chart("t", "step", "loss", &s).unwrap();
        assert!(svg.matches("<polyline").count() >= 1);
        assert_eq!(svg.matches("<circle").count(), 3, "2 dots + 1 legend dot");
        assert!(line_chart("t", "x", "y", &[Series { name: "n".into(), points: vec![(f64::NAN, 1.0)], dots_only: false }]).is_err());
    }
}
