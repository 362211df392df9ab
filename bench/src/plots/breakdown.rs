//! `ttft_breakdown.svg`: each policy's mean TTFT as a stacked bar of its parts: queueing, LoRA
//! cold start, KV cold start and prefill (the four add up to the mean TTFT).

use plotters::prelude::*;

use super::draw_legend;

use super::{FONT, HEIGHT, TTFT_BREAKDOWN, WIDTH, plot_error, tick};
use crate::report::{PolicySummary, ReportError};

/// The parts, bottom to top: label, color, mean in ms.
type Part = (&'static str, RGBColor, fn(&PolicySummary) -> f64);

/// The four parts of TTFT.
pub const PARTS: [Part; 4] = [
    ("queueing", RGBColor(0x7f, 0x7f, 0x7f), |s| s.queue_ms.mean),
    ("LoRA cold start", RGBColor(0x1f, 0x77, 0xb4), |s| {
        s.lora_cold_ms.mean
    }),
    ("KV cold start", RGBColor(0xd6, 0x27, 0x28), |s| {
        s.kv_cold_ms.mean
    }),
    ("prefill", RGBColor(0x2c, 0xa0, 0x2c), |s| s.prefill_ms.mean),
];

/// Draws a stacked bar per `(policy, summary)`, in the order given.
pub fn render(series: &[(&str, &PolicySummary)]) -> Result<String, ReportError> {
    let err = plot_error(TTFT_BREAKDOWN);
    let n = series.len().max(1) as i32;
    let total = |s: &PolicySummary| PARTS.iter().map(|(_, _, f)| f(s)).sum::<f64>();
    let top = series
        .iter()
        .map(|(_, s)| total(s))
        .fold(0.0, f64::max)
        .max(1e-3)
        * 1.15;
    let names: Vec<&str> = series.iter().map(|(p, _)| *p).collect();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let mut chart = ChartBuilder::on(&root)
            .caption("Where TTFT goes (mean per request)", (FONT, 24))
            .margin(20)
            .x_label_area_size(50)
            .y_label_area_size(80)
            .build_cartesian_2d((0..n - 1).into_segmented(), 0.0..top)
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(TRANSPARENT)
            .x_desc("policy")
            .y_desc("mean TTFT (ms)")
            .x_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => names
                    .get(usize::try_from(*i).unwrap_or(usize::MAX))
                    .map_or_else(String::new, |s| s.to_string()),
                _ => String::new(),
            })
            .y_label_formatter(&|v| tick(*v))
            .axis_desc_style((FONT, 18))
            .label_style((FONT, 15))
            .draw()
            .map_err(|e| err(&e))?;
        for (label, color, part) in PARTS {
            let bars: Vec<Rectangle<(SegmentValue<i32>, f64)>> = series
                .iter()
                .enumerate()
                .map(|(i, (_, s))| {
                    let below: f64 = PARTS
                        .iter()
                        .take_while(|(l, _, _)| *l != label)
                        .map(|(_, _, f)| f(s))
                        .sum();
                    let i = i as i32;
                    let mut bar = Rectangle::new(
                        [
                            (SegmentValue::Exact(i), below),
                            (SegmentValue::Exact(i + 1), below + part(s)),
                        ],
                        color.filled(),
                    );
                    bar.set_margin(0, 0, 40, 40);
                    bar
                })
                .collect();
            chart
                .draw_series(bars)
                .map_err(|e| err(&e))?
                .label(label)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 6), (x + 18, y + 6)], color.filled())
                });
        }
        draw_legend(&mut chart, SeriesLabelPosition::UpperLeft, 16).map_err(|e| err(&e))?;
        root.present().map_err(|e| err(&e))?;
    }
    Ok(svg)
}
