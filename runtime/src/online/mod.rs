//! Serving: the real runtime taking live requests instead of replaying a workload.
//!
//! [`api`] is the interface `fastlibra serve`'s HTTP front drives ([`ServeBackend`]): submit a
//! tokenised request and read its tokens as a stream, cancel by dropping the stream, load and
//! unload adapters, read the gauges and counters for `/metrics`, drain on shutdown.
//! [`start`] builds it over the same glommio shards, engine, tiers and NVMe page files as
//! `bench --backend cpu|cuda`:
//!
//! ```text
//!  any thread                       shard s (glommio executor pinned to a core)
//!  ──────────                       ───────────────────────────────────────────
//!  submit ─ validate, route ─► bounded channel ─► engine.handle_arrival
//!                                                  pump: swaps, NVMe, forward pass
//!  RequestStream ◄─ TokenEvent ── Generation::step ◄─ logits (TokenChooser)
//!  drop(stream) ─ cancel flag + control channel ─► engine.cancel_request (pins released)
//!  load/unload_adapter ─ control channel, every shard ─► add_adapter / reload / remove
//!  snapshot ◄─ metrics slot per shard (published every 100 ms and when idle)
//! ```
//!
//! Adapter id 0 is the base model: a rank-1 adapter of zeros, whose LoRA term adds exact
//! zeros, so the base model's requests share the one code path (and a prefix tree of their
//! own). A name loaded again is a new version of its adapter: the tree gives the version a
//! new, empty subtree, so KV computed under the old weights is never served under the new.

pub mod api;
mod live;
mod metrics;
mod registry;
mod runtime;
mod shard_loop;
mod start;

pub use api::{
    AdapterError, AdapterListing, DrainReport, DurationHistogram, GenerateRequest, ModelInfo,
    RequestStream, RuntimeSnapshot, ServeBackend, ServeOptions, SubmitError, TierPages, TokenEvent,
    Usage,
};
pub use metrics::{E2E_BOUNDS_S, ENGINE_CALL_BOUNDS_S, ITL_BOUNDS_S, TTFT_BOUNDS_S};
pub use runtime::OnlineRuntime;
pub use start::{start, start_with};
