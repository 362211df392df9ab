//! The server's own view of a run, from its Prometheus `GET /metrics`, for what a client cannot
//! see from outside: the share of HBM KV that is unusable (fastlibra's
//! `fastlibra:invalid_kv_share`), the prefix-cache hit share (vLLM's
//! `vllm:prefix_cache_{queries,hits}_total`), preemptions and swaps.
//!
//! ```text
//!   run start ─ scrape (counters' baseline)
//!      │ every SCRAPE_EVERY while the run lasts: scrape, keep the invalid-KV gauge
//!   run end ─── scrape (the text kept as <policy>.metrics.txt): counters minus the baseline
//! ```
//!
//! Gauges are sampled, so the invalid-KV share is a mean over the scrapes (an estimate of the
//! simulator's time average). Counters are differences between the first and the last scrape,
//! so a server that was already running before the benchmark is measured for this run only.
//! A server without a metric (llama.cpp, or vLLM for the fastlibra-only names) leaves the
//! figure `null`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How often the server's gauges are sampled during a run.
pub const SCRAPE_EVERY: Duration = Duration::from_secs(1);

/// The gauge sampled for the invalid-KV share.
pub const INVALID_KV_SHARE: &str = "fastlibra:invalid_kv_share";

/// Counters read at the start and at the end of a run.
const PREFIX_QUERIES: &str = "vllm:prefix_cache_queries_total";
const PREFIX_HITS: &str = "vllm:prefix_cache_hits_total";
const PREEMPTIONS: &str = "vllm:num_preemptions_total";
const SWAP_INS: &str = "fastlibra:swap_ins_total";
const SWAP_OUTS: &str = "fastlibra:swap_outs_total";

/// Most gauge samples kept (a bound on a run's memory: over 13 hours at one a second).
const MAX_SAMPLES: usize = 1 << 16;

/// What the server's `/metrics` said about one run (`report.json` → `http.server`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerFigures {
    /// Scrapes that answered, the first and last included.
    pub scrapes: u64,
    /// Mean of `fastlibra:invalid_kv_share` over the scrapes (at the start, once a second, at
    /// the end).
    pub invalid_kv_share_mean: Option<f64>,
    /// Its largest sample.
    pub invalid_kv_share_max: Option<f64>,
    /// Prompt tokens found in the prefix cache ÷ prompt tokens looked up, over the run.
    pub prefix_cache_hit_share: Option<f64>,
    /// Requests preempted during the run.
    pub preemptions: Option<f64>,
    /// Nodes swapped into HBM during the run.
    pub swap_ins: Option<f64>,
    /// Nodes swapped out of HBM during the run.
    pub swap_outs: Option<f64>,
}

/// The sum of every sample named exactly `name` (all label sets), or `None` when the text has
/// none. Comment lines and malformed values are skipped.
pub fn sum(text: &str, name: &str) -> Option<f64> {
    let mut total = None;
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        let value = match rest.as_bytes().first() {
            Some(b'{') => rest.rsplit_once('}').map(|(_, v)| v),
            Some(b' ') => Some(rest),
            _ => None,
        };
        let Some(v) = value.and_then(|v| v.split_whitespace().next()) else {
            continue;
        };
        if let Ok(v) = v.parse::<f64>() {
            *total.get_or_insert(0.0) += v;
        }
    }
    total
}

/// Collects the scrapes of one run.
#[derive(Debug, Default)]
pub struct Sampler {
    first: Option<String>,
    last: Option<String>,
    scrapes: u64,
    invalid: Vec<f64>,
}

impl Sampler {
    /// Takes one scrape's text.
    pub fn scrape(&mut self, text: String) {
        self.scrapes += 1;
        if let Some(v) = sum(&text, INVALID_KV_SHARE)
            && self.invalid.len() < MAX_SAMPLES
        {
            self.invalid.push(v);
        }
        if self.first.is_none() {
            self.first = Some(text);
        } else {
            self.last = Some(text);
        }
    }

    /// The last scrape's text (the first when there was one only).
    pub fn last_text(&self) -> Option<&str> {
        self.last.as_deref().or(self.first.as_deref())
    }

    /// The run's figures; `None` when no scrape answered.
    pub fn figures(&self) -> Option<ServerFigures> {
        let first = self.first.as_deref()?;
        let last = self.last_text()?;
        let delta = |name: &str| Some(sum(last, name)? - sum(first, name).unwrap_or(0.0));
        let n = self.invalid.len() as f64;
        let prefix_cache_hit_share = match (delta(PREFIX_HITS), delta(PREFIX_QUERIES)) {
            (Some(h), Some(q)) if q > 0.0 => Some(h / q),
            _ => None,
        };
        Some(ServerFigures {
            scrapes: self.scrapes,
            invalid_kv_share_mean: (n > 0.0).then(|| self.invalid.iter().sum::<f64>() / n),
            invalid_kv_share_max: self.invalid.iter().copied().reduce(f64::max),
            prefix_cache_hit_share,
            preemptions: delta(PREEMPTIONS),
            swap_ins: delta(SWAP_INS),
            swap_outs: delta(SWAP_OUTS),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
# HELP vllm:prompt_tokens Prompt tokens.
# TYPE vllm:prompt_tokens counter
vllm:prompt_tokens_total{model_name=\"a\"} 10
vllm:prompt_tokens_total{model_name=\"b,c}\"} 5
vllm:prompt_tokens_total_extra 99
fastlibra:invalid_kv_share 0.25
vllm:prefix_cache_queries_total 100
vllm:prefix_cache_hits_total 40
fastlibra:swap_ins_total 3 1700000000
";

    #[test]
    fn samples_are_summed_over_label_sets_and_only_by_exact_name() {
        assert_eq!(sum(TEXT, "vllm:prompt_tokens_total"), Some(15.0));
        assert_eq!(sum(TEXT, "fastlibra:invalid_kv_share"), Some(0.25));
        assert_eq!(sum(TEXT, "fastlibra:swap_ins_total"), Some(3.0));
        assert_eq!(sum(TEXT, "vllm:prompt_tokens"), None);
        assert_eq!(sum(TEXT, "nothing"), None);
    }

    #[test]
    fn counters_are_differences_and_gauges_means() {
        let mut s = Sampler::default();
        assert_eq!(s.figures(), None);
        s.scrape(TEXT.to_string());
        s.scrape(TEXT.replace("0.25", "0.75"));
        let last = TEXT
            .replace("0.25", "0.5")
            .replace("queries_total 100", "queries_total 300")
            .replace("hits_total 40", "hits_total 90")
            .replace("ins_total 3 ", "ins_total 7 ");
        s.scrape(last);
        let f = s.figures().expect("scraped");
        assert_eq!(f.scrapes, 3);
        assert_eq!(f.invalid_kv_share_mean, Some(0.5));
        assert_eq!(f.invalid_kv_share_max, Some(0.75));
        assert_eq!(f.prefix_cache_hit_share, Some(0.25));
        assert_eq!(f.swap_ins, Some(4.0));
        assert_eq!(f.preemptions, None, "not in the text");
        assert!(s.last_text().expect("text").contains("hits_total 90"));
    }
}
