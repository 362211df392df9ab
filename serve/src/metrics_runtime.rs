//! The runtime's gauges and counters, read from [`ServeBackend::snapshot`] at each scrape and
//! written under vLLM's names (what the inference extension reads) and fastlibra's.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use fastlibra_runtime::online::{DurationHistogram, RuntimeSnapshot, ServeBackend};

/// Label pairs of one sample.
type Labels = Vec<(&'static str, String)>;

/// Encodes the runtime's metrics from a fresh snapshot on every scrape.
pub struct RuntimeCollector {
    backend: Arc<dyn ServeBackend>,
}

impl std::fmt::Debug for RuntimeCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeCollector").finish_non_exhaustive()
    }
}

impl RuntimeCollector {
    /// A collector of `backend`'s snapshots.
    pub fn new(backend: Arc<dyn ServeBackend>) -> Self {
        RuntimeCollector { backend }
    }
}

const TIERS: [&str; 3] = ["hbm", "host", "nvme"];
const LINKS: [&str; 4] = ["host_to_hbm", "hbm_to_host", "nvme_to_host", "host_to_nvme"];

fn gauge(e: &mut DescriptorEncoder, name: &str, help: &str, samples: &[(Labels, f64)]) -> Fmt {
    let mut m = e.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, value) in samples {
        ConstGauge::new(*value).encode(m.encode_family(labels)?)?;
    }
    Ok(())
}

fn counter(e: &mut DescriptorEncoder, name: &str, help: &str, samples: &[(Labels, u64)]) -> Fmt {
    let mut m = e.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, value) in samples {
        ConstCounter::new(*value).encode(m.encode_family(labels)?)?;
    }
    Ok(())
}

fn histogram(e: &mut DescriptorEncoder, name: &str, help: &str, h: &DurationHistogram) -> Fmt {
    let mut m = e.encode_descriptor(name, help, None, MetricType::Histogram)?;
    let mut buckets: Vec<(f64, u64)> = h
        .bounds_s
        .iter()
        .copied()
        .chain(std::iter::once(f64::MAX))
        .zip(h.counts.iter().copied().chain(std::iter::repeat(0)))
        .collect();
    // `counts` has one entry more than `bounds_s` (the +Inf bucket); tolerate a short one.
    buckets.truncate(h.bounds_s.len() + 1);
    let count = h.counts.iter().sum();
    m.encode_histogram::<NoLabelSet>(h.sum_s, count, &buckets, None)
}

type Fmt = Result<(), std::fmt::Error>;

impl Collector for RuntimeCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> Fmt {
        let info = self.backend.model();
        let s = self.backend.snapshot();
        let model = || vec![("model_name", info.served_name.clone())];
        vllm_gauges(
            &mut e,
            &s,
            model(),
            info.max_loras,
            info.block_tokens,
            info.hbm_pages,
        )?;
        counter(
            &mut e,
            "vllm:prefix_cache_queries",
            "Prompt tokens looked up in the prefix cache",
            &[(model(), s.prefix_cache_queries)],
        )?;
        counter(
            &mut e,
            "vllm:prefix_cache_hits",
            "Prompt tokens found in the prefix cache",
            &[(model(), s.prefix_cache_hits)],
        )?;
        counter(
            &mut e,
            "vllm:num_preemptions",
            "Requests preempted (their KV recomputed later)",
            &[(model(), s.preemptions)],
        )?;
        fastlibra_metrics(&mut e, &s, self.backend.adapters().len())
    }
}

