//! `translation`: short one-turn requests that share a long per-adapter instruction prompt,
//! arriving in bursts, with a set of hot adapters that changes over time — a translation or
//! rewriting service where each adapter is a language pair or house style.
//!
//! | parameter | default | where it comes from |
//! |---|---|---|
//! | request arrivals | Gamma renewal process at `rate_per_s` requests/s, squared coefficient of variation 4 (shape 0.25) | BurstGPT (Wang et al., arXiv 2401.17644) fits production LLM request gaps with Gamma distributions of shape below 1; 4 is our choice of burstiness |
//! | adapter choice | 90 % from a hot set of 10 adapters, Zipf exponent 1.0 within it; 10 % uniform over all adapters | assumption, shaped after the Azure Functions trace (Shahrad et al., "Serverless in the Wild", USENIX ATC 2020): invocations are dominated by a small set of functions, and which functions are busy shifts over the day |
//! | hot set rotation | a fresh random hot set every 60 s | assumption; FASTLIBRA reports that the LoRA+KV demand shifts quickly (48.1 % per second), so one minute is a slow shift |
//! | system prompt | per adapter, 100–300 tokens (uniform), at the start of every request | the translation instructions shared by an adapter's requests (assumption) |
//! | input tokens | uniform 20–100 | a sentence or short paragraph (assumption) |
//! | output tokens | input × uniform 0.8–1.2, at least 1 | a translation is about as long as its source (assumption) |
//!
//! Each request is a one-turn session starting at its arrival ([`SessionStart::At`]), in
//! arrival order; only the system prompt is shared, so the reusable KV is per adapter.

use fastlibra_runtime::workload::{TurnSpec, Workload};
use rand::Rng;

use super::arrivals::ArrivalProcess;
use super::error::{WorkloadError, invalid};
use super::params::WorkloadParams;
use super::popularity::RotatingHotSet;
use super::sample::{
    Stream, secs_to_ns, stream_rng, uniform_u32, validate_non_negative, validate_positive,
    validate_range,
};
use super::scaffold::{Scaffold, session};
use super::tokens::random_tokens;

/// The generator's name.
pub const NAME: &str = "translation";

/// Knobs of the translation generator; see the module doc for the defaults' sources.
#[derive(Clone, Debug, PartialEq)]
pub struct TranslationConfig {
    /// Squared coefficient of variation of the gaps between requests (1 = Poisson).
    /// Default 4.0.
    pub burstiness_cv2: f64,
    /// Adapters in the hot set of an epoch (capped at the adapter count). Default 10.
    pub hot_set_size: u32,
    /// Length of an epoch, after which a new hot set is drawn, seconds. Default 60.
    pub rotation_period_s: f64,
    /// Zipf exponent within the hot set. Default 1.0.
    pub zipf_exponent: f64,
    /// Fraction of requests that go to a uniformly random adapter instead. Default 0.1.
    pub cold_fraction: f64,
    /// Length range of each adapter's system prompt, tokens. Default (100, 300).
    pub system_prompt_tokens: (u32, u32),
    /// Length range of the text to translate, tokens. Default (20, 100).
    pub input_tokens: (u32, u32),
    /// Output length as a fraction of the input length, uniform in this range.
    /// Default (0.8, 1.2).
    pub output_ratio: (f64, f64),
}

impl Default for TranslationConfig {
    fn default() -> Self {
        TranslationConfig {
            burstiness_cv2: 4.0,
            hot_set_size: 10,
            rotation_period_s: 60.0,
            zipf_exponent: 1.0,
            cold_fraction: 0.1,
            system_prompt_tokens: (100, 300),
            input_tokens: (20, 100),
            output_ratio: (0.8, 1.2),
        }
    }
}

impl TranslationConfig {
    /// Checks every knob.
    pub fn validate(&self) -> Result<(), WorkloadError> {
        validate_positive("translation.burstiness_cv2", self.burstiness_cv2)?;
        if self.hot_set_size == 0 {
            return Err(invalid(
                "translation.hot_set_size",
                "positive",
                self.hot_set_size,
            ));
        }
        validate_positive("translation.rotation_period_s", self.rotation_period_s)?;
        validate_non_negative("translation.zipf_exponent", self.zipf_exponent)?;
        if !(0.0..=1.0).contains(&self.cold_fraction) {
            return Err(invalid(
                "translation.cold_fraction",
                "in [0, 1]",
                self.cold_fraction,
            ));
        }
        validate_range(
            "translation.system_prompt_tokens",
            self.system_prompt_tokens,
        )?;
        validate_range("translation.input_tokens", self.input_tokens)?;
        let (lo, hi) = self.output_ratio;
        if !(lo.is_finite() && hi.is_finite() && lo > 0.0 && lo <= hi) {
            return Err(invalid(
                "translation.output_ratio",
                "a range with 0 < min <= max",
                format!("{:?}", self.output_ratio),
            ));
        }
        Ok(())
    }
}

/// The translation workload with the default knobs.
pub fn generate(params: &WorkloadParams) -> Workload {
    build(params, &TranslationConfig::default())
}

