//! The PNG plot: time against K for the jvp contenders, one panel per n, log–log.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use plotters::prelude::*;

use crate::stats::ms;
use crate::suites::tangents::{LABELS, Mode, Row};

/// Fonts tried in turn (text is drawn with `ab_glyph`, which needs a TrueType file);
/// `TESSERACT_BENCH_FONT` overrides.
const FONTS: [&str; 4] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
];

fn register_plot_font() -> anyhow::Result<()> {
    let candidates: Vec<PathBuf> = std::env::var_os("TESSERACT_BENCH_FONT")
        .map(PathBuf::from)
        .into_iter()
        .chain(FONTS.iter().map(PathBuf::from))
        .collect();
    let Some(path) = candidates.iter().find(|p| p.is_file()) else {
        bail!(
            "no TrueType font for the plot's text; tried {FONTS:?}. Install DejaVu Sans \
             (fonts-dejavu-core) or set TESSERACT_BENCH_FONT to a .ttf file"
        );
    };
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    // plotters keeps fonts for the life of the process.
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
        .map_err(|_| anyhow::anyhow!("{} is not a usable font", path.display()))?;
    Ok(())
}

const COLORS: [RGBColor; 5] = [
    RGBColor(214, 39, 40),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(31, 119, 180),
    RGBColor(44, 160, 44),
];

/// Draws the jvp rows of `rows` to `path`.
///
/// # Errors
/// When there is nothing to draw, no font, or the file cannot be written.
pub fn jvp_vs_k(rows: &[Row], path: &Path) -> anyhow::Result<()> {
    register_plot_font()?;
    let jvp: Vec<&Row> = rows.iter().filter(|r| r.mode == Mode::Jvp).collect();
    let mut ns: Vec<usize> = jvp.iter().map(|r| r.n).collect();
    ns.sort_unstable();
    ns.dedup();
    if ns.is_empty() {
        bail!("no jvp measurements to plot");
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let err = |e: &dyn std::fmt::Display| anyhow::anyhow!("plotting {}: {e}", path.display());
    let root = BitMapBackend::new(path, (560 * ns.len() as u32, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let kmax = jvp.iter().map(|r| r.k).max().unwrap_or(1) as f64;
    // Ticks at the K values measured (1, 8, 64), not at plotters' decades.
    let mut ks: Vec<f64> = jvp.iter().map(|r| r.k as f64).collect();
    ks.sort_by(f64::total_cmp);
    ks.dedup();
    for (panel, &n) in root.split_evenly((1, ns.len())).iter().zip(&ns) {
        let cells: Vec<&&Row> = jvp.iter().filter(|r| r.n == n).collect();
        let all = cells.iter().flat_map(|r| r.times.iter().map(|&t| ms(t)));
        let (lo, hi) = all.fold((f64::INFINITY, 0.0f64), |(lo, hi), t| {
            (lo.min(t), hi.max(t))
        });
        let mut chart = ChartBuilder::on(panel)
            .caption(format!("steady-state jvp, n = {n}"), ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(42)
            .y_label_area_size(64)
            .build_cartesian_2d(
                (0.8f64..kmax * 1.25)
                    .log_scale()
                    .with_key_points(ks.clone()),
                // Headroom above the data for the legend.
                ((lo * 0.5).max(1e-4)..hi * 12.0).log_scale(),
            )
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_desc("K, (co)tangents per call")
            .y_desc("median time per K tangents (ms)")
            .label_style(("sans-serif", 14))
            .x_label_formatter(&|k| tick(*k))
            .y_label_formatter(&|t| tick(*t))
            .draw()
            .map_err(|e| err(&e))?;
        for (i, label) in LABELS.iter().enumerate() {
            let color = COLORS[i];
            let points: Vec<(f64, f64)> =
                cells.iter().map(|r| (r.k as f64, ms(r.times[i]))).collect();
            chart
                .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
                .map_err(|e| err(&e))?
                .label(*label)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                });
            chart
                .draw_series(points.iter().map(|&p| Circle::new(p, 4, color.filled())))
                .map_err(|e| err(&e))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .label_font(("sans-serif", 13))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(|e| err(&e))?;
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

/// A tick label: three significant digits at most, and no `.0` on whole numbers (`8`, `0.25`,
/// `1000`). Log-scale key points come from repeated multiplication, so the rounding also hides
/// float noise such as `0.30000000000000004`.
fn tick(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let scale = 10f64.powi(2 - v.abs().log10().floor() as i32);
    // `Display` for f64 prints the shortest form that round-trips, without a trailing `.0`.
    format!("{}", (v * scale).round() / scale)
}

#[cfg(test)]
mod tests {
    use super::tick;

    #[test]
    fn tick_labels_are_short() {
        assert_eq!(tick(1.0), "1");
        assert_eq!(tick(8.0), "8");
        assert_eq!(tick(64.0), "64");
        assert_eq!(tick(1000.0), "1000");
        assert_eq!(tick(0.1 * 3.0), "0.3");
        assert_eq!(tick(0.0125), "0.0125");
        assert_eq!(tick(123_456.0), "123000");
    }
}
