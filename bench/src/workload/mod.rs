//! Workload generators: synthetic chatbot, translation and agent workloads, and DGG call graphs.
//! Each generator returns a [`fastlibra_runtime::workload::Workload`].
//!
//! The three synthetic generators share [`WorkloadParams`] (adapter count, ranks, rate,
//! duration, seed) and each has its own knobs (`ChatbotConfig`, …) whose defaults and sources
//! are tabled in its module doc. Everything is drawn from ChaCha8 streams of the seed, so the
//! same parameters give the same workload on every machine.
//!
//! ```text
//!   WorkloadParams ─┬─ chatbot::generate      Poisson sessions, 1–16 turns, Zipf adapters
//!   (+ a config)    ├─ translation::generate  bursty one-turn requests, rotating hot set
//!                   └─ agents::generate       long tool-using sessions, moderate skew
//!                              │
//!                              ▼
//!                   Workload { adapters, sessions (by start time, SessionStart::At) }
//! ```

pub mod agents;
pub mod arrivals;
pub mod chatbot;
pub mod dgg;
pub mod error;
pub mod params;
pub mod popularity;
pub mod sample;
mod scaffold;
pub mod tokens;
pub mod translation;

#[cfg(test)]
mod tests;

use fastlibra_runtime::workload::Workload;

pub use error::WorkloadError;
pub use params::WorkloadParams;

/// The names [`by_name`] knows.
pub const SYNTHETIC_WORKLOADS: [&str; 3] = [chatbot::NAME, translation::NAME, agents::NAME];

/// The translation workload (one-turn requests) over `loras` adapters with default knobs: what
/// the overload runs put under bursts.
pub fn translation_at(
    loras: u32,
    rate_per_s: f64,
    duration_s: f64,
    seed: u64,
) -> Result<Workload, WorkloadError> {
    let params = WorkloadParams {
        lora_count: loras,
        rate_per_s,
        duration_s,
        seed,
        ..WorkloadParams::default()
    };
    by_name(translation::NAME, &params)
}

/// Generates the named synthetic workload (`chatbot`, `translation` or `agents`) with default
/// knobs, after checking the parameters. A run in which no session arrives is an error.
pub fn by_name(name: &str, params: &WorkloadParams) -> Result<Workload, WorkloadError> {
    let generate = match name {
        chatbot::NAME => chatbot::generate,
        translation::NAME => translation::generate,
        agents::NAME => agents::generate,
        _ => {
            return Err(WorkloadError::UnknownWorkload {
                name: name.to_string(),
                valid: SYNTHETIC_WORKLOADS.join(", "),
            });
        }
    };
    params.validate()?;
    let workload = generate(params);
    if workload.sessions.is_empty() {
        return Err(WorkloadError::Empty {
            name: name.to_string(),
            rate_per_s: params.rate_per_s,
            duration_s: params.duration_s,
        });
    }
    Ok(workload)
}
