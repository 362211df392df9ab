//! Runs a [`Plan`]: the peak searches, then every grid point × policy, then the outputs.

use fastlibra_bench::peak::{Measurement, PeakConfig, find_peak_from};
use fastlibra_bench::plots;
use fastlibra_bench::progress::Progress;
use fastlibra_bench::report::{
    PeakRun, RuntimeFigures, Summarized, VerifyCounts, files, keep_outcomes, summarize,
};
use fastlibra_kernels::cuda::CudaDevice;
use fastlibra_runtime::real::device::DeviceChoice;
use fastlibra_runtime::real::{RealError, RunOptions, run_real};
use fastlibra_runtime::sim::{SimOptions, SimResult, run_policy};
use fastlibra_runtime::workload::Workload;

use super::BenchError;
use super::outputs;
use super::plan::{Output, Plan};

/// One grid point's results.
pub struct PointResult {
    /// Arrival rate.
    pub rate: f64,
    /// Adapters in the workload.
    pub loras: u32,
    /// Sub-folder of a sweep (`rate-2_loras-100`).
    pub dir_name: String,
    /// Each policy's summary, in run order.
    pub done: Vec<(&'static str, Summarized)>,
}

/// Runs the plan and writes the report.
pub fn run_plan(plan: &Plan) -> Result<(), BenchError> {
    // Every point's workload first: a bad --graphs folder or an empty point fails before any
    // simulation runs or anything is written.
    let mut workloads: Vec<(f64, u32, Workload)> = Vec::new();
    for &loras in &plan.loras {
        for &rate in &plan.rates {
            let w = plan
                .workload
                .generate(rate, loras)?
                .ok_or_else(|| BenchError::NoRequests(no_request(plan, rate)))?;
            workloads.push((rate, w.adapters.len() as u32, w));
        }
    }
    check_gpu(plan)?;
    files::prepare_dir(&plan.out)?;
    let progress = Progress::new(plan.output == Output::Normal);
    let peaks = match &plan.peak {
        Some(config) => Some(find_peaks(plan, config, &progress, &[])?),
        None => None,
    };
    let mut points: Vec<PointResult> = Vec::with_capacity(workloads.len());
    for (rate, loras, workload) in &workloads {
        points.push(run_point(plan, &progress, *rate, *loras, workload)?);
    }
    outputs::write(plan, &points, peaks)
}

/// Every policy at one grid point.
pub fn run_point(
    plan: &Plan,
    progress: &Progress,
    rate: f64,
    loras: u32,
    workload: &Workload,
) -> Result<PointResult, BenchError> {
    let mut done = Vec::with_capacity(plan.policies.len());
    for &policy in &plan.policies {
        let label = format!("{policy} @ {}", rate_label(plan, rate));
        let summarized = run_one(plan, progress, workload, policy, label)?;
        if plan.output == Output::Normal {
            progress.println(&progress_line(policy, rate, plan, &summarized));
        }
        done.push((policy, summarized));
    }
    Ok(PointResult {
        rate,
        loras,
        dir_name: format!("rate-{}_loras-{loras}", plots::tick(rate)),
        done,
    })
}

/// `--backend cuda` without `--fallback-cpu` on a machine with no usable GPU: the error, before
/// anything is written.
fn check_gpu(plan: &Plan) -> Result<(), BenchError> {
    let Some(RunOptions {
        device: DeviceChoice::Cuda { ordinal, .. },
        cuda_fallback: false,
        ..
    }) = &plan.cpu
    else {
        return Ok(());
    };
    match CudaDevice::open(*ordinal) {
        Ok(_) => Ok(()),
        Err(e) => Err(BenchError::Gpu {
            hint: if e.is_unavailable() {
                " (add --fallback-cpu to run on the emulated device instead)"
            } else {
                ""
            },
            source: Box::new(e),
        }),
    }
}

fn no_request(plan: &Plan, rate: f64) -> String {
    format!(
        "no request arrives in {} s at {}",
        plan.run.duration_s,
        rate_label(plan, rate)
    )
}

/// `2/s`-style label with the workload's unit.
pub fn rate_label(plan: &Plan, rate: f64) -> String {
    format!("{} {}", plots::tick(rate), plan.workload.rate_unit())
}

/// One policy on one workload, on the plan's backend, summarized.
fn run_one(
    plan: &Plan,
    progress: &Progress,
    workload: &Workload,
    policy: &str,
    label: String,
) -> Result<Summarized, BenchError> {
    let Some(cpu) = &plan.cpu else {
        let result = simulate(plan, progress, workload, policy, label)?;
        let mut summarized = summarize(&result);
        keep_outcomes(&mut summarized, result, plan.requests_csv);
        return Ok(summarized);
    };
    let bar = progress.start(label);
    let options = RunOptions {
        progress: bar.callback(),
        ..cpu.clone()
    };
    let run = run_real(workload, policy, &options).map_err(|source| BenchError::Real {
        policy: policy.to_string(),
        backend: plan.run.backend.clone(),
        hint: match &source {
            RealError::Cuda(e) if e.is_unavailable() => {
                " (add --fallback-cpu to run on the emulated device instead)"
            }
            _ => "",
        },
        source: Box::new(source),
    });
    bar.finish();
    let run = run?;
    if let Some(why) = &run.fallback
        && plan.output != Output::Json
    {
        progress.println(&format!(
            "warning: {policy}: no usable GPU ({why}); ran on the emulated device (--fallback-cpu)"
        ));
    }
    let mut summarized = summarize(&run.result);
    if cpu.verify {
        summarized.summary.verify = Some(VerifyCounts {
            checked: run.verify.checked,
            mismatches: run.verify.mismatches,
        });
    }
    let mean_ttft_ms = |hit: bool| {
        let ttfts: Vec<f64> = run
            .result
            .outcomes
            .iter()
            .filter(|o| (o.lora_hit && o.kv_hit_blocks > 0) == hit)
            .filter_map(|o| o.ttft_ns())
            .map(|t| t as f64 / 1e6)
            .collect();
        (!ttfts.is_empty()).then(|| ttfts.iter().sum::<f64>() / ttfts.len() as f64)
    };
    summarized.summary.runtime = Some(RuntimeFigures {
        shards: run.per_shard_requests.len() as u32,
        per_shard_requests: run.per_shard_requests.clone(),
        per_shard_engine_call_ms_max: run
            .per_shard_engine_call_ns_max
            .iter()
            .map(|&ns| ns as f64 / 1e6)
            .collect(),
        nvme_pages_written: run.io.pages_written,
        nvme_pages_read: run.io.pages_read,
        nvme_write_errors: run.io.write_errors,
        nvme_read_errors: run.io.read_errors,
        checksum_failures: run.io.checksum_failures,
        nodes_lost: run.result.stats.nodes_lost,
        reloads: run.reloads,
        hit_ttft_ms_mean: mean_ttft_ms(true),
        miss_ttft_ms_mean: mean_ttft_ms(false),
        device: run.device.clone(),
        fallback: run.fallback.clone(),
        peak_rss_mib: fastlibra_bench::rss::peak_rss_mib(),
    });
    keep_outcomes(&mut summarized, run.result, plan.requests_csv);
    Ok(summarized)
}

/// One simulation with a progress bar.
fn simulate(
    plan: &Plan,
    progress: &Progress,
    workload: &Workload,
    policy: &str,
    label: String,
) -> Result<SimResult, BenchError> {
    let bar = progress.start(label);
    let options = SimOptions {
        progress: bar.callback(),
        ..plan.options.clone()
    };
    let result = run_policy(workload, policy, &options).map_err(|source| BenchError::Sim {
        policy: policy.to_string(),
        source,
    });
    bar.finish();
    result
}

/// Searches each policy's peak rate at each adapter count, starting from the first rate, or
/// from the points of `known` (a sweep already run) at that count.
pub fn find_peaks(
    plan: &Plan,
    config: &PeakConfig,
    progress: &Progress,
    known: &[PointResult],
) -> Result<Vec<PeakRun>, BenchError> {
    let mut runs = Vec::new();
    for &loras in &plan.loras {
        for &policy in &plan.policies {
            let mut adapters = loras;
            let mut probe_no = 0;
            let seen: Vec<(f64, Measurement)> = known
                .iter()
                .filter_map(|p| {
                    adapters = p.loras;
                    let s = &p.done.iter().find(|(q, _)| *q == policy)?.1;
                    Some((p.rate, measure_summary(s)?))
                })
                .collect();
            let start = plan.rates[0];
            let outcome = find_peak_from(config, start, &seen, |rate| -> Result<_, BenchError> {
                probe_no += 1;
                let Some(workload) = plan.workload.generate(rate, loras)? else {
                    return Ok(None);
                };
                adapters = workload.adapters.len() as u32;
                let label = format!(
                    "find-peak {policy}: probe {probe_no} @ {}",
                    rate_label(plan, rate)
                );
                let started = std::time::Instant::now();
                let result = simulate(plan, progress, &workload, policy, label)?;
                let m = measure(&result);
                if plan.output == Output::Normal {
                    progress.println(&probe_line(plan, policy, rate, m.as_ref(), config, started));
                }
                Ok(m)
            })?;
            if plan.output == Output::Normal {
                let peak = outcome
                    .peak_rps
                    .map_or_else(|| "none found".to_string(), |r| rate_label(plan, r));
                progress.println(&format!(
                    "find-peak {policy} ({adapters} LoRAs): peak {peak} after {} probes",
                    outcome.probes.len()
                ));
            }
            runs.push(PeakRun {
                loras: adapters,
                policy: policy.to_string(),
                peak_rps: outcome.peak_rps,
                bracketed: outcome.bracketed,
                probes: outcome.probes,
            });
        }
    }
    Ok(runs)
}

fn probe_line(
    plan: &Plan,
    policy: &str,
    rate: f64,
    m: Option<&Measurement>,
    config: &PeakConfig,
    started: std::time::Instant,
) -> String {
    let what = m.map_or_else(
        || "no request".to_string(),
        |m| {
            let below = m.mean_ttft_ms < config.threshold_ms
                && m.failed_fraction <= config.max_failed_fraction;
            format!(
                "mean TTFT {:.1} ms, {:.1} % failed: {}",
                m.mean_ttft_ms,
                m.failed_fraction * 100.0,
                if below { "below" } else { "above" }
            )
        },
    );
    format!(
        "  probe {policy} @ {}: {what} ({:.1} s)",
        rate_label(plan, rate),
        started.elapsed().as_secs_f64()
    )
}

/// Mean TTFT and failed share of a summarized run; `None` when it had no request.
pub fn measure_summary(s: &Summarized) -> Option<Measurement> {
    let s = &s.summary;
    if s.requests == 0 {
        return None;
    }
    Some(Measurement {
        mean_ttft_ms: if s.ttft_ms.count > 0 {
            s.ttft_ms.mean
        } else {
            f64::INFINITY
        },
        failed_fraction: s.failed as f64 / s.requests as f64,
    })
}

/// Mean TTFT and failed share of a run; `None` when it had no request.
fn measure(result: &SimResult) -> Option<Measurement> {
    let requests = result.outcomes.len();
    if requests == 0 {
        return None;
    }
    Some(Measurement {
        mean_ttft_ms: result.mean_ttft_ns() / 1e6,
        failed_fraction: result.failed() as f64 / requests as f64,
    })
}

fn progress_line(policy: &str, rate: f64, plan: &Plan, s: &Summarized) -> String {
    let s = &s.summary;
    format!(
        "{policy} @ {}: {}/{} completed, {} failed, mean TTFT {:.1} ms, P99 TTFT {:.1} ms, {:.1} s {}",
        rate_label(plan, rate),
        s.completed,
        s.requests,
        s.failed,
        s.ttft_ms.mean,
        s.ttft_ms.p99,
        s.simulated_s,
        if plan.cpu.is_some() {
            "wall-clock"
        } else {
            "simulated"
        }
    )
}
