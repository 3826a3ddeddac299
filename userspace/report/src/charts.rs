//! Charts as inline SVG, drawn with plotters' SVG backend (no fonts embedded or fetched: text
//! stays `<text>` for the reader's own sans-serif).
//!
//! Each chart is wrapped in `<div class="chart" id="chart-ID">`. A bar chart draws one
//! `<rect>` per non-zero value in a series colour from [`PALETTE`]; a score chart draws one
//! `<circle>` per point. So what the page shows can be counted back from it.

use plotters::prelude::*;

use crate::{Error, Window};

/// Series colours, in order (colour-blind-safe Tableau 10).
pub const PALETTE: [RGBColor; 10] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x8c, 0x56, 0x4b),
    RGBColor(0xe3, 0x77, 0xc2),
    RGBColor(0x7f, 0x7f, 0x7f),
    RGBColor(0xbc, 0xbd, 0x22),
    RGBColor(0x17, 0xbe, 0xcf),
];

/// Band colours: low, medium, high, critical.
pub const BANDS: [RGBColor; 4] = [
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xe6, 0xb4, 0x00),
    RGBColor(0xe0, 0x6c, 0x00),
    RGBColor(0xb0, 0x00, 0x00),
];

/// The colour of the hospital score line and its points.
pub const SCORE: RGBColor = RGBColor(0x1f, 0x3a, 0x93);

/// `#RRGGBB` as the SVG backend writes it.
pub fn hex(c: RGBColor) -> String {
    format!("#{:02X}{:02X}{:02X}", c.0, c.1, c.2)
}

/// One stacked series of a bar chart.
pub struct Series {
    pub name: String,
    pub colour: RGBColor,
    pub values: Vec<f64>,
}

const WIDTH: u32 = 1000;
const HEIGHT: u32 = 320;

fn chart_err(chart: &'static str) -> impl Fn(String) -> Error {
    move |reason| Error::Chart { chart, reason }
}

fn wrap(id: &'static str, svg: String) -> String {
    format!("<div class=\"chart\" id=\"chart-{id}\">\n{svg}\n</div>\n")
}

/// Stacked bars: one column per label, the series stacked in order. Zero values draw nothing.
pub fn stacked_bars(
    id: &'static str,
    y_desc: &str,
    labels: &[String],
    series: &[Series],
) -> Result<String, Error> {
    let e = chart_err(id);
    let n = labels.len().max(1);
    let top = (0..labels.len())
        .map(|i| {
            series
                .iter()
                .map(|s| s.values.get(i).copied().unwrap_or(0.0).max(0.0))
                .sum::<f64>()
        })
        .fold(0.0f64, f64::max);
    let top = if top <= 0.0 { 1.0 } else { top * 1.1 };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(|x| e(x.to_string()))?;
        let mut chart = ChartBuilder::on(&root)
            .margin(10)
            .x_label_area_size(if n > 12 { 60 } else { 40 })
            .y_label_area_size(50)
            .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), 0f64..top)
            .map_err(|x| e(x.to_string()))?;
        let every = n.div_ceil(15).max(1);
        let label = |x: &f64| {
            let i = x.round();
            if (x - i).abs() > 1e-6 || i < 0.0 {
                return String::new();
            }
            let i = i as usize;
            if !i.is_multiple_of(every) {
                return String::new();
            }
            labels.get(i).cloned().unwrap_or_default()
        };
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n.min(40))
            .x_label_formatter(&label)
            .y_desc(y_desc)
            .draw()
            .map_err(|x| e(x.to_string()))?;
        let mut base = vec![0.0f64; labels.len()];
        for s in series {
            let mut rects = Vec::new();
            for (i, b) in base.iter_mut().enumerate() {
                let v = s.values.get(i).copied().unwrap_or(0.0).max(0.0);
                if v <= 0.0 {
                    continue;
                }
                let x = i as f64;
                rects.push(Rectangle::new(
                    [(x - 0.38, *b), (x + 0.38, *b + v)],
                    s.colour.filled(),
                ));
                *b += v;
            }
            chart.draw_series(rects).map_err(|x| e(x.to_string()))?;
        }
        root.present().map_err(|x| e(x.to_string()))?;
    }
    Ok(wrap(id, svg))
}

/// A score (0–100) over the window: a line through the points and a circle on each.
pub fn scores_over_time(
    id: &'static str,
    window: Window,
    points: &[(heir_model::Timestamp, f64)],
) -> Result<String, Error> {
    let e = chart_err(id);
    let start = window.since.as_nanos();
    let span = (window.until.as_nanos().saturating_sub(start)).max(1) as f64 / 86_400e9;
    let x = |t: heir_model::Timestamp| t.as_nanos().saturating_sub(start) as f64 / 86_400e9;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(|x| e(x.to_string()))?;
        let mut chart = ChartBuilder::on(&root)
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(0f64..span, 0f64..100f64)
            .map_err(|x| e(x.to_string()))?;
        chart
            .configure_mesh()
            .x_desc("days since the start of the period")
            .y_desc("RAMA")
            .draw()
            .map_err(|x| e(x.to_string()))?;
        // Band thresholds.
        for (t, c) in [(25.0, BANDS[1]), (50.0, BANDS[2]), (75.0, BANDS[3])] {
            chart
                .draw_series(LineSeries::new([(0.0, t), (span, t)], c.mix(0.5)))
                .map_err(|x| e(x.to_string()))?;
        }
        let pts: Vec<(f64, f64)> = points.iter().map(|(t, v)| (x(*t), *v)).collect();
        if pts.len() > 1 {
            chart
                .draw_series(LineSeries::new(pts.iter().copied(), SCORE.stroke_width(2)))
                .map_err(|x| e(x.to_string()))?;
        }
        chart
            .draw_series(pts.iter().map(|p| Circle::new(*p, 3, SCORE.filled())))
            .map_err(|x| e(x.to_string()))?;
        root.present().map_err(|x| e(x.to_string()))?;
    }
    Ok(wrap(id, svg))
}

/// The legend entries for a set of series, for [`crate::html::Doc::figure`].
pub fn legend(series: &[Series]) -> Vec<(String, String)> {
    series
        .iter()
        .map(|s| (hex(s.colour), s.name.clone()))
        .collect()
}
