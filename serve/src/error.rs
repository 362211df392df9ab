//! The one error type of the HTTP front: each failure maps to one status and an OpenAI-style
//! body, `{"error": {"message", "type", "param", "code"}}` (`code` is the status, as vLLM sends).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use fastlibra_runtime::online::{AdapterError, SubmitError};

use crate::protocol::{ErrorBody, ErrorDetail};

/// A request refused or failed, with what the client is told.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{status}: {message}")]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// What went wrong, for a person.
    pub message: String,
    /// The request field at fault, when one is.
    pub param: Option<String>,
    /// Seconds the client should wait before retrying (`Retry-After`), for 429 and 503.
    pub retry_after_s: Option<u32>,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            param: None,
            retry_after_s: None,
        }
    }

    /// 400: a field is missing, mistyped or out of range.
    pub fn bad_request(param: Option<&str>, message: impl Into<String>) -> Self {
        ApiError {
            param: param.map(str::to_string),
            ..Self::new(StatusCode::BAD_REQUEST, message)
        }
    }

    /// 404: no such model or adapter (vLLM's answer for an unknown `model`).
    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError {
            param: Some("model".to_string()),
            ..Self::new(StatusCode::NOT_FOUND, message)
        }
    }

    /// 401: the API key is missing or wrong.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "missing or wrong API key; send `Authorization: Bearer KEY`",
        )
    }

    /// 413: the body is over the limit.
    pub fn too_large(limit_bytes: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body is over the limit of {limit_bytes} bytes"),
        )
    }

    /// 408: the body did not arrive in time.
    pub fn timeout(after_s: f64) -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            format!("the request body did not arrive within {after_s} s"),
        )
    }

    /// 429: too many requests in flight at the front; retry after `retry_after_s`.
    pub fn too_many(in_flight: u32, retry_after_s: u32) -> Self {
        ApiError {
            retry_after_s: Some(retry_after_s),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!("{in_flight} requests are already in flight; retry in {retry_after_s} s"),
            )
        }
    }

    /// 503: the server is draining or overloaded.
    pub fn unavailable(message: impl Into<String>, retry_after_s: Option<u32>) -> Self {
        ApiError {
            retry_after_s,
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, message)
        }
    }

    /// 500: the runtime failed.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    /// The `type` field: the exception name the OpenAI Python client would raise.
    pub fn kind(&self) -> &'static str {
        match self.status {
            StatusCode::BAD_REQUEST => "BadRequestError",
            StatusCode::UNAUTHORIZED => "AuthenticationError",
            StatusCode::NOT_FOUND => "NotFoundError",
            StatusCode::REQUEST_TIMEOUT => "TimeoutError",
            StatusCode::PAYLOAD_TOO_LARGE => "RequestTooLargeError",
            StatusCode::TOO_MANY_REQUESTS => "RateLimitError",
            StatusCode::SERVICE_UNAVAILABLE => "ServiceUnavailableError",
            _ => "InternalServerError",
        }
    }

    /// The OpenAI-style body.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                message: self.message.clone(),
                kind: self.kind().to_string(),
                param: self.param.clone(),
                code: self.status.as_u16(),
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body())).into_response();
        if let Some(s) = self.retry_after_s {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        response
    }
}

impl From<SubmitError> for ApiError {
    fn from(err: SubmitError) -> Self {
        let message = err.to_string();
        match err {
            SubmitError::UnknownAdapter(_) => ApiError::not_found(message),
            SubmitError::TooLong { .. } => ApiError::bad_request(Some("max_tokens"), message),
            SubmitError::Invalid(_) => ApiError::bad_request(None, message),
            SubmitError::Overloaded { retry_after_s, .. } => {
                ApiError::unavailable(message, Some(retry_after_s.max(1)))
            }
            SubmitError::ShuttingDown | SubmitError::ShardFailed { .. } => {
                ApiError::unavailable(message, None)
            }
        }
    }
}

impl From<AdapterError> for ApiError {
    fn from(err: AdapterError) -> Self {
        let message = err.to_string();
        match err {
            AdapterError::NotFound(_) => ApiError {
                param: Some("lora_name".to_string()),
                ..ApiError::new(StatusCode::NOT_FOUND, message)
            },
            AdapterError::BadName { .. } => ApiError::bad_request(Some("lora_name"), message),
            AdapterError::Invalid { .. } => ApiError::bad_request(Some("lora_path"), message),
            AdapterError::Runtime(_) => ApiError::internal(message),
        }
    }
}
