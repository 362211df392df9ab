//! `chatbot`: multi-turn conversations with skewed adapter popularity, like a public chat
//! service where each adapter is a fine-tuned assistant.
//!
//! | parameter | default | where it comes from |
//! |---|---|---|
//! | session arrivals | Poisson at `rate_per_s` sessions/s | independent users |
//! | adapter choice | Zipf, exponent 1.0, over a seeded random ranking | S-LoRA's synthetic workloads draw adapters from a power law; 1.0 is the classic Zipf law (assumption for the exponent) |
//! | turns per session | geometric, mean 3, at most 16 | LMSYS-Chat-1M (Zheng et al., ICLR 2024, arXiv 2309.11998, Table 1) reports 2.0 turns per conversation on average; we default to 3 so that history reuse, the effect under study, shows; set `mean_turns = 2.0` to match LMSYS |
//! | user tokens per turn | log-normal, mean 69.5, σ 1.0, at most 2048 | LMSYS-Chat-1M Table 1: 69.5 tokens per prompt on average (σ is our assumption: heavy tail) |
//! | response tokens per turn | log-normal, mean 214.5, σ 0.8, at most 2048 | LMSYS-Chat-1M Table 1: 214.5 tokens per response on average (σ assumed) |
//! | think time between turns | exponential, mean 5 s | assumption: reading an answer and typing a short question |
//! | system prompt | per adapter, 32–128 tokens (uniform), prepended to the first turn | assumption: a short persona prompt per fine-tuned assistant |
//!
//! Every session starts at its arrival time ([`SessionStart::At`]); sessions are in arrival
//! order.

use fastlibra_runtime::workload::{TurnSpec, Workload};

use super::arrivals::ArrivalProcess;
use super::error::WorkloadError;
use super::params::WorkloadParams;
use super::popularity::{Zipf, ranking};
use super::sample::{
    LengthDist, exponential, geometric, secs_to_ns, validate_non_negative, validate_positive,
    validate_range,
};
use super::scaffold::{Scaffold, session};
use super::tokens::random_tokens;

/// The generator's name.
pub const NAME: &str = "chatbot";

/// Knobs of the chatbot generator; see the module doc for the defaults' sources.
#[derive(Clone, Debug, PartialEq)]
pub struct ChatbotConfig {
    /// Zipf exponent of adapter popularity. Default 1.0.
    pub zipf_exponent: f64,
    /// Mean turns per session (geometric). Default 3.0.
    pub mean_turns: f64,
    /// Most turns in a session. Default 16.
    pub max_turns: u32,
    /// User tokens per turn. Default log-normal mean 69.5, σ 1.0, cap 2048.
    pub user_tokens: LengthDist,
    /// Tokens generated per turn. Default log-normal mean 214.5, σ 0.8, cap 2048.
    pub response_tokens: LengthDist,
    /// Mean think time between an answer and the next turn, seconds. Default 5.0.
    pub think_time_mean_s: f64,
    /// Length range of each adapter's system prompt, tokens. Default (32, 128).
    pub system_prompt_tokens: (u32, u32),
}

impl Default for ChatbotConfig {
    fn default() -> Self {
        ChatbotConfig {
            zipf_exponent: 1.0,
            mean_turns: 3.0,
            max_turns: 16,
            user_tokens: LengthDist {
                mean: 69.5,
                sigma: 1.0,
                max: 2048,
            },
            response_tokens: LengthDist {
                mean: 214.5,
                sigma: 0.8,
                max: 2048,
            },
            think_time_mean_s: 5.0,
            system_prompt_tokens: (32, 128),
        }
    }
}

impl ChatbotConfig {
    /// Checks every knob.
    pub fn validate(&self) -> Result<(), WorkloadError> {
        validate_non_negative("chatbot.zipf_exponent", self.zipf_exponent)?;
        validate_positive("chatbot.mean_turns", self.mean_turns)?;
        if self.max_turns == 0 {
            return Err(super::error::invalid(
                "chatbot.max_turns",
                "positive",
                self.max_turns,
            ));
        }
        self.user_tokens.validate("chatbot.user_tokens")?;
        self.response_tokens.validate("chatbot.response_tokens")?;
        validate_non_negative("chatbot.think_time_mean_s", self.think_time_mean_s)?;
        validate_range("chatbot.system_prompt_tokens", self.system_prompt_tokens)
    }
}

/// The chatbot workload with the default knobs.
pub fn generate(params: &WorkloadParams) -> Workload {
    build(params, &ChatbotConfig::default())
}

/// The chatbot workload with custom knobs, after checking them and the parameters.
pub fn generate_with(
    params: &WorkloadParams,
    config: &ChatbotConfig,
) -> Result<Workload, WorkloadError> {
    params.validate()?;
    config.validate()?;
    Ok(build(params, config))
}