/// The translation workload with custom knobs, after checking them and the parameters.
pub fn generate_with(
    params: &WorkloadParams,
    config: &TranslationConfig,
) -> Result<Workload, WorkloadError> {
    params.validate()?;
    config.validate()?;
    Ok(build(params, config))
}

fn build(params: &WorkloadParams, config: &TranslationConfig) -> Workload {
    let process = ArrivalProcess::Gamma {
        rate_per_s: params.rate_per_s,
        cv2: config.burstiness_cv2,
    };
    let mut s = match Scaffold::new(NAME, params, config.system_prompt_tokens, process) {
        Ok(s) => s,
        Err(empty) => return empty,
    };
    let mut popularity = RotatingHotSet::new(
        s.adapters,
        config.hot_set_size,
        secs_to_ns(config.rotation_period_s),
        config.zipf_exponent,
        config.cold_fraction,
        stream_rng(params.seed, Stream::HotSets),
    );
    let (ratio_lo, ratio_hi) = config.output_ratio;
    for &start in &s.arrivals {
        let adapter = popularity.sample(&mut s.popularity, start);
        let input = uniform_u32(&mut s.lengths, config.input_tokens.0, config.input_tokens.1);
        let ratio = ratio_lo + (ratio_hi - ratio_lo) * s.lengths.random::<f64>();
        let output = (f64::from(input) * ratio).round().max(1.0) as u32;
        let mut text = s.prompts.get(adapter).to_vec();
        text.extend(random_tokens(&mut s.tokens, input));
        s.workload.sessions.push(session(
            adapter,
            start,
            vec![TurnSpec {
                think_ns: 0,
                tokens: text,
                max_new_tokens: output,
            }],
        ));
    }
    s.workload
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::tokens::SystemPrompts;
    use fastlibra_runtime::workload::{SessionSpec, SessionStart};

    fn params(rate: f64) -> WorkloadParams {
        WorkloadParams {
            rate_per_s: rate,
            duration_s: 240.0,
            seed: 4,
            ..WorkloadParams::default()
        }
    }

    /// Adapters by request count in `[from_s, to_s)`, busiest first.
    fn busiest(w: &Workload, from_s: u64, to_s: u64) -> Vec<u32> {
        let mut counts = vec![0u32; w.adapters.len()];
        for s in &w.sessions {
            let window = from_s * 1_000_000_000..to_s * 1_000_000_000;
            if matches!(s.start, SessionStart::At(t) if window.contains(&t)) {
                counts[s.adapter as usize] += 1;
            }
        }
        let mut order: Vec<u32> = (0..counts.len() as u32).collect();
        order.sort_by_key(|&a| std::cmp::Reverse(counts[a as usize]));
        order
    }

    #[test]
    fn hot_set_shifts_between_epochs() {
        let w = generate(&params(20.0));
        let first: Vec<u32> = busiest(&w, 0, 60)[..5].to_vec();
        let second: Vec<u32> = busiest(&w, 60, 120)[..5].to_vec();
        let shared = first.iter().filter(|a| second.contains(a)).count();
        assert!(shared <= 2, "{first:?} vs {second:?}");
        // Within an epoch, the hot set takes about 90 % of requests.
        let hot = &busiest(&w, 0, 60)[..10];
        let in_epoch: Vec<&SessionSpec> = w
            .sessions
            .iter()
            .filter(|s| matches!(s.start, SessionStart::At(t) if t < 60_000_000_000))
            .collect();
        let hot_share = in_epoch.iter().filter(|s| hot.contains(&s.adapter)).count() as f64
            / in_epoch.len() as f64;
        assert!(hot_share > 0.85, "{hot_share}");
    }

    #[test]
    fn requests_are_short_and_share_their_system_prompt() {
        let w = generate(&params(5.0));
        let prompts = SystemPrompts::new(4, 100, 100, 300);
        for s in &w.sessions {
            assert_eq!(s.turns.len(), 1);
            let t = &s.turns[0];
            let sys = prompts.get(s.adapter);
            assert!(t.tokens.starts_with(sys));
            let input = (t.tokens.len() - sys.len()) as u32;
            assert!((20..=100).contains(&input), "{input}");
            assert!(t.max_new_tokens >= 16 && t.max_new_tokens <= 120);
        }
    }

    #[test]
    fn arrivals_are_bursty() {
        let w = generate(&params(10.0));
        let mut per_second = vec![0u32; 240];
        for s in &w.sessions {
            if let SessionStart::At(t) = s.start {
                per_second[(t / 1_000_000_000) as usize] += 1;
            }
        }
        let mean = per_second.iter().map(|&c| f64::from(c)).sum::<f64>() / 240.0;
        let var = per_second
            .iter()
            .map(|&c| (f64::from(c) - mean).powi(2))
            .sum::<f64>()
            / 240.0;
        // Poisson counts have variance = mean; Gamma gaps with cv² 4 give about 4 × mean.
        assert!(var > 2.0 * mean, "mean {mean}, variance {var}");
    }

    #[test]
    fn bad_config_is_named() {
        let bad = TranslationConfig {
            cold_fraction: 1.5,
            ..TranslationConfig::default()
        };
        assert!(matches!(
            generate_with(&params(1.0), &bad),
            Err(WorkloadError::InvalidParam {
                field: "translation.cold_fraction",
                ..
            })
        ));
    }
}
