//! `ttft_over_time.svg`: mean TTFT of the requests whose first token came in each interval of
//! simulated time, per policy, on a log y-axis (policies can differ by orders of magnitude).

use plotters::prelude::*;

use super::{draw_legend, policy_line};

use super::{FONT, HEIGHT, TTFT_OVER_TIME, WIDTH, log_range, plot_error, tick};
use crate::report::ReportError;
use crate::report::series::Interval;

/// `(interval midpoint s, mean TTFT ms)` for every non-empty interval.
pub fn points(intervals: &[Interval]) -> Vec<(f64, f64)> {
    intervals
        .iter()
        .filter(|i| !i.histogram.is_empty())
        .map(|i| {
            let mid_s = (i.start_ns as f64 + i.length_ns as f64 / 2.0) / 1e9;
            (mid_s, (i.histogram.mean() / 1000.0).max(0.001))
        })
        .collect()
}

/// Draws the mean TTFT per interval of every `(policy, intervals)`; `interval_s` names the
/// interval length in the axis label.
pub fn render(series: &[(&str, &[Interval])], interval_s: f64) -> Result<String, ReportError> {
    let err = plot_error(TTFT_OVER_TIME);
    let curves: Vec<(&str, Vec<(f64, f64)>)> =
        series.iter().map(|(p, iv)| (*p, points(iv))).collect();
    let all = curves.iter().flat_map(|(_, c)| c.iter());
    let (lo, hi) = all.clone().fold((f64::INFINITY, 0.0f64), |(lo, hi), p| {
        (lo.min(p.1), hi.max(p.1))
    });
    let t_max = series
        .iter()
        .flat_map(|(_, iv)| iv.last())
        .map(|i| (i.start_ns + i.length_ns) as f64 / 1e9)
        .fold(1.0, f64::max);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let mut chart = ChartBuilder::on(&root)
            .caption("TTFT over time", (FONT, 24))
            .margin(20)
            .x_label_area_size(55)
            .y_label_area_size(80)
            .build_cartesian_2d(0.0..t_max, log_range(lo, hi).log_scale())
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_desc(format!(
                "simulated time (s); one point per {} s interval",
                tick(interval_s)
            ))
            .y_desc("mean TTFT (ms, log scale)")
            .x_label_formatter(&|v| tick(*v))
            .y_label_formatter(&|v| tick(*v))
            .axis_desc_style((FONT, 18))
            .label_style((FONT, 14))
            .draw()
            .map_err(|e| err(&e))?;
        for (policy, curve) in &curves {
            policy_line(&mut chart, policy, curve.clone()).map_err(|e| err(&e))?;
        }
        if !curves.is_empty() {
            draw_legend(&mut chart, SeriesLabelPosition::UpperLeft, 16).map_err(|e| err(&e))?;
        }
        root.present().map_err(|e| err(&e))?;
    }
    Ok(svg)
}
