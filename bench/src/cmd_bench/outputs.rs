//! Writes the report folder and prints the summary.
//!
//! ```text
//!   one point:  out/ report.json report.md <policy>.{ttft,tpot,e2e}.hgrm <policy>.ttft.hlog *.svg
//!               [<policy>.requests.csv with --requests-csv]
//!   a sweep:    out/ report.json report.md ttft_vs_rate.svg
//!               out/rate-<r>_loras-<n>/ report.md <policy>.*.hgrm <policy>.ttft.hlog *.svg
//! ```

use std::path::Path;

use fastlibra_bench::plots::{self, breakdown, cdf, hbm, over_time, rate};
use fastlibra_bench::report::markdown::{self, Layout};
use fastlibra_bench::report::series::{self, Interval};
use fastlibra_bench::report::{
    PeakRun, PeakSearch, Report, ReportError, RunInfo, SweepPoint, files, hgrm, hlog, requests_csv,
    table,
};

use super::BenchError;
use super::execute::{PointResult, rate_label};
use super::plan::{Output, Plan};

/// Writes every file and prints what `plan.output` asks for.
pub fn write(
    plan: &Plan,
    points: &[PointResult],
    peaks: Option<Vec<PeakRun>>,
) -> Result<(), BenchError> {
    let mut reports: Vec<Report> = points
        .iter()
        .map(|p| point_report(&plan.run, p, peaks.as_deref()))
        .collect();
    let Some(first) = reports.first().cloned() else {
        return Ok(());
    };
    let mut top = first;
    if let (Some(config), Some(runs)) = (plan.peak, peaks) {
        top.peak_search = Some(PeakSearch { config, runs });
    }
    let order = &plan.policies;
    if plan.is_sweep() {
        top.sweep = reports
            .iter()
            .map(|r| SweepPoint {
                rate: r.run.rate,
                loras: r.run.loras,
                policies: r.policies.clone(),
                comparison: r.comparison.clone(),
            })
            .collect();
        let dirs: Vec<String> = points.iter().map(|p| p.dir_name.clone()).collect();
        for (point, report) in points.iter().zip(reports.iter_mut()) {
            let dir = plan.out.join(&point.dir_name);
            files::prepare_dir(&dir)?;
            report.peak_search = top.peak_search.clone();
            write_point(&dir, point, report, order)?;
        }
        plots::write(&plan.out, plots::TTFT_VS_RATE, &rate_plot(plan, points)?)?;
        files::write_file(
            &plan.out,
            markdown::REPORT_MD,
            markdown::render(&top, order, &Layout::Sweep(&dirs)),
        )?;
    } else {
        write_point(&plan.out, &points[0], &top, order)?;
    }
    top.write(&plan.out)?;
    print(plan, &top, &reports)
}

/// The report of one point, with the peaks found at its adapter count.
fn point_report(run: &RunInfo, p: &PointResult, peaks: Option<&[PeakRun]>) -> Report {
    let run = RunInfo {
        rate: p.rate,
        loras: p.loras,
        ..run.clone()
    };
    let summaries = p.done.iter().map(|(policy, s)| {
        let mut summary = s.summary.clone();
        if let Some(peaks) = peaks {
            summary.peak_rps = peaks
                .iter()
                .find(|r| r.loras == p.loras && r.policy == *policy)
                .map(|r| r.peak_rps);
        }
        (policy.to_string(), summary)
    });
    Report::new(run, summaries)
}

