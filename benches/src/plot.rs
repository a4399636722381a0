//! PNG line charts of what a harness measured (the scale harness, the soak).
//!
//! Text is drawn with a TrueType font read at run time: `AURA_PLOT_FONT` when set, else
//! the first of a few common system fonts. Without one the chart cannot be labelled, so
//! [`line_chart`] says so and the caller keeps its CSV.

use std::path::Path;
use std::sync::OnceLock;

use plotters::coord::ranged1d::ValueFormatter;
use plotters::prelude::*;

/// One line: its label and its points.
pub struct Series {
    /// The legend's label.
    pub label: String,
    /// `(x, y)` points, in order of `x`.
    pub points: Vec<(f64, f64)>,
}

/// What to draw.
pub struct Chart<'a> {
    /// The title above the chart.
    pub title: &'a str,
    /// The x axis's label.
    pub x_label: &'a str,
    /// The y axis's label.
    pub y_label: &'a str,
    /// Whether x grows by powers of ten (sizes from 1 to 10,000).
    pub log_x: bool,
    /// Whether y grows by powers of ten (times from microseconds to seconds).
    pub log_y: bool,
    /// Whether x counts whole things (rounds, steps): only whole numbers are labelled.
    pub whole_x: bool,
}

const FONT_PATHS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/liberation-sans/LiberationSans-Regular.ttf",
];

/// Registers the font once per process; the error says where it looked.
fn font() -> Result<(), String> {
    static FONT: OnceLock<Result<(), String>> = OnceLock::new();
    FONT.get_or_init(|| {
        let configured = std::env::var("AURA_PLOT_FONT").ok();
        let candidates: Vec<&str> = configured
            .iter()
            .map(String::as_str)
            .chain(FONT_PATHS.iter().copied())
            .collect();
        let bytes = candidates
            .iter()
            .find_map(|p| std::fs::read(p).ok())
            .ok_or_else(|| {
                format!(
                    "no font to label the chart with: set AURA_PLOT_FONT to a .ttf file \
                     (looked in {})",
                    candidates.join(", ")
                )
            })?;
        // plotters keeps the font for the life of the process.
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
            .map_err(|_| "the font file could not be read as TrueType".to_owned())
    })
    .clone()
}

fn range(values: impl Iterator<Item = f64>, log: bool) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if !lo.is_finite() {
        return (if log { 1.0 } else { 0.0 }, 1.0);
    }
    if log {
        let lo = lo.max(1e-6);
        (lo / 1.5, hi.max(lo) * 1.5)
    } else {
        let pad = ((hi - lo) * 0.05).max(1e-9);
        ((lo - pad).min(0.0), hi + pad)
    }
}

/// Draws `series` as lines with points into a 1,000 × 600 PNG at `path`.
pub fn line_chart(path: &Path, chart: &Chart<'_>, series: &[Series]) -> Result<(), String> {
    font()?;
    let root = BitMapBackend::new(path, (1000, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let xs = range(
        series.iter().flat_map(|s| s.points.iter().map(|p| p.0)),
        chart.log_x,
    );
    let ys = range(
        series.iter().flat_map(|s| s.points.iter().map(|p| p.1)),
        chart.log_y,
    );
    // Room above the lines for the legend in the upper left corner.
    let ys = if chart.log_y {
        ys
    } else {
        (ys.0, ys.1 + 0.3 * (ys.1 - ys.0))
    };
    let mut builder = ChartBuilder::on(&root);
    builder
        .caption(chart.title, ("sans-serif", 24))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(72);
    // The four axis kinds are four types; one macro-free helper per kind would repeat the
    // drawing code, so each arm draws through `draw`.
    match (chart.log_x, chart.log_y) {
        (false, false) => draw(
            builder.build_cartesian_2d(xs.0..xs.1, ys.0..ys.1),
            chart,
            series,
        ),
        (true, false) => draw(
            builder.build_cartesian_2d((xs.0..xs.1).log_scale(), ys.0..ys.1),
            chart,
            series,
        ),
        (false, true) => draw(
            builder.build_cartesian_2d(xs.0..xs.1, (ys.0..ys.1).log_scale()),
            chart,
            series,
        ),
        (true, true) => draw(
            builder.build_cartesian_2d((xs.0..xs.1).log_scale(), (ys.0..ys.1).log_scale()),
            chart,
            series,
        ),
    }?;
    root.present().map_err(|e| e.to_string())
}

fn draw<'a, X, Y, E>(
    built: Result<ChartContext<'a, BitMapBackend<'a>, Cartesian2d<X, Y>>, E>,
    chart: &Chart<'_>,
    series: &[Series],
) -> Result<(), String>
where
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
    E: std::fmt::Display,
{
    let mut ctx = built.map_err(|e| e.to_string())?;
    let whole = |x: &f64| {
        if (x - x.round()).abs() < 1e-9 {
            format!("{x:.0}")
        } else {
            String::new()
        }
    };
    let mut mesh = ctx.configure_mesh();
    if chart.whole_x {
        mesh.x_label_formatter(&whole);
    }
    mesh.x_desc(chart.x_label)
        .y_desc(chart.y_label)
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(|e| e.to_string())?;
    for (i, s) in series.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        ctx.draw_series(LineSeries::new(
            s.points.iter().copied(),
            color.stroke_width(2),
        ))
        .map_err(|e| e.to_string())?
        .label(s.label.as_str())
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        ctx.draw_series(s.points.iter().map(|p| Circle::new(*p, 3, color.filled())))
            .map_err(|e| e.to_string())?;
    }
    ctx.configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(|e| e.to_string())
}
