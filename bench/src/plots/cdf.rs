//! `ttft_cdf.svg`: the share of requests whose TTFT is at most x, per policy, x on a log scale.

use hdrhistogram::Histogram;
use plotters::prelude::*;

use super::{draw_legend, policy_line};

use super::{FONT, HEIGHT, TTFT_CDF, WIDTH, log_range, plot_error, tick};
use crate::report::ReportError;

/// Most points drawn per policy.
const MAX_POINTS: usize = 600;

/// The CDF points `(TTFT ms, share ≤ it)` of a histogram of µs, thinned to [`MAX_POINTS`].
pub fn points(ttft_us: &Histogram<u64>) -> Vec<(f64, f64)> {
    let all: Vec<(f64, f64)> = ttft_us
        .iter_recorded()
        .map(|v| {
            let ms = (v.value_iterated_to() as f64 / 1000.0).max(0.001);
            (ms, v.quantile_iterated_to())
        })
        .collect();
    let step = all.len().div_ceil(MAX_POINTS).max(1);
    let mut thinned: Vec<(f64, f64)> = all.iter().step_by(step).copied().collect();
    if let Some(&last) = all.last()
        && thinned.last() != Some(&last)
    {
        thinned.push(last);
    }
    thinned
}

/// Draws the CDF of every `(policy, TTFT histogram in µs)`.
pub fn render(series: &[(&str, &Histogram<u64>)]) -> Result<String, ReportError> {
    let err = plot_error(TTFT_CDF);
    let curves: Vec<(&str, Vec<(f64, f64)>)> =
        series.iter().map(|(p, h)| (*p, points(h))).collect();
    let lo = curves
        .iter()
        .flat_map(|(_, c)| c.first().map(|p| p.0))
        .fold(f64::INFINITY, f64::min);
    let hi = curves
        .iter()
        .flat_map(|(_, c)| c.last().map(|p| p.0))
        .fold(0.0, f64::max);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let mut chart = ChartBuilder::on(&root)
            .caption("TTFT distribution (CDF)", (FONT, 24))
            .margin(20)
            .x_label_area_size(55)
            .y_label_area_size(70)
            .build_cartesian_2d(log_range(lo, hi).log_scale(), 0.0..1.0)
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_desc("TTFT (ms, log scale)")
            .y_desc("fraction of requests with TTFT ≤ x")
            .x_label_formatter(&|v| tick(*v))
            .y_label_formatter(&|v| format!("{v:.1}"))
            .axis_desc_style((FONT, 18))
            .label_style((FONT, 14))
            .draw()
            .map_err(|e| err(&e))?;
        for (policy, curve) in &curves {
            policy_line(&mut chart, policy, curve.clone()).map_err(|e| err(&e))?;
        }
        if !curves.is_empty() {
            draw_legend(&mut chart, SeriesLabelPosition::LowerRight, 16).map_err(|e| err(&e))?;
        }
        root.present().map_err(|e| err(&e))?;
    }
    Ok(svg)
}
