//! Per-policy figures of one simulation: request counts and failures, latency distributions,
//! hit rates, HBM use and traffic. See `docs/report.md` for every field and its unit.
//!
//! Which requests enter which distribution:
//!
//! | distribution | requests |
//! |---|---|
//! | `ttft_ms`, `queue_ms`, `lora_cold_ms`, `kv_cold_ms`, `prefill_ms` | every request with a first token, failed or not |
//! | `tpot_ms` | completed requests with more than one output token |
//! | `e2e_ms` | completed requests |
//!
//! A failed request is always counted in `failed` and `failures`, whatever it reached.

use fastlibra_runtime::outcome::{FailureReason, MemorySample, RequestOutcome};
use fastlibra_runtime::sim::SimResult;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::latency::{LatencyRecorder, LatencyStats};
use super::timeline::{hbm_used_share, invalid_kv_share, time_average};

/// Failed requests by reason. Every reason is always present, so the schema is fixed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureCounts {
    /// The request named an adapter the engine does not know.
    pub unknown_adapter: u64,
    /// Prompt plus output could not fit in HBM even alone.
    pub too_long: u64,
    /// Admission control turned it away.
    pub rejected: u64,
    /// The run ended before it finished.
    pub unfinished: u64,
}

impl FailureCounts {
    fn count(&mut self, reason: &FailureReason) {
        let slot = match reason {
            FailureReason::UnknownAdapter => &mut self.unknown_adapter,
            FailureReason::TooLong => &mut self.too_long,
            FailureReason::Rejected => &mut self.rejected,
            FailureReason::Unfinished => &mut self.unfinished,
        };
        *slot += 1;
    }
}

/// Cache hit rates, each a fraction in [0, 1].
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HitRates {
    /// Share of requests whose adapter was in HBM on arrival (0 when there are no requests).
    pub lora: f64,
    /// Σ `kv_hit_blocks` / Σ `kv_reusable_blocks`: the share of reusable history found in HBM.
    /// 1.0 when no request had reusable history (nothing was missed).
    pub kv: f64,
    /// Share of requests with both a LoRA hit and all their reusable history in HBM.
    pub combined: f64,
}

/// Bytes moved over each link.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ByteCounts {
    /// Host → HBM.
    pub h2d: u64,
    /// HBM → host.
    pub d2h: u64,
    /// NVMe → host.
    pub nvme_read: u64,
    /// Host → NVMe.
    pub nvme_write: u64,
}

/// `--verify` counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyCounts {
    /// Logit vectors recomputed from scratch and compared.
    pub checked: u64,
    /// Of those, how many differed.
    pub mismatches: u64,
}

/// What a real backend reports beyond the engine's counters.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RuntimeFigures {
    /// Shards (cores) that served.
    pub shards: u32,
    /// Requests routed to each shard.
    pub per_shard_requests: Vec<u64>,
    /// The longest wall time one engine call took on each shard, ms.
    #[serde(default)]
    pub per_shard_engine_call_ms_max: Vec<f64>,
    /// Pages written to / read back intact from the NVMe page files.
    pub nvme_pages_written: u64,
    /// Pages read back intact.
    pub nvme_pages_read: u64,
    /// Page writes that failed (the data stayed on the host).
    pub nvme_write_errors: u64,
    /// Page reads that failed: never used.
    pub nvme_read_errors: u64,
    /// Pages that failed their checksum: never used.
    pub checksum_failures: u64,
    /// Nodes whose data was lost in transit: dropped and recomputed (KV) or registered again
    /// (adapters).
    pub nodes_lost: u64,
    /// Adapters reloaded with new weights during the run.
    pub reloads: u64,
    /// Mean TTFT of requests whose LoRA and history were in HBM on arrival (cache hits), ms.
    pub hit_ttft_ms_mean: Option<f64>,
    /// Mean TTFT of the other requests (misses), ms.
    pub miss_ttft_ms_mean: Option<f64>,
    /// What the shards computed on ("emulated (CPU)", or the GPU's name).
    #[serde(default)]
    pub device: String,
    /// Why a `--backend cuda --fallback-cpu` run fell back to the emulated device.
    #[serde(default)]
    pub fallback: Option<String>,
    /// The process's peak resident memory after this run, MiB (a high-water mark over the
    /// whole command: model weights once, plus every shard's arenas).
    #[serde(default)]
    pub peak_rss_mib: Option<f64>,
}

