//! `report.md`: a short, human-readable front page of the report folder. It says what ran,
//! shows a table per point and embeds the plots, and links every other file. Like
//! `report.json` it holds nothing machine- or time-dependent.

use std::fmt::Write as _;

use super::json::{Report, RunInfo};
use super::summary::PolicySummary;
use crate::plots;

/// File name of the Markdown report.
pub const REPORT_MD: &str = "report.md";

/// What the folder holds beside the report.
#[derive(Clone, Debug)]
pub enum Layout<'a> {
    /// One point: files and plots in the same folder.
    Single,
    /// A sweep: one sub-folder per point, named here in `report.sweep` order.
    Sweep(&'a [String]),
}

/// Renders `report.md` for `report`, listing policies in `order` (the order they ran).
pub fn render(report: &Report, order: &[&str], layout: &Layout<'_>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# fastlibra bench report\n");
    let _ = writeln!(
        out,
        "{}\n",
        describe(&report.run, matches!(layout, Layout::Sweep(_)))
    );
    match layout {
        Layout::Single => single(&mut out, report, order),
        Layout::Sweep(dirs) => sweep(&mut out, report, order, dirs),
    }
    out
}

/// The unit of a workload's arrival rate.
pub fn rate_unit(workload: &str) -> &'static str {
    match workload {
        "dgg" => "queries/s",
        "translation" => "requests/s",
        _ => "sessions/s",
    }
}

fn describe(run: &RunInfo, sweep: bool) -> String {
    let point = if sweep {
        "a grid of rates and LoRA counts (below)".to_string()
    } else {
        format!(
            "{} {}, {} LoRA adapters",
            tick(run.rate),
            rate_unit(&run.workload),
            run.loras
        )
    };
    let how = if run.backend == "sim" {
        "every figure here is **simulated** by the deterministic discrete-event simulator, \
         not measured on hardware"
    } else if run.backend == "http" {
        "every figure here is **measured over HTTP** by an open-loop client of the server named \
         under *HTTP* below, each latency from the request's scheduled send time; cache hit \
         rates, the TTFT breakdown and HBM use are not visible from outside a server and are \
         left out"
    } else {
        "every figure here is **measured** in wall-clock time by the real runtime on the \
         device named under *Real runtime* below"
    };
    format!(
        "Workload `{}` on `{}` / `{}`, seed {}, {point}, {} s of arrivals. Backend `{}`: \
         {how}. `report.json` holds every figure; `docs/report.md` explains each field and \
         `docs/benchmarks.md` each workload, policy and metric.",
        run.workload,
        run.model,
        run.gpu,
        run.seed,
        tick(run.duration_s),
        run.backend
    )
}

fn tick(v: f64) -> String {
    plots::tick(v)
}

fn single(out: &mut String, report: &Report, order: &[&str]) {
    table(out, report, order);
    peak_section(out, report);
    runtime_section(out, report, order);
    super::http_md::section(out, report, order);
    let _ = writeln!(out, "\n## Plots\n");
    for (title, file) in [
        ("TTFT distribution", plots::TTFT_CDF),
        ("TTFT over time", plots::TTFT_OVER_TIME),
        ("HBM use over time", plots::HBM_USE),
        ("TTFT breakdown", plots::TTFT_BREAKDOWN),
    ] {
        let _ = writeln!(out, "### {title}\n\n![{title}]({file})\n");
    }
    let _ = writeln!(out, "## Files\n");
    let _ = writeln!(
        out,
        "- [`report.json`](report.json): every figure of every policy"
    );
    for policy in order.iter().filter(|p| report.policies.contains_key(**p)) {
        let _ = write!(out, "- `{policy}`:");
        for metric in ["ttft", "tpot", "e2e"] {
            let name = super::hgrm::file_name(policy, metric);
            let _ = write!(out, " [`{name}`]({name})");
        }
        let log = super::hlog::ttft_file_name(policy);
        let _ = writeln!(
            out,
            " (percentile distributions, ms); [`{log}`]({log}) (TTFT interval log, µs)"
        );
    }
}

/// The real backends' own figures: the device, `--verify`, the NVMe tier, hits vs misses.
fn runtime_section(out: &mut String, report: &Report, order: &[&str]) {
    let rows: Vec<_> = order
        .iter()
        .filter_map(|p| report.policies.get(*p).map(|s| (p, s)))
        .filter_map(|(p, s)| s.runtime.as_ref().map(|r| (p, s, r)))
        .collect();
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n## Real runtime\n");
    let _ = writeln!(
        out,
        "| policy | device | shards | verify checked / mismatches | NVMe pages written / read | checksum failures | mean TTFT hits / misses (ms) |"
    );
    let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|");
    let ms = |v: Option<f64>| v.map_or_else(|| "–".to_string(), |v| format!("{v:.1}"));
    for (policy, summary, r) in &rows {
        let device = match &r.fallback {
            Some(why) => format!("{} (fallback: {why})", r.device),
            None => r.device.clone(),
        };
        let verify = summary.verify.as_ref().map_or_else(
            || "off".to_string(),
            |v| format!("{} / {}", v.checked, v.mismatches),
        );
        let _ = writeln!(
            out,
            "| {policy} | {device} | {} | {verify} | {} / {} | {} | {} / {} |",
            r.shards,
            r.nvme_pages_written,
            r.nvme_pages_read,
            r.checksum_failures,
            ms(r.hit_ttft_ms_mean),
            ms(r.miss_ttft_ms_mean)
        );
    }
}

