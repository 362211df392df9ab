//! What every synthetic generator starts from: the workload's adapters, one system prompt per
//! adapter, the session arrival times and the seeded random streams — so that each generator
//! only says how it picks adapters and shapes turns.

use fastlibra_runtime::workload::{SessionSpec, SessionStart, TurnSpec, Workload};
use rand_chacha::ChaCha8Rng;

use super::arrivals::ArrivalProcess;
use super::params::{MAX_SESSIONS, WorkloadParams};
use super::sample::{Stream, stream_rng};
use super::tokens::SystemPrompts;

/// A workload under construction, with the streams its generator draws from.
pub(crate) struct Scaffold {
    pub(crate) workload: Workload,
    /// Number of adapters (at least one).
    pub(crate) adapters: u32,
    pub(crate) prompts: SystemPrompts,
    /// Session start times, ns, ascending.
    pub(crate) arrivals: Vec<u64>,
    pub(crate) popularity: ChaCha8Rng,
    pub(crate) lengths: ChaCha8Rng,
    pub(crate) tokens: ChaCha8Rng,
    pub(crate) think: ChaCha8Rng,
}

impl Scaffold {
    /// The scaffold of workload `name`; `Err` holds the (empty) workload when `params` define
    /// no adapter, so there is nothing to generate.
    pub(crate) fn new(
        name: &str,
        params: &WorkloadParams,
        system_prompt_tokens: (u32, u32),
        process: ArrivalProcess,
    ) -> Result<Scaffold, Workload> {
        let adapters = params.adapters();
        let n = adapters.len() as u32;
        let workload = Workload {
            name: name.to_string(),
            adapters,
            sessions: Vec::new(),
        };
        if n == 0 {
            return Err(workload);
        }
        let seed = params.seed;
        let (lo, hi) = system_prompt_tokens;
        Ok(Scaffold {
            workload,
            adapters: n,
            prompts: SystemPrompts::new(seed, n, lo, hi),
            arrivals: process.times_ns(
                &mut stream_rng(seed, Stream::Arrivals),
                params.duration_ns(),
                MAX_SESSIONS as usize,
            ),
            popularity: stream_rng(seed, Stream::Popularity),
            lengths: stream_rng(seed, Stream::Lengths),
            tokens: stream_rng(seed, Stream::Tokens),
            think: stream_rng(seed, Stream::Think),
        })
    }
}

/// A session of `adapter` starting at `start_ns`.
pub(crate) fn session(adapter: u32, start_ns: u64, turns: Vec<TurnSpec>) -> SessionSpec {
    SessionSpec {
        adapter,
        start: SessionStart::At(start_ns),
        turns,
    }
}
