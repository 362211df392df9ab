//! The terminal table: one row per policy, columns aligned, plain text.
//!
//! ```text
//! policy     done  failed  TTFT mean  TTFT p50  TTFT p99  TPOT mean  LoRA hit  KV hit  invalid KV  TTFT vs fastlibra
//! fastlibra   812       0    45.2 ms   30.1 ms  310.0 ms    21.3 ms     96.1%   88.0%        1.2%              1.00x
//! ```

use super::json::Report;
use super::summary::PolicySummary;

const HEADER: [&str; 11] = [
    "policy",
    "done",
    "failed",
    "TTFT mean",
    "TTFT p50",
    "TTFT p99",
    "TPOT mean",
    "LoRA hit",
    "KV hit",
    "invalid KV",
    "TTFT vs fastlibra",
];

/// Renders the table for the policies in `order` (the order they ran); names not in the
/// report are skipped. The last column is mean TTFT ÷ fastlibra's ("-" when not comparable).
pub fn render(report: &Report, order: &[&str]) -> String {
    let mut rows: Vec<Vec<String>> = vec![HEADER.iter().map(|h| h.to_string()).collect()];
    for name in order {
        if let Some(summary) = report.policies.get(*name) {
            let ratio = report
                .comparison
                .get(*name)
                .and_then(|c| c.mean_ttft_vs_fastlibra);
            rows.push(row(name, summary, ratio));
        }
    }
    align(&rows)
}

fn row(name: &str, s: &PolicySummary, ratio: Option<f64>) -> Vec<String> {
    let ms = |v: f64| format!("{v:.1} ms");
    let over_http = s.http.is_some();
    let pct = |v: f64| {
        if over_http {
            "-".to_string()
        } else {
            format!("{:.1}%", v * 100.0)
        }
    };
    vec![
        name.to_string(),
        s.completed.to_string(),
        s.failed.to_string(),
        ms(s.ttft_ms.mean),
        ms(s.ttft_ms.p50),
        ms(s.ttft_ms.p99),
        ms(s.tpot_ms.mean),
        pct(s.hit_rate.lora),
        pct(s.hit_rate.kv),
        if s.invalid_kv_measured() {
            format!("{:.1}%", s.invalid_kv_fraction * 100.0)
        } else {
            "-".to_string()
        },
        ratio.map_or_else(|| "-".to_string(), |r| format!("{r:.2}x")),
    ]
}

/// Pads every cell to its column's width: the first column left-aligned, the others right.
fn align(rows: &[Vec<String>]) -> String {
    let columns = HEADER.len();
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in rows {
        let cells: Vec<String> = r
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(c, (cell, &w))| {
                if c == 0 {
                    format!("{cell:<w$}")
                } else {
                    format!("{cell:>w$}")
                }
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}
