//! What a workload is, as the engine's drivers see it: adapters, and sessions of turns.
//!
//! A *session* is one conversation with one adapter. Its first turn starts at a fixed time or
//! after a turn of another session has answered (call graphs: a call starts after its caller's
//! response); each later turn arrives `think_ns` after the previous turn of the same session has
//! answered and extends that conversation (its prompt is the whole history plus the new tokens),
//! which is what makes history KV reusable. Generators of workloads live in `fastlibra-bench`;
//! the drivers (simulator, CPU and CUDA runtimes) replay a `Workload` against the engine core.

use serde::{Deserialize, Serialize};

/// One LoRA adapter of a workload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdapterSpec {
    /// Adapter name, unique within the workload.
    pub name: String,
    /// LoRA rank.
    pub rank: u32,
}

/// When a session's first turn arrives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SessionStart {
    /// At a fixed time, in nanoseconds from the start of the run.
    At(u64),
    /// `delay_ns` after turn `turn` of session `session` (an index into `Workload::sessions`,
    /// always smaller than this session's own index) has produced its last token.
    After {
        /// Index of the session whose turn must answer first.
        session: u32,
        /// Index of that session's turn.
        turn: u32,
        /// Extra delay (for example a cache or database call on the way), in nanoseconds.
        delay_ns: u64,
    },
}

/// One turn of a session: new user tokens and how many tokens to generate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TurnSpec {
    /// Delay between the previous turn's answer and this turn's arrival, in nanoseconds
    /// (ignored for the first turn, whose arrival is the session's start).
    pub think_ns: u64,
    /// New prompt tokens of this turn. For the first turn this includes any shared system
    /// prompt; later turns are appended to the history (previous prompts and answers).
    pub tokens: Vec<u32>,
    /// Number of tokens to generate.
    pub max_new_tokens: u32,
}

/// One conversation with one adapter.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionSpec {
    /// Index into `Workload::adapters`.
    pub adapter: u32,
    /// When the first turn arrives.
    pub start: SessionStart,
    /// The turns, in order (at least one).
    pub turns: Vec<TurnSpec>,
}

/// A complete, replayable workload.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workload {
    /// Name of the generator that made it (for reports).
    pub name: String,
    /// The adapters the sessions refer to.
    pub adapters: Vec<AdapterSpec>,
    /// Sessions, ordered so that a dependent session comes after the one it waits for.
    pub sessions: Vec<SessionSpec>,
}
