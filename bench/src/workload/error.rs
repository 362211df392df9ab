//! What can be wrong when asking for a synthetic workload.

/// Errors of the workload generators.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WorkloadError {
    /// No generator has this name.
    #[error("unknown workload `{name}`; valid names: {valid}")]
    UnknownWorkload {
        /// The name asked for.
        name: String,
        /// The valid names, comma-separated.
        valid: String,
    },
    /// A parameter has a value that makes no sense.
    #[error("workload parameter `{field}` must be {requirement}, got {value}")]
    InvalidParam {
        /// The parameter, e.g. `rate_per_s` or `chatbot.mean_turns`.
        field: &'static str,
        /// What it must be.
        requirement: &'static str,
        /// What it was.
        value: String,
    },
    /// The run is too short (or the rate too low) for a single session to arrive.
    #[error(
        "workload `{name}` has no session: none arrives in {duration_s} s at {rate_per_s} per second"
    )]
    Empty {
        /// The generator.
        name: String,
        /// The arrival rate asked for.
        rate_per_s: f64,
        /// The duration asked for.
        duration_s: f64,
    },
    /// The run would hold more sessions than a generator produces in one go.
    #[error("workload would hold about {expected} sessions; at most {max} are generated")]
    TooLarge {
        /// `rate × duration`, rounded.
        expected: u64,
        /// The limit ([`super::params::MAX_SESSIONS`]).
        max: u64,
    },
}

/// Shorthand for an [`WorkloadError::InvalidParam`].
pub(crate) fn invalid(
    field: &'static str,
    requirement: &'static str,
    value: impl ToString,
) -> WorkloadError {
    WorkloadError::InvalidParam {
        field,
        requirement,
        value: value.to_string(),
    }
}
