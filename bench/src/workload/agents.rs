//! `agents`: few, long conversations in which an LLM agent calls tools and reads their output
//! back, turn after turn; its context grows by hundreds of tokens per turn while its own
//! answers (tool calls) stay short, so history KV reuse dominates.
//!
//! | parameter | default | where it comes from |
//! |---|---|---|
//! | session arrivals | Poisson at `rate_per_s` sessions/s | independent tasks; sessions last minutes, so rates well below 1 per second keep "few concurrent sessions" (e.g. 0.1/s) |
//! | adapter choice | Zipf, exponent 0.6, over a seeded random ranking | moderate skew: a handful of agent kinds dominate less than chat assistants (assumption) |
//! | turns per session | uniform 10–30 | multi-step agent tasks: SWE-bench-style agent trajectories run tens of steps (assumption) |
//! | system prompt | per adapter, 500–1500 tokens (uniform), first turn only | instructions plus tool descriptions (assumption) |
//! | task tokens (first turn) | log-normal, mean 100, σ 0.5, at most 1000 | a short task statement (assumption) |
//! | tool output tokens (later turns) | uniform 200–1000 | file contents, search results, command output (assumption) |
//! | output tokens per turn | log-normal, mean 50, σ 0.5, at most 256 | a tool call or short thought (assumption) |
//! | tool time between turns | exponential, mean 1 s | running the tool (assumption) |
//!
//! Every session starts at its arrival time ([`SessionStart::At`]); sessions are in arrival
//! order.

use fastlibra_runtime::workload::{TurnSpec, Workload};

use super::arrivals::ArrivalProcess;
use super::error::WorkloadError;
use super::params::WorkloadParams;
use super::popularity::{Zipf, ranking};
use super::sample::{
    LengthDist, exponential, secs_to_ns, uniform_u32, validate_non_negative, validate_range,
};
use super::scaffold::{Scaffold, session};
use super::tokens::random_tokens;

/// The generator's name.
pub const NAME: &str = "agents";

/// Knobs of the agents generator; see the module doc for the defaults' sources.
#[derive(Clone, Debug, PartialEq)]
pub struct AgentsConfig {
    /// Zipf exponent of adapter popularity. Default 0.6.
    pub zipf_exponent: f64,
    /// Range of turns per session. Default (10, 30).
    pub turns: (u32, u32),
    /// Length range of each adapter's system prompt, tokens. Default (500, 1500).
    pub system_prompt_tokens: (u32, u32),
    /// Tokens of the task statement in the first turn. Default log-normal mean 100, σ 0.5,
    /// cap 1000.
    pub task_tokens: LengthDist,
    /// Length range of a tool output (the new tokens of each later turn). Default (200, 1000).
    pub tool_output_tokens: (u32, u32),
    /// Tokens generated per turn. Default log-normal mean 50, σ 0.5, cap 256.
    pub output_tokens: LengthDist,
    /// Mean time a tool runs between an answer and the next turn, seconds. Default 1.0.
    pub tool_time_mean_s: f64,
}

impl Default for AgentsConfig {
    fn default() -> Self {
        AgentsConfig {
            zipf_exponent: 0.6,
            turns: (10, 30),
            system_prompt_tokens: (500, 1500),
            task_tokens: LengthDist {
                mean: 100.0,
                sigma: 0.5,
                max: 1000,
            },
            tool_output_tokens: (200, 1000),
            output_tokens: LengthDist {
                mean: 50.0,
                sigma: 0.5,
                max: 256,
            },
            tool_time_mean_s: 1.0,
        }
    }
}

impl AgentsConfig {
    /// Checks every knob.
    pub fn validate(&self) -> Result<(), WorkloadError> {
        validate_non_negative("agents.zipf_exponent", self.zipf_exponent)?;
        validate_range("agents.turns", self.turns)?;
        validate_range("agents.system_prompt_tokens", self.system_prompt_tokens)?;
        self.task_tokens.validate("agents.task_tokens")?;
        validate_range("agents.tool_output_tokens", self.tool_output_tokens)?;
        self.output_tokens.validate("agents.output_tokens")?;
        validate_non_negative("agents.tool_time_mean_s", self.tool_time_mean_s)
    }
}

/// The agents workload with the default knobs.
pub fn generate(params: &WorkloadParams) -> Workload {
    build(params, &AgentsConfig::default())
}

/// The agents workload with custom knobs, after checking them and the parameters.
pub fn generate_with(
    params: &WorkloadParams,
    config: &AgentsConfig,
) -> Result<Workload, WorkloadError> {
    params.validate()?;
    config.validate()?;
    Ok(build(params, config))
}

fn build(params: &WorkloadParams, config: &AgentsConfig) -> Workload {
    let process = ArrivalProcess::Poisson {
        rate_per_s: params.rate_per_s,
    };
    let mut s = match Scaffold::new(NAME, params, config.system_prompt_tokens, process) {
        Ok(s) => s,
        Err(empty) => return empty,
    };
    let order = ranking(&mut s.popularity, s.adapters);
    let zipf = Zipf::new(s.adapters as usize, config.zipf_exponent);
    let (tool_lo, tool_hi) = config.tool_output_tokens;
    for &start in &s.arrivals {
        let adapter = order[zipf.sample(&mut s.popularity)];
        let turn_count = uniform_u32(&mut s.lengths, config.turns.0, config.turns.1);
        let turns = (0..turn_count)
            .map(|i| {
                let (text, think_ns) = if i == 0 {
                    let mut text = s.prompts.get(adapter).to_vec();
                    let task = config.task_tokens.sample(&mut s.lengths);
                    text.extend(random_tokens(&mut s.tokens, task));
                    (text, 0)
                } else {
                    let output = uniform_u32(&mut s.lengths, tool_lo, tool_hi);
                    let tool_ns = secs_to_ns(exponential(&mut s.think, config.tool_time_mean_s));
                    (random_tokens(&mut s.tokens, output), tool_ns)
                };
                TurnSpec {
                    think_ns,
                    tokens: text,
                    max_new_tokens: config.output_tokens.sample(&mut s.lengths),
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

    fn params() -> WorkloadParams {
        WorkloadParams {
            rate_per_s: 0.2,
            duration_s: 300.0,
            seed: 8,
            ..WorkloadParams::default()
        }
    }

    #[test]
    fn long_sessions_with_tool_outputs_and_short_answers() {
        let w = generate(&params());
        assert!((35..90).contains(&w.sessions.len()), "{}", w.sessions.len());
        for s in &w.sessions {
            assert!((10..=30).contains(&s.turns.len()));
            let first = &s.turns[0];
            assert!(first.tokens.len() >= 501 && first.tokens.len() <= 1500 + 1000);
            for t in &s.turns[1..] {
                assert!((200..=1000).contains(&t.tokens.len()));
            }
            assert!(
                s.turns
                    .iter()
                    .all(|t| (1..=256).contains(&t.max_new_tokens))
            );
        }
        let outputs: Vec<u32> = w
            .sessions
            .iter()
            .flat_map(|s| s.turns.iter().map(|t| t.max_new_tokens))
            .collect();
        let mean = outputs.iter().map(|&o| f64::from(o)).sum::<f64>() / outputs.len() as f64;
        assert!((40.0..60.0).contains(&mean), "{mean}");
    }

    #[test]
    fn bad_config_is_named() {
        let bad = AgentsConfig {
            turns: (30, 10),
            ..AgentsConfig::default()
        };
        assert!(matches!(
            generate_with(&params(), &bad),
            Err(WorkloadError::InvalidParam {
                field: "agents.turns",
                ..
            })
        ));
    }
}
