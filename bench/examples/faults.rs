//! The long fault-injection campaign: seeds of `runtime::sim::campaign` on larger runs (a
//! hundred sessions, a dozen adapters, 400 HBM pages) than the 1,000-seed test, every checker
//! on. Prints, per fault kind, the seeds run, the faults injected, the requests and the
//! failing seeds (each replays with `run_seed(seed, CampaignSize::LARGE)`).
//!
//! ```sh
//! cargo run --release -p fastlibra-bench --example faults [-- SEEDS [FIRST_SEED]]
//! ```

use std::time::Instant;

use fastlibra_runtime::sim::campaign::{CampaignSize, FaultKind, run_seed};

fn main() {
    let mut args = std::env::args().skip(1);
    let seeds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(900);
    let first: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let started = Instant::now();
    let mut rows = [(0u64, 0u64, 0usize, 0usize); FaultKind::ALL.len()];
    let mut failing = Vec::new();
    for seed in first..first + seeds {
        let report = run_seed(seed, CampaignSize::LARGE);
        let k = FaultKind::ALL
            .iter()
            .position(|k| *k == report.kind)
            .unwrap_or(0);
        let row = &mut rows[k];
        row.0 += 1;
        row.1 += report.injected_of_kind();
        row.2 += report.requests;
        row.3 += usize::from(report.refused.is_some());
        if !report.violations.is_empty() {
            failing.push((seed, report.kind, report.policy, report.violations));
        }
    }
    println!("| fault kind | seeds | faults injected | requests | start-ups refused |");
    println!("|---|---|---|---|---|");
    for (kind, (n, injected, requests, refused)) in FaultKind::ALL.iter().zip(rows) {
        println!("| {kind:?} | {n} | {injected} | {requests} | {refused} |");
    }
    println!(
        "seeds {first}..{}: {} failing, {:.1} s",
        first + seeds,
        failing.len(),
        started.elapsed().as_secs_f64()
    );
    for (seed, kind, policy, violations) in failing {
        println!("seed {seed} ({kind:?}, {policy}): {violations:?}");
    }
}