/// Everything `report.json` says about one policy.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PolicySummary {
    /// Requests in the run.
    pub requests: u64,
    /// Requests that completed.
    pub completed: u64,
    /// Requests that failed (`requests - completed`).
    pub failed: u64,
    /// Failed requests by reason.
    pub failures: FailureCounts,
    /// Time to first token, ms.
    pub ttft_ms: LatencyStats,
    /// Time per output token after the first, ms.
    pub tpot_ms: LatencyStats,
    /// Arrival to last token, ms.
    pub e2e_ms: LatencyStats,
    /// Part of TTFT spent queueing, ms.
    pub queue_ms: LatencyStats,
    /// Part of TTFT spent waiting for the LoRA adapter, ms.
    pub lora_cold_ms: LatencyStats,
    /// Part of TTFT spent loading or recomputing history KV, ms.
    pub kv_cold_ms: LatencyStats,
    /// Part of TTFT spent computing the prefill of new tokens, ms.
    pub prefill_ms: LatencyStats,
    /// Cache hit rates.
    pub hit_rate: HitRates,
    /// Time-averaged share of KV pages in HBM that are invalid (their LoRA is not in HBM).
    pub invalid_kv_fraction: f64,
    /// Time-averaged share of HBM pages used by LoRA adapters and KV.
    pub hbm_util_mean: f64,
    /// Bytes moved per link.
    pub bytes: ByteCounts,
    /// Requests preempted and recomputed.
    pub preemptions: u64,
    /// Swap-outs from HBM.
    pub swap_outs: u64,
    /// Swap-ins issued because a waiting request needed the node.
    pub swap_ins_on_demand: u64,
    /// Swap-ins issued by prefetching.
    pub prefetches: u64,
    /// Host → NVMe demotions.
    pub demotions: u64,
    /// KV nodes dropped to make room.
    pub drops: u64,
    /// Virtual time at the end of the run, s.
    pub simulated_s: f64,
    /// For `vllm` and `vllm-oracle`: the static share of HBM reserved for LoRA adapters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lora_fraction: Option<f64>,
    /// With `--find-peak`: the highest rate (arrivals/s, the unit of `rate`) whose mean TTFT
    /// stays under the threshold; `null` when no probed rate did.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub peak_rps: Option<Option<f64>>,
    /// `--verify` (real backends): logit vectors recomputed from scratch and compared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<VerifyCounts>,
    /// Real backends: how the run went on the machine (shards, NVMe I/O, faults, reloads).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<RuntimeFigures>,
    /// `--backend http`: the server, its models and every failure by kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<crate::http::HttpFigures>,
}

impl PolicySummary {
    /// Whether `invalid_kv_fraction` was measured: always in-process, and over HTTP only when
    /// the server's `/metrics` has the invalid-KV gauge (sampled during the run).
    pub fn invalid_kv_measured(&self) -> bool {
        self.http.as_ref().is_none_or(|h| {
            h.server
                .as_ref()
                .is_some_and(|m| m.invalid_kv_share_mean.is_some())
        })
    }
}

/// Reads a field that is present (possibly `null`) as `Some`, so `null` round-trips.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<f64>>, D::Error> {
    Option::<f64>::deserialize(d).map(Some)
}

/// A policy's summary with what the files and plots need beyond it.
#[derive(Clone, Debug)]
pub struct Summarized {
    /// The figures.
    pub summary: PolicySummary,
    /// TTFT of every request with a first token, µs.
    pub ttft: Histogram<u64>,
    /// TPOT of every completed request with at least two output tokens, µs.
    pub tpot: Histogram<u64>,
    /// End-to-end latency of every completed request, µs.
    pub e2e: Histogram<u64>,
    /// `(first token time, TTFT)` of every request with a first token, ns, by first token time.
    pub ttft_at_ns: Vec<(u64, u64)>,
    /// HBM use over time (the engine's samples).
    pub timeline: Vec<MemorySample>,
    /// Virtual time at the end of the run, ns.
    pub simulated_ns: u64,
    /// Every request's outcome, kept only for `--requests-csv` (see [`keep_outcomes`]).
    pub outcomes: Option<Vec<RequestOutcome>>,
}

/// Keeps a run's outcomes in its summary when `keep`, for `<policy>.requests.csv`.
pub fn keep_outcomes(s: &mut Summarized, result: SimResult, keep: bool) {
    if keep {
        s.outcomes = Some(result.outcomes);
    }
}

