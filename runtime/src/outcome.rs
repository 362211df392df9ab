//! What a run produces, as the engine reports it: one [`RequestOutcome`] per request and the
//! run's [`EngineStats`]. The benchmark harness turns these into histograms and reports.

use serde::{Deserialize, Serialize};

/// Why a request failed instead of completing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FailureReason {
    /// The request names an adapter the engine does not know.
    UnknownAdapter,
    /// Prompt plus output cannot fit in HBM even alone.
    TooLong,
    /// Admission control turned it away (queue full).
    Rejected,
    /// The run ended before it finished.
    Unfinished,
}

impl std::fmt::Display for FailureReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FailureReason::UnknownAdapter => "unknown adapter",
            FailureReason::TooLong => "too long for HBM",
            FailureReason::Rejected => "rejected by admission control",
            FailureReason::Unfinished => "unfinished at the end of the run",
        })
    }
}

/// The fate of one request, with its time-to-first-token broken down.
///
/// `ttft = first_token_ns - arrival_ns = queue_ns + lora_cold_ns + kv_cold_ns + prefill_ns`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestOutcome {
    /// Request id (unique within a run).
    pub request: u64,
    /// Session id, for multi-turn requests.
    pub session: Option<u64>,
    /// Adapter index.
    pub adapter: u32,
    /// Arrival time, ns.
    pub arrival_ns: u64,
    /// When the first output token was produced, ns (`None` if it never was).
    pub first_token_ns: Option<u64>,
    /// When the request completed or failed, ns.
    pub finish_ns: u64,
    /// Prompt tokens (the whole history for a follow-up turn).
    pub prompt_tokens: u32,
    /// Output tokens produced.
    pub output_tokens: u32,
    /// Time spent waiting for a batch slot or memory (what is left of TTFT), ns.
    pub queue_ns: u64,
    /// Time spent waiting for the LoRA adapter to reach HBM, ns.
    pub lora_cold_ns: u64,
    /// Time spent waiting for history KV to reach HBM plus the prefill time spent recomputing
    /// history that was not cached, ns.
    pub kv_cold_ns: u64,
    /// Prefill compute time of the tokens that were new, ns.
    pub prefill_ns: u64,
    /// Whether the adapter was in HBM on arrival.
    pub lora_hit: bool,
    /// Blocks of reusable history found in HBM on arrival.
    pub kv_hit_blocks: u32,
    /// Blocks of reusable history (cached in any tier, or known history of the session).
    pub kv_reusable_blocks: u32,
    /// Times this request was preempted (its KV recomputed).
    pub preemptions: u32,
    /// `Some` if it failed.
    pub failure: Option<FailureReason>,
}

impl RequestOutcome {
    /// Time to first token, ns.
    pub fn ttft_ns(&self) -> Option<u64> {
        self.first_token_ns.map(|t| t - self.arrival_ns)
    }

    /// Mean time per output token after the first, ns.
    pub fn tpot_ns(&self) -> Option<u64> {
        let first = self.first_token_ns?;
        (self.output_tokens > 1 && self.failure.is_none())
            .then(|| (self.finish_ns - first) / u64::from(self.output_tokens - 1))
    }

    /// End-to-end latency, ns (completed requests only).
    pub fn e2e_ns(&self) -> Option<u64> {
        self.failure
            .is_none()
            .then(|| self.finish_ns - self.arrival_ns)
    }
}

/// Bytes moved over each link.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkBytes {
    /// Host → HBM.
    pub h2d: u64,
    /// HBM → host.
    pub d2h: u64,
    /// NVMe → host.
    pub nvme_read: u64,
    /// Host → NVMe.
    pub nvme_write: u64,
}

/// One sample of HBM use (taken at every swapper tick).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemorySample {
    /// Time, ns.
    pub t_ns: u64,
    /// HBM pages in all.
    pub capacity_pages: u32,
    /// Pages held by LoRA adapters.
    pub lora_pages: u32,
    /// Pages held by KV whose LoRA is in HBM.
    pub kv_valid_pages: u32,
    /// Pages held by KV whose LoRA is not in HBM (invalid KV).
    pub kv_invalid_pages: u32,
}

