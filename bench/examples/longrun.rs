//! The long-run benchmark: does the engine's cost per request stay flat as a run goes on?
//!
//! For each workload (chatbot at 16 sessions/s, DGG at its default 10 queries/s; 100 LoRAs,
//! Llama-3-8B on H100-80G) and each policy, simulates `--duration` seconds of arrivals (3,600
//! by default) and prints, for every 60 s window of simulated time, the requests finished per
//! wall-second; then the rate over the whole run, the ratio of the last windows' rate to the
//! first's, and the 99.9th percentile and maximum wall time of one event (an engine call and
//! the driver's bookkeeping).
//!
//! ```sh
//! cargo run --release -p fastlibra-bench --example longrun
//! cargo run --release -p fastlibra-bench --example longrun -- --duration 120 --policies vllm --workloads dgg
//! ```

use std::time::Instant;

use fastlibra_bench::workload::dgg::{self, DggWorkloadParams};
use fastlibra_bench::workload::{WorkloadParams, by_name};
use fastlibra_kernels::HardwareConfig;
use fastlibra_runtime::sim::{SimOptions, run_policy_timed};
use fastlibra_runtime::workload::Workload;

const WINDOW_NS: u64 = 60_000_000_000;
const SEED: u64 = 4242;

struct Args {
    duration_s: f64,
    policies: Vec<String>,
    workloads: Vec<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        duration_s: 3600.0,
        policies: ["fastlibra", "vllm", "slora"].map(String::from).to_vec(),
        workloads: ["chatbot", "dgg"].map(String::from).to_vec(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let list = || value.split(',').map(String::from).collect::<Vec<_>>();
        match flag.as_str() {
            "--duration" => {
                args.duration_s = value
                    .parse()
                    .ok()
                    .filter(|d: &f64| d.is_finite() && *d > 0.0)
                    .ok_or(format!(
                        "--duration: a positive number of seconds, not {value}"
                    ))?;
            }
            "--policies" => args.policies = list(),
            "--workloads" => args.workloads = list(),
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(args)
}

fn workload(name: &str, duration_s: f64) -> Result<Workload, String> {
    match name {
        "dgg" => {
            let params = DggWorkloadParams {
                rate_per_s: 10.0, // `fastlibra bench --workload dgg`'s default rate
                duration_s,
                ..DggWorkloadParams::default()
            };
            dgg::workload(None, &params, SEED).map_err(|e| e.to_string())
        }
        _ => {
            let params = WorkloadParams {
                lora_count: 100,
                rate_per_s: 16.0,
                duration_s,
                seed: SEED,
                ..WorkloadParams::default()
            };
            by_name(name, &params).map_err(|e| e.to_string())
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    let options = SimOptions {
        hardware: HardwareConfig::from_presets("llama3-8b", "h100-80g")
            .map_err(|e| e.to_string())?,
        seed: SEED,
        check_invariants: false,
        lora_fraction: None,
        max_cpu_loras: None,
        progress: None,
    };
    for name in &args.workloads {
        let workload = workload(name, args.duration_s)?;
        for policy in &args.policies {
            let start = Instant::now();
            let (result, timing) = run_policy_timed(&workload, policy, &options, WINDOW_NS)
                .map_err(|e| e.to_string())?;
            let wall_s = start.elapsed().as_secs_f64();
            println!(
                "{name} / {policy}: requests per wall-second per 60 s window of simulated time"
            );
            let rates: Vec<f64> = timing
                .windows
                .iter()
                .map(|w| w.requests_per_wall_s())
                .collect();
            for (i, (w, rate)) in timing.windows.iter().zip(&rates).enumerate() {
                println!(
                    "  {:>5}-{:<5} s  {:>8} requests  {:>12.0} req/wall-s  {:>9.3} wall-s",
                    i * 60,
                    (i + 1) * 60,
                    w.requests,
                    rate,
                    w.wall_ns as f64 / 1e9
                );
            }
            // The windows with arrivals (the run drains past the last one).
            let arrival_windows = ((args.duration_s * 1e9) as u64).div_ceil(WINDOW_NS) as usize;
            let with_arrivals = &rates[..arrival_windows.min(rates.len())];
            let first = with_arrivals.first().copied().unwrap_or(0.0);
            let last = with_arrivals.last().copied().unwrap_or(0.0);
            let slowest = with_arrivals.iter().copied().fold(f64::INFINITY, f64::min);
            println!(
                "  total: {} requests in {wall_s:.2} wall-s = {:.0} req/wall-s; last window / first = {:.2}, slowest / first = {:.2}",
                result.outcomes.len(),
                result.outcomes.len() as f64 / wall_s,
                last / first.max(f64::MIN_POSITIVE),
                slowest / first.max(f64::MIN_POSITIVE)
            );
            println!(
                "  one event: p99.9 {:.1} µs, max {:.1} µs over {} events; at most {} nodes in the tree",
                timing.call_ns_quantile(0.999) as f64 / 1e3,
                timing.call_ns_max as f64 / 1e3,
                timing.calls(),
                timing.tree_nodes_max
            );
        }
    }
    Ok(())
}

fn main() {
    if let Err(e) = parse_args().and_then(|args| run(&args)) {
        eprintln!("longrun: {e}");
        std::process::exit(2);
    }
}