/// The six latency distributions, filled request by request.
#[derive(Default)]
struct Latencies {
    ttft: LatencyRecorder,
    tpot: LatencyRecorder,
    e2e: LatencyRecorder,
    queue: LatencyRecorder,
    lora_cold: LatencyRecorder,
    kv_cold: LatencyRecorder,
    prefill: LatencyRecorder,
}

impl Latencies {
    fn record(&mut self, o: &RequestOutcome) {
        if let Some(ttft_ns) = o.ttft_ns() {
            self.ttft.record_ns(ttft_ns);
            self.queue.record_ns(o.queue_ns);
            self.lora_cold.record_ns(o.lora_cold_ns);
            self.kv_cold.record_ns(o.kv_cold_ns);
            self.prefill.record_ns(o.prefill_ns);
        }
        if let Some(tpot_ns) = o.tpot_ns() {
            self.tpot.record_ns(tpot_ns);
        }
        if let Some(e2e_ns) = o.e2e_ns() {
            self.e2e.record_ns(e2e_ns);
        }
    }
}

/// Computes a policy's figures from its simulation result.
pub fn summarize(result: &SimResult) -> Summarized {
    let mut latencies = Latencies::default();
    let mut failures = FailureCounts::default();
    for outcome in &result.outcomes {
        latencies.record(outcome);
        if let Some(reason) = &outcome.failure {
            failures.count(reason);
        }
    }
    let requests = result.outcomes.len() as u64;
    let failed = result
        .outcomes
        .iter()
        .filter(|o| o.failure.is_some())
        .count() as u64;
    let stats = &result.stats;
    let summary = PolicySummary {
        requests,
        completed: requests - failed,
        failed,
        failures,
        ttft_ms: latencies.ttft.stats(),
        tpot_ms: latencies.tpot.stats(),
        e2e_ms: latencies.e2e.stats(),
        queue_ms: latencies.queue.stats(),
        lora_cold_ms: latencies.lora_cold.stats(),
        kv_cold_ms: latencies.kv_cold.stats(),
        prefill_ms: latencies.prefill.stats(),
        hit_rate: hit_rates(&result.outcomes),
        invalid_kv_fraction: time_average(&stats.timeline, result.simulated_ns, invalid_kv_share),
        hbm_util_mean: time_average(&stats.timeline, result.simulated_ns, hbm_used_share),
        bytes: ByteCounts {
            h2d: stats.bytes.h2d,
            d2h: stats.bytes.d2h,
            nvme_read: stats.bytes.nvme_read,
            nvme_write: stats.bytes.nvme_write,
        },
        preemptions: stats.preemptions,
        swap_outs: stats.swap_outs,
        swap_ins_on_demand: stats.swap_ins_on_demand,
        prefetches: stats.prefetches,
        demotions: stats.demotions,
        drops: stats.drops,
        simulated_s: result.simulated_ns as f64 / 1e9,
        lora_fraction: result.lora_fraction,
        peak_rps: None,
        verify: None,
        runtime: None,
        http: None,
    };
    let mut ttft_at_ns: Vec<(u64, u64)> = result
        .outcomes
        .iter()
        .filter_map(|o| Some((o.first_token_ns?, o.ttft_ns()?)))
        .collect();
    ttft_at_ns.sort_unstable();
    Summarized {
        summary,
        ttft: latencies.ttft.histogram().clone(),
        tpot: latencies.tpot.histogram().clone(),
        e2e: latencies.e2e.histogram().clone(),
        ttft_at_ns,
        timeline: stats.timeline.clone(),
        simulated_ns: result.simulated_ns,
        outcomes: None,
    }
}

/// LoRA, KV and combined hit rates of a run's requests.
pub fn hit_rates(outcomes: &[RequestOutcome]) -> HitRates {
    let share = |n: usize| {
        if outcomes.is_empty() {
            0.0
        } else {
            n as f64 / outcomes.len() as f64
        }
    };
    let hit_blocks: u64 = outcomes.iter().map(|o| u64::from(o.kv_hit_blocks)).sum();
    let reusable_blocks: u64 = outcomes
        .iter()
        .map(|o| u64::from(o.kv_reusable_blocks))
        .sum();
    let both = outcomes
        .iter()
        .filter(|o| o.lora_hit && o.kv_hit_blocks == o.kv_reusable_blocks)
        .count();
    HitRates {
        lora: share(outcomes.iter().filter(|o| o.lora_hit).count()),
        kv: if reusable_blocks == 0 {
            1.0
        } else {
            hit_blocks as f64 / reusable_blocks as f64
        },
        combined: share(both),
    }
}
