//! The overview, what `fastlibra bench` runs by default: where the policies part.
//!
//! ```text
//!   rate = step, 2·step, …   every policy at each rate (a table per rate)
//!        └─ stop after the first rate where a baseline's mean TTFT passes the threshold
//!           (or more than 1 % of its requests fail), at most OVERVIEW_MAX_POINTS rates
//!   per policy: peak search seeded with the sweep's points (bisection from their bracket)
//!   outputs: the sweep's folders, ttft_vs_rate.svg, report.json with `sweep` and
//!            `peak_search`, and the peak table
//! ```

use fastlibra_bench::peak::PeakConfig;
use fastlibra_bench::progress::Progress;
use fastlibra_bench::report::files;

use super::BenchError;
use super::execute::{PointResult, find_peaks, measure_summary, rate_label, run_point};
use super::outputs;
use super::plan::{OVERVIEW_MAX_POINTS, Output, Overview, Plan};

/// Runs the overview of `plan` and writes its report.
pub fn run(plan: &Plan, overview: Overview) -> Result<(), BenchError> {
    let config = plan.peak.unwrap_or_default();
    let loras = plan.loras[0];
    let first = workload_at(plan, overview.step, loras)?;
    files::prepare_dir(&plan.out)?;
    let progress = Progress::new(plan.output == Output::Normal);
    let mut points: Vec<PointResult> = Vec::with_capacity(OVERVIEW_MAX_POINTS);
    let mut workload = Some(first);
    for k in 1..=OVERVIEW_MAX_POINTS {
        let rate = overview.step * k as f64;
        let w = match workload.take() {
            Some(w) => w,
            None => workload_at(plan, rate, loras)?,
        };
        let point = run_point(plan, &progress, rate, w.adapters.len() as u32, &w)?;
        let past = weakest_passed(plan, &point, &config);
        points.push(point);
        if past {
            break;
        }
    }
    let peaks = find_peaks(plan, &config, &progress, &points)?;
    outputs::write(plan, &points, Some(peaks))
}

fn workload_at(
    plan: &Plan,
    rate: f64,
    loras: u32,
) -> Result<fastlibra_runtime::workload::Workload, BenchError> {
    plan.workload.generate(rate, loras)?.ok_or_else(|| {
        BenchError::NoRequests(format!(
            "no request arrives in {} s at {}",
            plan.run.duration_s,
            rate_label(plan, rate)
        ))
    })
}

/// Whether a baseline (a policy outside the fastlibra family; any policy when none is
/// listed) is above the threshold at this point.
fn weakest_passed(plan: &Plan, point: &PointResult, config: &PeakConfig) -> bool {
    let is_baseline = |p: &str| !p.starts_with("fastlibra");
    let any_baseline = plan.policies.iter().any(|p| is_baseline(p));
    point
        .done
        .iter()
        .filter(|(p, _)| !any_baseline || is_baseline(p))
        .any(|(_, s)| measure_summary(s).is_none_or(|m| !config.is_below(&m)))
}
