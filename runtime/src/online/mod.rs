//! Serving: the real runtime taking live requests instead of replaying a workload.
//!
//! [`api`] is the interface `fastlibra serve`'s HTTP front drives ([`ServeBackend`]): submit a
//! tokenised request and read its tokens as a stream, cancel by dropping the stream, load and
//! unload adapters, read the gauges and counters for `/metrics`, drain on shutdown.

pub mod api;

pub use api::{
    AdapterError, AdapterListing, DrainReport, DurationHistogram, GenerateRequest, ModelInfo,
    RequestStream, RuntimeSnapshot, ServeBackend, ServeOptions, SubmitError, TierPages, TokenEvent,
    Usage,
};
