//! `hbm_use.svg`: HBM use over simulated time, one panel per policy, stacked as LoRA adapters
//! (bottom), valid KV (KV whose adapter is in HBM) and invalid KV (whose adapter is not), as a
//! percentage of the HBM pages the cache manages (HBM left after the model weights).

use plotters::prelude::*;

use super::{FONT, HBM_USE, WIDTH, plot_error, tick};
use crate::report::ReportError;
use crate::report::series::HbmPoint;

/// Height of one policy's panel, px.
const PANEL_HEIGHT: u32 = 300;

/// Height of the legend strip under the title, px.
const LEGEND_HEIGHT: u32 = 30;

/// Color of LoRA adapters.
pub const LORA: RGBColor = RGBColor(0x1f, 0x77, 0xb4);
/// Color of valid KV.
pub const KV_VALID: RGBColor = RGBColor(0x2c, 0xa0, 0x2c);
/// Color of invalid KV.
pub const KV_INVALID: RGBColor = RGBColor(0xd6, 0x27, 0x28);

/// Draws one panel per `(policy, HBM points)`.
pub fn render(series: &[(&str, Vec<HbmPoint>)], end_s: f64) -> Result<String, ReportError> {
    let err = plot_error(HBM_USE);
    let panels = series.len().max(1);
    let mut svg = String::new();
    {
        let height = PANEL_HEIGHT * panels as u32 + 50 + LEGEND_HEIGHT;
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let root = root
            .titled("HBM use over time", (FONT, 24))
            .map_err(|e| err(&e))?;
        let (key, root) = root.split_vertically(LEGEND_HEIGHT);
        legend(&key).map_err(|e| err(&e))?;
        let areas = root.split_evenly((panels, 1));
        for ((policy, points), area) in series.iter().zip(&areas) {
            panel(area, policy, points, end_s.max(1e-3)).map_err(|e| err(&e))?;
        }
        root.present().map_err(|e| err(&e))?;
    }
    Ok(svg)
}

/// A band of the stack: name, color, and the height of its top edge (a share).
type Layer = (&'static str, RGBColor, fn(&HbmPoint) -> f64);

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;

/// One legend for every panel, in a strip under the title (so it hides no data).
fn legend(area: &Area<'_>) -> Result<(), Box<dyn std::error::Error + 'static>> {
    let entries = [
        ("LoRA adapters", LORA),
        ("valid KV (adapter in HBM)", KV_VALID),
        ("invalid KV (adapter not in HBM)", KV_INVALID),
    ];
    let mut x = 110;
    for (label, color) in entries {
        area.draw(&Rectangle::new([(x, 8), (x + 18, 22)], color.filled()))
            .map_err(|e| e.to_string())?;
        area.draw(&Text::new(label, (x + 26, 7), (FONT, 16)))
            .map_err(|e| e.to_string())?;
        x += 40 + 9 * label.len() as i32;
    }
    Ok(())
}

fn panel(
    area: &Area<'_>,
    policy: &str,
    points: &[HbmPoint],
    end_s: f64,
) -> Result<(), Box<dyn std::error::Error + 'static>> {
    let mut chart = ChartBuilder::on(area)
        .caption(policy, (FONT, 18))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..end_s, 0.0..100.0)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("simulated time (s)")
        .y_desc("HBM cache pages (%)")
        .x_label_formatter(&|v| tick(*v))
        .y_label_formatter(&|v| tick(*v))
        .axis_desc_style((FONT, 15))
        .label_style((FONT, 13))
        .draw()
        .map_err(|e| e.to_string())?;
    // Stack from the top down so each band shows its own share.
    let layers: [Layer; 3] = [
        ("invalid KV", KV_INVALID, |p| {
            p.lora + p.kv_valid + p.kv_invalid
        }),
        ("valid KV", KV_VALID, |p| p.lora + p.kv_valid),
        ("LoRA adapters", LORA, |p| p.lora),
    ];
    for (_, color, top) in layers {
        let line: Vec<(f64, f64)> = points.iter().map(|p| (p.t_s, top(p) * 100.0)).collect();
        chart
            .draw_series(AreaSeries::new(line, 0.0, color.filled()).border_style(color))
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}