fn vllm_gauges(
    e: &mut DescriptorEncoder,
    s: &RuntimeSnapshot,
    model: Labels,
    max_loras: u32,
    block_tokens: u32,
    hbm_pages: u64,
) -> Fmt {
    let one = |v: f64| [(model.clone(), v)];
    gauge(
        e,
        "vllm:num_requests_running",
        "Requests in a batch",
        &one(s.running as f64),
    )?;
    gauge(
        e,
        "vllm:num_requests_waiting",
        "Requests waiting for admission",
        &one(s.waiting as f64),
    )?;
    let hbm = s.pages[0];
    let kv_share = if hbm.total == 0 {
        0.0
    } else {
        hbm.kv as f64 / hbm.total as f64
    };
    gauge(
        e,
        "vllm:kv_cache_usage_perc",
        "Share of HBM pages holding KV blocks (0..1, as vLLM reports it)",
        &one(kv_share),
    )?;
    let now_s = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let lora = vec![
        ("max_lora", max_loras.to_string()),
        ("running_lora_adapters", s.running_adapters.join(",")),
        ("waiting_lora_adapters", s.waiting_adapters.join(",")),
    ];
    gauge(
        e,
        "vllm:lora_requests_info",
        "Running and waiting adapters; the value is the time of this update",
        &[(lora, now_s)],
    )?;
    let cache = vec![
        ("block_size", block_tokens.to_string()),
        ("num_gpu_blocks", hbm_pages.to_string()),
    ];
    gauge(
        e,
        "vllm:cache_config_info",
        "The KV cache's shape",
        &[(cache, 1.0)],
    )
}

fn fastlibra_metrics(e: &mut DescriptorEncoder, s: &RuntimeSnapshot, adapters: usize) -> Fmt {
    let mut pages = Vec::new();
    for (tier, p) in TIERS.iter().zip(s.pages) {
        let free = p.total.saturating_sub(p.lora + p.kv);
        for (kind, n) in [("lora", p.lora), ("kv", p.kv), ("free", free)] {
            pages.push((
                vec![("tier", tier.to_string()), ("kind", kind.to_string())],
                n as f64,
            ));
        }
    }
    gauge(
        e,
        "fastlibra:pages",
        "Pages per tier and by what they hold",
        &pages,
    )?;
    let none = Labels::new;
    gauge(
        e,
        "fastlibra:pinned_hbm_pages",
        "HBM pages pinned by requests (0 when idle)",
        &[(none(), s.pinned_hbm_pages as f64)],
    )?;
    gauge(
        e,
        "fastlibra:invalid_kv_share",
        "Share of HBM KV pages whose adapter is not in HBM",
        &[(none(), s.invalid_kv_share)],
    )?;
    gauge(
        e,
        "fastlibra:adapters_loaded",
        "Adapters loaded",
        &[(none(), adapters as f64)],
    )?;
    let shards: Vec<_> = s
        .shards_serving
        .iter()
        .enumerate()
        .map(|(i, up)| (vec![("shard", i.to_string())], if *up { 1.0 } else { 0.0 }))
        .collect();
    gauge(
        e,
        "fastlibra:shard_up",
        "1 while the shard serves, 0 once it stopped (it panicked or its engine failed)",
        &shards,
    )?;
    let links: Vec<_> = LINKS
        .iter()
        .zip(s.link_bytes)
        .map(|(l, b)| (vec![("link", l.to_string())], b))
        .collect();
    counter(e, "fastlibra:link_bytes", "Bytes moved per link", &links)?;
    let plain = [
        ("fastlibra:swap_ins", "Nodes swapped into HBM", s.swap_ins),
        (
            "fastlibra:swap_outs",
            "Nodes swapped out of HBM",
            s.swap_outs,
        ),
        (
            "fastlibra:nvme_checksum_failures",
            "NVMe pages that failed their checksum (never served)",
            s.nvme_checksum_failures,
        ),
        (
            "fastlibra:invariant_checks",
            "Invariant checks run on idle shards",
            s.invariant_checks,
        ),
        (
            "fastlibra:invariant_failures",
            "Invariant checks that failed (must stay 0)",
            s.invariant_failures,
        ),
    ];
    for (name, help, value) in plain {
        counter(e, name, help, &[(none(), value)])?;
    }
    histogram(
        e,
        "fastlibra:engine_call_seconds",
        "Wall time of each engine call on the shards",
        &s.engine_call,
    )
}