fn table(out: &mut String, report: &Report, order: &[&str]) {
    let peak = report.policies.values().any(|s| s.peak_rps.is_some());
    let _ = write!(
        out,
        "| policy | completed | failed | mean TTFT (ms) | P50 TTFT (ms) | P99 TTFT (ms) | mean TPOT (ms) | LoRA hit | KV hit | invalid KV | mean TTFT vs fastlibra |"
    );
    let _ = writeln!(
        out,
        "{}",
        if peak {
            format!(" peak ({}) |", rate_unit(&report.run.workload))
        } else {
            String::new()
        }
    );
    let _ = writeln!(
        out,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|{}",
        if peak { "---:|" } else { "" }
    );
    for policy in order {
        let Some(s) = report.policies.get(*policy) else {
            continue;
        };
        let ratio = report
            .comparison
            .get(*policy)
            .and_then(|c| c.mean_ttft_vs_fastlibra)
            .map_or_else(|| "-".to_string(), |r| format!("{r:.2}×"));
        let _ = write!(out, "{}", row(policy, s, &ratio));
        if peak {
            let p = s
                .peak_rps
                .flatten()
                .map_or_else(|| "none found".into(), |r| format!("{r:.3}"));
            let _ = write!(out, " {p} |");
        }
        let _ = writeln!(out);
    }
}

fn row(policy: &str, s: &PolicySummary, ratio: &str) -> String {
    let over_http = s.http.is_some();
    let pct = |v: f64| {
        if over_http {
            "–".to_string()
        } else {
            format!("{:.1} %", v * 100.0)
        }
    };
    let invalid = if s.invalid_kv_measured() {
        format!("{:.1} %", s.invalid_kv_fraction * 100.0)
    } else {
        "–".to_string()
    };
    format!(
        "| {policy} | {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {} | {invalid} | {ratio} |",
        s.completed,
        s.failed,
        s.ttft_ms.mean,
        s.ttft_ms.p50,
        s.ttft_ms.p99,
        s.tpot_ms.mean,
        pct(s.hit_rate.lora),
        pct(s.hit_rate.kv),
    )
}

fn sweep(out: &mut String, report: &Report, order: &[&str], dirs: &[String]) {
    let _ = writeln!(
        out,
        "## TTFT against load\n\n![TTFT against load]({})\n",
        plots::TTFT_VS_RATE
    );
    let _ = writeln!(out, "## Points\n");
    let _ = writeln!(
        out,
        "| LoRAs | rate (arrivals/s) | policy | completed | failed | mean TTFT (ms) | P99 TTFT (ms) | details |"
    );
    let _ = writeln!(out, "|---:|---:|---|---:|---:|---:|---:|---|");
    for (point, dir) in report.sweep.iter().zip(dirs) {
        for policy in order {
            if let Some(s) = point.policies.get(*policy) {
                let _ = writeln!(
                    out,
                    "| {} | {} | {policy} | {} | {} | {:.1} | {:.1} | [{dir}]({dir}/report.md) |",
                    point.loras,
                    tick(point.rate),
                    s.completed,
                    s.failed,
                    s.ttft_ms.mean,
                    s.ttft_ms.p99,
                );
            }
        }
    }
    peak_section(out, report);
    let _ = writeln!(
        out,
        "\nEach point's folder holds its own `report.md`, plots, `.hgrm` and `.hlog` files."
    );
}

fn peak_section(out: &mut String, report: &Report) {
    if let Some(search) = &report.peak_search {
        let _ = writeln!(
            out,
            "\n## Peak load\n\nHighest rate ({}) whose mean TTFT stays under {} ms with at most {} % of requests failed, found by bracketing and bisection to {} %:\n",
            rate_unit(&report.run.workload),
            tick(search.config.threshold_ms),
            tick(search.config.max_failed_fraction * 100.0),
            tick(search.config.rel_tolerance * 100.0)
        );
        peak_table(out, report);
    }
}

/// The peak rates found, one row per LoRA count and policy.
pub fn peak_table(out: &mut String, report: &Report) {
    let Some(search) = &report.peak_search else {
        return;
    };
    let _ = writeln!(
        out,
        "| LoRAs | policy | peak ({}) | probes |",
        rate_unit(&report.run.workload)
    );
    let _ = writeln!(out, "|---:|---|---:|---:|");
    for run in &search.runs {
        let peak = run.peak_rps.map_or_else(
            || "none found".to_string(),
            |r| {
                format!(
                    "{r:.3}{}",
                    if run.bracketed { "" } else { " (lower bound)" }
                )
            },
        );
        let _ = writeln!(
            out,
            "| {} | {} | {peak} | {} |",
            run.loras,
            run.policy,
            run.probes.len()
        );
    }
}
