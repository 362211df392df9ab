//! Parts shared by the endpoints: errors, usage, stop strings, stream options.

use serde::{Deserialize, Serialize};

/// An error answer: `{"error": {...}}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// For a person.
    pub message: String,
    /// The error's class (`BadRequestError`, `NotFoundError`, …).
    #[serde(rename = "type")]
    pub kind: String,
    /// The request field at fault, or null.
    pub param: Option<String>,
    /// The HTTP status.
    pub code: u16,
}

/// Token counts of a finished request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UsageBody {
    /// Prompt tokens.
    pub prompt_tokens: u32,
    /// Generated tokens.
    pub completion_tokens: u32,
    /// Their sum.
    pub total_tokens: u32,
    /// Prompt tokens served from the prefix cache.
    pub prompt_tokens_details: UsageDetails,
}

/// The prompt's cached part.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UsageDetails {
    /// Prompt tokens whose KV came from the cache.
    pub cached_tokens: u32,
}

impl From<fastlibra_runtime::online::Usage> for UsageBody {
    fn from(u: fastlibra_runtime::online::Usage) -> Self {
        UsageBody {
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
            total_tokens: u.prompt_tokens + u.completion_tokens,
            prompt_tokens_details: UsageDetails {
                cached_tokens: u.cached_tokens,
            },
        }
    }
}

/// `stop`: one string or several.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Stop {
    /// One stop string.
    One(String),
    /// Several.
    Many(Vec<String>),
}

impl Stop {
    /// The strings, as a list.
    pub fn into_vec(self) -> Vec<String> {
        match self {
            Stop::One(s) => vec![s],
            Stop::Many(v) => v,
        }
    }
}

/// `stream_options`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct StreamOptions {
    /// Send a last chunk with `usage` (and no choices) before `[DONE]`.
    #[serde(default)]
    pub include_usage: bool,
}