fn build(params: &WorkloadParams, config: &ChatbotConfig) -> Workload {
    let process = ArrivalProcess::Poisson {
        rate_per_s: params.rate_per_s,
    };
    let mut s = match Scaffold::new(NAME, params, config.system_prompt_tokens, process) {
        Ok(s) => s,
        Err(empty) => return empty,
    };
    let order = ranking(&mut s.popularity, s.adapters);
    let zipf = Zipf::new(s.adapters as usize, config.zipf_exponent);
    for &start in &s.arrivals {
        let adapter = order[zipf.sample(&mut s.popularity)];
        let turn_count = geometric(&mut s.lengths, config.mean_turns, config.max_turns);
        let turns = (0..turn_count)
            .map(|i| {
                let user = config.user_tokens.sample(&mut s.lengths);
                let mut text = if i == 0 {
                    s.prompts.get(adapter).to_vec()
                } else {
                    Vec::new()
                };
                text.extend(random_tokens(&mut s.tokens, user));
                TurnSpec {
                    think_ns: if i == 0 {
                        0
                    } else {
                        secs_to_ns(exponential(&mut s.think, config.think_time_mean_s))
                    },
                    tokens: text,
                    max_new_tokens: config.response_tokens.sample(&mut s.lengths),
                }
            })
            .collect();
        s.workload.sessions.push(session(adapter, start, turns));
    }
    s.workload
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::tokens::SystemPrompts;

    fn params(rate: f64, seed: u64) -> WorkloadParams {
        WorkloadParams {
            rate_per_s: rate,
            duration_s: 200.0,
            seed,
            ..WorkloadParams::default()
        }
    }

    #[test]
    fn shape_matches_the_defaults() {
        let w = generate(&params(2.0, 1));
        let sessions = w.sessions.len() as f64;
        assert!((340.0..460.0).contains(&sessions), "{sessions}");
        let turns: usize = w.sessions.iter().map(|s| s.turns.len()).sum();
        let mean_turns = turns as f64 / sessions;
        assert!((2.6..3.4).contains(&mean_turns), "{mean_turns}");
        let responses: Vec<u32> = w
            .sessions
            .iter()
            .flat_map(|s| s.turns.iter().map(|t| t.max_new_tokens))
            .collect();
        let mean = responses.iter().map(|&r| f64::from(r)).sum::<f64>() / responses.len() as f64;
        assert!((180.0..250.0).contains(&mean), "{mean}");
        for s in &w.sessions {
            assert!(s.turns.len() <= 16 && !s.turns.is_empty());
            assert_eq!(s.turns[0].think_ns, 0);
            // The first turn starts with the adapter's system prompt.
            let prompt = SystemPrompts::new(1, 100, 32, 128);
            assert!(s.turns[0].tokens.starts_with(prompt.get(s.adapter)));
            for t in &s.turns {
                assert!((1..=2048).contains(&t.max_new_tokens));
                assert!(!t.tokens.is_empty() && t.tokens.len() <= 128 + 2048);
            }
        }
    }

    #[test]
    fn popularity_is_skewed() {
        let w = generate(&params(5.0, 2));
        let mut counts = vec![0u32; 100];
        for s in &w.sessions {
            counts[s.adapter as usize] += 1;
        }
        counts.sort_unstable_by(|a, b| b.cmp(a));
        let top10: u32 = counts[..10].iter().sum();
        // Zipf(1.0) over 100: the top 10 ranks take H_10 / H_100 ≈ 56 % of sessions.
        let share = f64::from(top10) / w.sessions.len() as f64;
        assert!((0.48..0.64).contains(&share), "{share}");
        let flat = generate_with(
            &params(5.0, 2),
            &ChatbotConfig {
                zipf_exponent: 0.0,
                ..ChatbotConfig::default()
            },
        )
        .expect("valid");
        let mut counts = vec![0u32; 100];
        for s in &flat.sessions {
            counts[s.adapter as usize] += 1;
        }
        counts.sort_unstable_by(|a, b| b.cmp(a));
        let top10: u32 = counts[..10].iter().sum();
        assert!(f64::from(top10) / (flat.sessions.len() as f64) < 0.2);
    }

    #[test]
    fn bad_config_is_named() {
        let bad = ChatbotConfig {
            mean_turns: 0.0,
            ..ChatbotConfig::default()
        };
        match generate_with(&params(1.0, 0), &bad) {
            Err(WorkloadError::InvalidParam { field, .. }) => {
                assert_eq!(field, "chatbot.mean_turns")
            }
            other => panic!("{other:?}"),
        }
    }
}
