//! SVG plots of a benchmark run, drawn with `plotters`' SVG backend (text is SVG `<text>`, so
//! no system font is needed). Each function returns the SVG document as a string; [`write`]
//! puts it in the report folder.
//!
//! | file | what |
//! |---|---|
//! | `ttft_cdf.svg` | TTFT CDF per policy, log x-axis ([`cdf`]) |
//! | `ttft_over_time.svg` | mean TTFT per interval of simulated time, per policy ([`over_time`]) |
//! | `hbm_use.svg` | HBM use over time split into LoRA / valid KV / invalid KV, a panel per policy ([`hbm`]) |
//! | `ttft_breakdown.svg` | mean TTFT split into queueing, LoRA cold start, KV cold start, prefill ([`breakdown`]) |
//! | `ttft_vs_rate.svg` | mean and P99 TTFT against rate per policy, for sweeps ([`rate`]) |

pub mod breakdown;
pub mod cdf;
pub mod hbm;
pub mod over_time;
pub mod rate;

use std::path::{Path, PathBuf};

use plotters::prelude::*;
use plotters::style::RGBColor;

use crate::report::ReportError;
use crate::report::files::write_file;

/// File name of the TTFT CDF plot.
pub const TTFT_CDF: &str = "ttft_cdf.svg";
/// File name of the TTFT-over-time plot.
pub const TTFT_OVER_TIME: &str = "ttft_over_time.svg";
/// File name of the HBM-use plot.
pub const HBM_USE: &str = "hbm_use.svg";
/// File name of the TTFT breakdown plot.
pub const TTFT_BREAKDOWN: &str = "ttft_breakdown.svg";
/// File name of the TTFT-against-rate plot (sweeps only).
pub const TTFT_VS_RATE: &str = "ttft_vs_rate.svg";

/// Width of a one-panel plot, px.
pub const WIDTH: u32 = 960;
/// Height of a one-panel plot, px.
pub const HEIGHT: u32 = 560;

/// Font family of every label.
pub const FONT: &str = "sans-serif";

/// A fixed color per policy, so a policy looks the same in every plot.
pub fn policy_color(policy: &str) -> RGBColor {
    match policy {
        "fastlibra" => RGBColor(0x1f, 0x77, 0xb4),
        "vllm" => RGBColor(0xff, 0x7f, 0x0e),
        "vllm-async" => RGBColor(0xbc, 0xbd, 0x22),
        "slora" => RGBColor(0x2c, 0xa0, 0x2c),
        "fastlibra-wom" => RGBColor(0x94, 0x67, 0xbd),
        "fastlibra-wos" => RGBColor(0x8c, 0x56, 0x4b),
        "vllm-oracle" => RGBColor(0xd6, 0x27, 0x28),
        _ => RGBColor(0x7f, 0x7f, 0x7f),
    }
}

/// A plotting error for `plot`.
pub(crate) fn plot_error(plot: &str) -> impl Fn(&dyn std::fmt::Display) -> ReportError + '_ {
    move |e| ReportError::Plot {
        plot: plot.to_string(),
        message: e.to_string(),
    }
}

/// Formats an axis value compactly: no trailing zeros, at most 3 decimals.
pub fn tick(v: f64) -> String {
    if v == 0.0 {
        return "0".to_string();
    }
    let text = if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    };
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// `[lo, hi]` widened to whole decades (so a log axis always has labelled powers of ten):
/// positive, `lo < hi`, at least one decade wide.
pub fn log_range(lo: f64, hi: f64) -> std::ops::Range<f64> {
    let lo = if lo.is_finite() && lo > 0.0 { lo } else { 0.1 };
    let hi = if hi.is_finite() && hi > lo { hi } else { lo };
    let lo_decade = lo.log10().floor();
    let hi_decade = hi.log10().ceil().max(lo_decade + 1.0);
    10f64.powf(lo_decade)..10f64.powf(hi_decade)
}

/// Writes an SVG document into `dir` and returns its path.
pub fn write(dir: &Path, name: &str, svg: &str) -> Result<PathBuf, ReportError> {
    write_file(dir, name, svg)
}

/// Draws `points` as one line in `policy`'s colour, labelled for the legend.
pub(crate) fn policy_line<'a, DB, X, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    policy: &str,
    points: Vec<(X::ValueType, Y::ValueType)>,
) -> Result<(), String>
where
    DB: DrawingBackend + 'a,
    DB::ErrorType: 'static,
    X: Ranged,
    Y: Ranged,
    X::ValueType: Clone + 'static,
    Y::ValueType: Clone + 'static,
{
    let color = policy_color(policy);
    chart
        .draw_series(LineSeries::new(points, color.stroke_width(2)))
        .map_err(|e| e.to_string())?
        .label(policy)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(3)));
    Ok(())
}

/// Draws the legend of `chart` in a framed white box at `position`.
pub(crate) fn draw_legend<'a, DB, CT>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
    font_size: u32,
) -> Result<(), String>
where
    DB: DrawingBackend + 'a,
    DB::ErrorType: 'static,
    CT: CoordTranslate,
{
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font((FONT, font_size))
        .draw()
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_compact() {
        assert_eq!(tick(0.0), "0");
        assert_eq!(tick(1000.0), "1000");
        assert_eq!(tick(2.5), "2.5");
        assert_eq!(tick(10.0), "10");
        assert_eq!(tick(0.125), "0.125");
        assert_eq!(tick(0.1), "0.1");
    }

    #[test]
    fn log_ranges_are_valid() {
        let r = log_range(0.0, 0.0);
        assert!(r.start > 0.0 && r.end > r.start);
        assert_eq!(log_range(5.0, 500.0), 1.0..1000.0);
        assert_eq!(log_range(15.0, 25.0), 10.0..100.0);
        assert_eq!(log_range(100.0, 100.0), 100.0..1000.0);
    }
}