/// A point's distribution files, interval logs, plots and `report.md`.
fn write_point(
    dir: &Path,
    point: &PointResult,
    report: &Report,
    order: &[&str],
) -> Result<(), ReportError> {
    let end_ns = point
        .done
        .iter()
        .map(|(_, s)| s.simulated_ns)
        .max()
        .unwrap_or(0);
    let length_ns = series::interval_ns(end_ns);
    let mut intervals: Vec<(&str, Vec<Interval>)> = Vec::new();
    for (policy, s) in &point.done {
        hgrm::write_all(dir, policy, s)?;
        if let Some(outcomes) = &s.outcomes {
            requests_csv::write(dir, policy, outcomes)?;
        }
        let iv = series::intervals(&s.ttft_at_ns, length_ns, s.simulated_ns);
        hlog::write_ttft(dir, policy, &iv)?;
        intervals.push((policy, iv));
    }
    let histograms: Vec<(&str, _)> = point.done.iter().map(|(p, s)| (*p, &s.ttft)).collect();
    plots::write(dir, plots::TTFT_CDF, &cdf::render(&histograms)?)?;
    let per_interval: Vec<(&str, &[Interval])> = intervals
        .iter()
        .map(|(p, iv)| (*p, iv.as_slice()))
        .collect();
    plots::write(
        dir,
        plots::TTFT_OVER_TIME,
        &over_time::render(&per_interval, length_ns as f64 / 1e9)?,
    )?;
    let hbm_series: Vec<(&str, _)> = point
        .done
        .iter()
        .map(|(p, s)| (*p, series::hbm_points(&s.timeline)))
        .collect();
    plots::write(
        dir,
        plots::HBM_USE,
        &hbm::render(&hbm_series, end_ns as f64 / 1e9)?,
    )?;
    let summaries: Vec<(&str, _)> = order
        .iter()
        .filter_map(|p| report.policies.get(*p).map(|s| (*p, s)))
        .collect();
    plots::write(dir, plots::TTFT_BREAKDOWN, &breakdown::render(&summaries)?)?;
    files::write_file(
        dir,
        markdown::REPORT_MD,
        markdown::render(report, order, &Layout::Single),
    )?;
    Ok(())
}

fn rate_plot(plan: &Plan, points: &[PointResult]) -> Result<String, ReportError> {
    let mut loras: Vec<u32> = points.iter().map(|p| p.loras).collect();
    loras.dedup();
    let rows: Vec<(u32, Vec<rate::Line<'_>>)> = loras
        .iter()
        .map(|&n| {
            let lines = plan
                .policies
                .iter()
                .map(|&policy| {
                    let line = points
                        .iter()
                        .filter(|p| p.loras == n)
                        .filter_map(|p| {
                            let s = &p.done.iter().find(|(q, _)| *q == policy)?.1.summary;
                            Some((p.rate, s.ttft_ms.mean, s.ttft_ms.p99))
                        })
                        .collect();
                    (policy, line)
                })
                .collect();
            (n, lines)
        })
        .collect();
    rate::render(&rows, plan.workload.rate_unit())
}

fn print(plan: &Plan, top: &Report, reports: &[Report]) -> Result<(), BenchError> {
    match plan.output {
        Output::Normal => {
            for r in reports {
                if plan.is_sweep() {
                    println!("{}, {} LoRAs:", rate_label(plan, r.run.rate), r.run.loras);
                }
                print!("{}", table::render(r, &plan.policies));
            }
            if let Some(search) = &top.peak_search {
                print!("{}", peak_table(plan, search));
            }
            if plan.cpu.is_some()
                && let Some(mib) = fastlibra_bench::rss::peak_rss_mib()
            {
                println!("peak RSS {mib:.0} MiB");
            }
            println!("report written to {}", plan.out.display());
        }
        Output::Quiet => println!("{}", plan.out.display()),
        Output::Json => print!("{}", top.to_json()?),
    }
    Ok(())
}

/// The peak table: per LoRA count, each policy's peak load and fastlibra's gain over it.
fn peak_table(plan: &Plan, search: &PeakSearch) -> String {
    let mut out = String::new();
    let mut counts: Vec<u32> = search.runs.iter().map(|r| r.loras).collect();
    counts.dedup();
    for loras in counts {
        let runs: Vec<&PeakRun> = search.runs.iter().filter(|r| r.loras == loras).collect();
        let fastlibra = runs
            .iter()
            .find(|r| r.policy == "fastlibra")
            .and_then(|r| r.peak_rps);
        out.push_str(&format!(
            "peak load ({loras} LoRAs; mean TTFT under {} ms, at most {} % failed):\n",
            plots::tick(search.config.threshold_ms),
            plots::tick(search.config.max_failed_fraction * 100.0)
        ));
        out.push_str(&format!(
            "{:<14} {:>22}  {}\n",
            "policy", "peak", "fastlibra's gain"
        ));
        for run in runs {
            let peak = run.peak_rps.map_or_else(
                || "none found".to_string(),
                |p| {
                    let bound = if run.bracketed { "" } else { "≥ " };
                    format!("{bound}{}", rate_label(plan, p))
                },
            );
            let gain = match (fastlibra, run.peak_rps) {
                (Some(f), Some(p)) if run.policy != "fastlibra" => {
                    format!("{:+.1} %", (f / p - 1.0) * 100.0)
                }
                _ => String::new(),
            };
            out.push_str(&format!("{:<14} {:>22}  {gain}\n", run.policy, peak));
        }
    }
    out
}
