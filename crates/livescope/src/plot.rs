//! Plots for `livescope sim` and `livescope stats`, with `plotters`, as SVG and PNG.
//! Laying text out needs a font: DejaVu Sans, as Debian installs it (`fonts-dejavu-core`).

use std::path::Path;

use anyhow::{anyhow, bail};
use plotters::coord::Shift;
use plotters::prelude::*;

const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

/// Registers the font once; false when there is none.
fn font() -> bool {
    static READY: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *READY.get_or_init(|| {
        let Ok(bytes) = std::fs::read(FONT) else { return false };
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok()
    })
}

/// A named line through its points.
pub type Series = (String, Vec<(f64, f64)>);

/// `name`.svg and `name`.png in `dir`: a line through each series, with a legend.
pub fn draw(
    dir: &Path,
    name: &str,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
) -> anyhow::Result<()> {
    render(dir, name, title, x_label, y_label, series, true)
}

/// `name`.svg and `name`.png in `dir`: each series as dots only.
pub fn scatter(
    dir: &Path,
    name: &str,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
) -> anyhow::Result<()> {
    render(dir, name, title, x_label, y_label, series, false)
}

fn render(
    dir: &Path,
    name: &str,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    lines: bool,
) -> anyhow::Result<()> {
    if !font() {
        bail!("plots need the font {FONT} (Debian: apt-get install fonts-dejavu-core)");
    }
    let svg = dir.join(format!("{name}.svg"));
    chart(
        SVGBackend::new(&svg, (720, 440)).into_drawing_area(),
        title,
        x_label,
        y_label,
        series,
        lines,
    )?;
    let png = dir.join(format!("{name}.png"));
    chart(
        BitMapBackend::new(&png, (720, 440)).into_drawing_area(),
        title,
        x_label,
        y_label,
        series,
        lines,
    )?;
    Ok(())
}

fn chart<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    lines: bool,
) -> anyhow::Result<()> {
    let failed = |e: &dyn std::fmt::Display| anyhow!("drawing {title}: {e}");
    // Axes from 0 (every value here is a time or a ratio) to a little past the largest.
    let span = |values: Vec<f64>| {
        let hi = values.iter().fold(0.0f64, |hi, &v| hi.max(v));
        0.0..(hi * 1.08).max(0.05)
    };
    let all = || series.iter().flat_map(|s| s.1.iter());
    let xs = span(all().map(|p| p.0).collect());
    let ys = span(all().map(|p| p.1).collect());
    root.fill(&WHITE).map_err(|e| failed(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(xs, ys)
        .map_err(|e| failed(&e))?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(y_label)
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(|e| failed(&e))?;
    // The first series in the app's red, then blue, green and violet.
    let colors = [
        RGBColor(211, 16, 63),
        RGBColor(33, 102, 172),
        RGBColor(27, 158, 119),
        RGBColor(117, 112, 179),
    ];
    for ((label, points), color) in series.iter().zip(colors.iter().cycle()) {
        let color = *color;
        let line = if lines { points.as_slice() } else { &[] };
        chart
            .draw_series(LineSeries::new(line.iter().copied(), color.stroke_width(2)))
            .map_err(|e| failed(&e))?
            .label(label.as_str())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], color.stroke_width(2)));
        chart
            .draw_series(
                points
                    .iter()
                    .map(|&p| Circle::new(p, if lines { 4 } else { 3 }, color.filled())),
            )
            .map_err(|e| failed(&e))?;
    }
    chart
        .configure_series_labels()
        .label_font(("sans-serif", 14))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(|e| failed(&e))?;
    root.present().map_err(|e| failed(&e))?;
    Ok(())
}