/// Counters and samples over a whole run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EngineStats {
    /// Bytes per link.
    pub bytes: LinkBytes,
    /// HBM use over time.
    pub timeline: Vec<MemorySample>,
    /// Swap-ins issued because a waiting request needed the node.
    pub swap_ins_on_demand: u64,
    /// Swap-ins issued by prefetching.
    pub prefetches: u64,
    /// Swap-outs from HBM.
    pub swap_outs: u64,
    /// Host → NVMe demotions.
    pub demotions: u64,
    /// KV nodes dropped (from any tier) to make room.
    pub drops: u64,
    /// Requests preempted and recomputed.
    pub preemptions: u64,
    /// Compute steps run.
    pub steps: u64,
    /// Transfers the driver reported as failed (the source is intact; nothing was lost).
    pub transfer_failures: u64,
    /// Nodes whose data the driver reported lost in transit (a checksum failure, a read
    /// error): dropped and recomputed (KV) or registered again from the source (adapters).
    #[serde(default)]
    pub nodes_lost: u64,
    /// Pages of those nodes.
    #[serde(default)]
    pub pages_lost: u64,
    /// Adapter versions registered after start-up (reloads, and adapters whose pages were
    /// lost).
    #[serde(default)]
    pub adapters_reloaded: u64,
}

impl EngineStats {
    /// Adds another engine's counters (several shards make one run). Timelines are merged by
    /// [`EngineStats::merge_timelines`].
    pub fn add_counters(&mut self, other: &EngineStats) {
        let (b, o) = (&mut self.bytes, &other.bytes);
        b.h2d += o.h2d;
        b.d2h += o.d2h;
        b.nvme_read += o.nvme_read;
        b.nvme_write += o.nvme_write;
        self.swap_ins_on_demand += other.swap_ins_on_demand;
        self.prefetches += other.prefetches;
        self.swap_outs += other.swap_outs;
        self.demotions += other.demotions;
        self.drops += other.drops;
        self.preemptions += other.preemptions;
        self.steps += other.steps;
        self.transfer_failures += other.transfer_failures;
        self.nodes_lost += other.nodes_lost;
        self.pages_lost += other.pages_lost;
        self.adapters_reloaded += other.adapters_reloaded;
    }

    /// One HBM timeline for several engines sampled at their own times: time is cut into
    /// windows of `window_ns`, and each window sums every engine's latest sample so far.
    pub fn merge_timelines(timelines: &[&[MemorySample]], window_ns: u64) -> Vec<MemorySample> {
        let window_ns = window_ns.max(1);
        let end = timelines
            .iter()
            .filter_map(|t| t.last())
            .map(|s| s.t_ns / window_ns)
            .max();
        let Some(end) = end else { return Vec::new() };
        let mut at = vec![0usize; timelines.len()];
        let mut latest: Vec<Option<MemorySample>> = vec![None; timelines.len()];
        let mut out = Vec::new();
        for w in 0..=end {
            for (i, t) in timelines.iter().enumerate() {
                while at[i] < t.len() && t[at[i]].t_ns / window_ns <= w {
                    latest[i] = Some(t[at[i]]);
                    at[i] += 1;
                }
            }
            if latest.iter().all(Option::is_none) {
                continue;
            }
            let mut sum = MemorySample {
                t_ns: w * window_ns,
                ..MemorySample::default()
            };
            for s in latest.iter().flatten() {
                sum.capacity_pages += s.capacity_pages;
                sum.lora_pages += s.lora_pages;
                sum.kv_valid_pages += s.kv_valid_pages;
                sum.kv_invalid_pages += s.kv_invalid_pages;
            }
            out.push(sum);
        }
        out
    }
}
