//! `ttft_vs_rate.svg`: mean (left) and P99 (right) TTFT against arrival rate, one line per
//! policy, one row of panels per LoRA count (the shape of the FASTLIBRA paper's Fig. 11). The
//! y-axes are logarithmic: past a policy's peak load its TTFT grows by orders of magnitude.

use plotters::prelude::*;

use super::{draw_legend, policy_line};

use super::{FONT, TTFT_VS_RATE, WIDTH, log_range, plot_error, policy_color, tick};
use crate::report::ReportError;

/// Height of one row of panels, px.
const ROW_HEIGHT: u32 = 420;

/// One policy's line: `(rate, mean TTFT ms, P99 TTFT ms)` per rate, rates ascending.
pub type Line<'a> = (&'a str, Vec<(f64, f64, f64)>);

/// Draws a row of two panels per `(LoRA count, lines)`; `unit` names the rate's unit.
pub fn render(rows: &[(u32, Vec<Line<'_>>)], unit: &str) -> Result<String, ReportError> {
    let err = plot_error(TTFT_VS_RATE);
    let mut svg = String::new();
    {
        let height = ROW_HEIGHT * rows.len().max(1) as u32 + 50;
        let root = SVGBackend::with_string(&mut svg, (WIDTH * 3 / 2, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let root = root
            .titled("TTFT against load", (FONT, 24))
            .map_err(|e| err(&e))?;
        let areas = root.split_evenly((rows.len().max(1), 2));
        for (r, (loras, lines)) in rows.iter().enumerate() {
            for (c, (stat, pick)) in [("mean", 1usize), ("P99", 2)].iter().enumerate() {
                let title = format!("{stat} TTFT, {loras} LoRAs");
                panel(&areas[r * 2 + c], &title, lines, *pick, unit).map_err(|e| err(&e))?;
            }
        }
        root.present().map_err(|e| err(&e))?;
    }
    Ok(svg)
}

fn panel(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    title: &str,
    lines: &[Line<'_>],
    pick: usize,
    unit: &str,
) -> Result<(), Box<dyn std::error::Error + 'static>> {
    let value = |p: &(f64, f64, f64)| if pick == 1 { p.1 } else { p.2 }.max(0.001);
    let points = lines.iter().flat_map(|(_, l)| l.iter());
    let (x_max, lo, hi) = points.fold((0.0f64, f64::INFINITY, 0.0f64), |(x, lo, hi), p| {
        (x.max(p.0), lo.min(value(p)), hi.max(value(p)))
    });
    let mut chart = ChartBuilder::on(area)
        .caption(title, (FONT, 18))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(75)
        .build_cartesian_2d(0.0..(x_max * 1.05).max(1e-3), log_range(lo, hi).log_scale())
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc(format!("arrival rate ({unit})"))
        .y_desc("TTFT (ms, log scale)")
        .x_label_formatter(&|v| tick(*v))
        .y_label_formatter(&|v| tick(*v))
        .axis_desc_style((FONT, 15))
        .label_style((FONT, 13))
        .draw()
        .map_err(|e| e.to_string())?;
    for (policy, line) in lines {
        let color = policy_color(policy);
        let pts: Vec<(f64, f64)> = line.iter().map(|p| (p.0, value(p))).collect();
        policy_line(&mut chart, policy, pts.clone())?;
        chart
            .draw_series(pts.into_iter().map(|p| Circle::new(p, 4, color.filled())))
            .map_err(|e| e.to_string())?;
    }
    draw_legend(&mut chart, SeriesLabelPosition::UpperLeft, 14)?;
    Ok(())
}
