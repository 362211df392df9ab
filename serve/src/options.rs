//! The front's own settings (the runtime's are [`fastlibra_runtime::online::ServeOptions`]).

use std::net::SocketAddr;
use std::time::Duration;

/// How the HTTP front listens and what it bounds.
#[derive(Clone, Debug)]
pub struct FrontOptions {
    /// Where to listen (`--host`, `--port`; port 0 picks a free one).
    pub addr: SocketAddr,
    /// Requests to `/v1/…` must send `Authorization: Bearer KEY` (`--api-key`).
    pub api_key: Option<String>,
    /// Largest request body, bytes; larger ones get 413.
    pub body_bytes_max: usize,
    /// How long a client may take to send its headers, and then its body; a client that
    /// stalls longer loses its connection (headers) or gets 408 (body).
    pub read_timeout: Duration,
    /// Most generation requests in flight at the front (submitted and not yet answered);
    /// more get 429 with `Retry-After`.
    pub max_in_flight: u32,
    /// On SIGTERM or SIGINT, how long requests in flight may take to finish.
    pub drain_deadline: Duration,
    /// Threads of the front's tokio runtime.
    pub threads: usize,
    /// `Retry-After` seconds sent with 429 and 503.
    pub retry_after_s: u32,
}

impl Default for FrontOptions {
    fn default() -> Self {
        FrontOptions {
            addr: SocketAddr::from(([127, 0, 0, 1], 8000)),
            api_key: None,
            body_bytes_max: 4 << 20,
            read_timeout: Duration::from_secs(10),
            max_in_flight: 1024,
            drain_deadline: Duration::from_secs(30),
            threads: 2,
            retry_after_s: 1,
        }
    }
}
