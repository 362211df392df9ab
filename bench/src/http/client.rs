//! The HTTP side: one pooled hyper client, `GET`s for `/v1/models` and `/health`, and one
//! streamed completion read chunk by chunk with a timeout on every wait.
//!
//! ```text
//!   POST /v1/completions ──► status? ── non-2xx ──► Ending::Status
//!                              │ 2xx, text/event-stream? ── no ──► Ending::NotSse
//!                              ▼
//!   body frames ─► SseParser ─► `data:` JSON chunks ─► first token, gaps, text, ids
//!                              │ `[DONE]` ──► Ending::Answered
//!                              │ silence > timeout ──► Ending::Timeout
//!                              └ error / EOF before [DONE] ──► Ending::BrokenStream
//! ```

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::Client as Pool;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use super::accounting::Ending;
use super::openai::{Chunk, ChunkError, parse_chunk, truncate};
use super::sse::{SseEvent, SseParser};

/// Most bytes of a non-streamed answer read (`/v1/models`, error bodies).
const MAX_BODY_BYTES: usize = 4 << 20;

/// Why a URL cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum UrlError {
    /// Not an `http://host:port` URL.
    #[error("--url {url}: {why} (give http://HOST:PORT, e.g. http://127.0.0.1:8000)")]
    Bad {
        /// The URL given.
        url: String,
        /// What is wrong.
        why: String,
    },
}

/// A client of one server.
#[derive(Clone)]
pub struct Client {
    pool: Pool<HttpConnector, Full<Bytes>>,
    base: String,
    api_key: Option<String>,
    timeout: Duration,
}

/// What one streamed completion produced. Times are ns on the run's clock.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Streamed {
    /// First chunk with text.
    pub first_token_ns: Option<u64>,
    /// Gaps between text chunks, ns.
    pub gaps_ns: Vec<u64>,
    /// Text chunks received.
    pub chunks: u32,
    /// The server's `usage.completion_tokens`, where sent.
    pub completion_tokens: Option<u32>,
    /// The answer's text.
    pub text: String,
    /// The answer's token ids, where the server sent them.
    pub token_ids: Vec<u32>,
    /// When it ended.
    pub finish_ns: u64,
    /// How it ended (`None` only while running).
    pub ending: Option<Ending>,
}

impl Client {
    /// A client of the server at `url` (`http://host:port`, an optional path prefix kept);
    /// `timeout` bounds every wait (connect, headers, each chunk).
    pub fn new(url: &str, api_key: Option<String>, timeout: Duration) -> Result<Client, UrlError> {
        let bad = |why: &str| UrlError::Bad {
            url: url.to_string(),
            why: why.to_string(),
        };
        let uri: Uri = url.parse().map_err(|_| bad("not a URL"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => return Err(bad("https is not supported; use plain http")),
            _ => return Err(bad("no http:// scheme")),
        }
        if uri.host().is_none() {
            return Err(bad("no host"));
        }
        if uri.query().is_some() {
            return Err(bad("a query string is not allowed"));
        }
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(timeout));
        connector.set_nodelay(true);
        let pool = Pool::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Ok(Client {
            pool,
            base: url.trim_end_matches('/').to_string(),
            api_key,
            timeout,
        })
    }

    /// The base URL, without a trailing `/`.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn request(&self, method: Method, path: &str, body: Option<&Value>) -> Request<Full<Bytes>> {
        let mut b = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if let Some(key) = &self.api_key {
            b = b.header("authorization", format!("Bearer {key}"));
        }
        let body = match body {
            Some(v) => {
                b = b.header("content-type", "application/json");
                Full::new(Bytes::from(v.to_string()))
            }
            None => Full::new(Bytes::new()),
        };
        b.body(body)
            .expect("method, a checked base URL plus a fixed path, and ASCII headers are valid")
    }

    async fn send(&self, req: Request<Full<Bytes>>) -> Result<Response<Incoming>, Ending> {
        match tokio::time::timeout(self.timeout, self.pool.request(req)).await {
            Err(_) => Err(Ending::Timeout),
            Ok(Err(e)) if e.is_connect() => Err(Ending::Connect(error_chain(&e))),
            Ok(Err(e)) => Err(Ending::BrokenStream(error_chain(&e))),
            Ok(Ok(r)) => Ok(r),
        }
    }

    /// `GET path` (or `POST` with a JSON `body`): the status and the body as text (at most
    /// 4 MiB), or why it failed.
    pub async fn call(
        &self,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(StatusCode, String), String> {
        let method = if body.is_some() {
            Method::POST
        } else {
            Method::GET
        };
        let resp = self
            .send(self.request(method, path, body))
            .await
            .map_err(|e| e.describe())?;
        let status = resp.status();
        let body = tokio::time::timeout(
            self.timeout,
            Limited::new(resp.into_body(), MAX_BODY_BYTES).collect(),
        )
        .await
        .map_err(|_| "timed out reading the body".to_string())?
        .map_err(|e| format!("reading the body: {e}"))?;
        Ok((
            status,
            String::from_utf8_lossy(&body.to_bytes()).into_owned(),
        ))
    }

    /// Streams one completion: `POST path` with `body`, read to `[DONE]`. `now_ns` is the
    /// run's clock; `on_first` runs once, at the first text chunk.
    pub async fn stream(
        &self,
        path: &str,
        body: &Value,
        start: Instant,
        mut on_first: impl FnMut(u64),
    ) -> Streamed {
        let now_ns = || start.elapsed().as_nanos() as u64;
        let mut s = Streamed::default();
        let ending = match self
            .send(self.request(Method::POST, path, Some(body)))
            .await
        {
            Err(e) => e,
            Ok(resp) => self.read_stream(resp, &mut s, &now_ns, &mut on_first).await,
        };
        s.finish_ns = now_ns();
        s.ending = Some(ending);
        s
    }

    async fn read_stream(
        &self,
        resp: Response<Incoming>,
        s: &mut Streamed,
        now_ns: &impl Fn() -> u64,
        on_first: &mut impl FnMut(u64),
    ) -> Ending {
        if !resp.status().is_success() {
            return Ending::Status(resp.status().as_u16());
        }
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        if !content_type.starts_with("text/event-stream") {
            return Ending::NotSse(format!("content-type `{content_type}`"));
        }
        let mut body = resp.into_body();
        let mut parser = SseParser::new();
        let mut events: Vec<SseEvent> = Vec::new();
        let mut finished = false;
        let mut last_ns = 0;
        loop {
            let frame = match tokio::time::timeout(self.timeout, body.frame()).await {
                Err(_) => return Ending::Timeout,
                Ok(None) if finished && !parser.has_partial() => return Ending::Answered,
                Ok(None) => return Ending::BrokenStream("the body ended before [DONE]".into()),
                Ok(Some(Err(e))) => return Ending::BrokenStream(error_chain(&e)),
                Ok(Some(Ok(frame))) => frame,
            };
            let Some(data) = frame.data_ref() else {
                continue;
            };
            if let Err(e) = parser.feed(data, &mut events) {
                return Ending::NotSse(e.to_string());
            }
            for event in events.drain(..) {
                if event.data.trim() == "[DONE]" {
                    return Ending::Answered;
                }
                let chunk = match parse_chunk(&event.data) {
                    Ok(c) if event.event.as_deref() != Some("error") => c,
                    Ok(_) => return Ending::StreamError(truncate(&event.data)),
                    Err(ChunkError::NotJson(m)) => return Ending::NotSse(m),
                    Err(ChunkError::ServerError(m)) => return Ending::StreamError(m),
                };
                finished |= chunk.finished;
                take_chunk(s, chunk, now_ns(), &mut last_ns, on_first);
            }
        }
    }
}

/// Adds one chunk's text, ids and timing to `s`.
fn take_chunk(
    s: &mut Streamed,
    chunk: Chunk,
    now_ns: u64,
    last_ns: &mut u64,
    on_first: &mut impl FnMut(u64),
) {
    if chunk.completion_tokens.is_some() {
        s.completion_tokens = chunk.completion_tokens;
    }
    if chunk.text.is_empty() && chunk.token_ids.is_empty() {
        return;
    }
    match s.first_token_ns {
        None => {
            s.first_token_ns = Some(now_ns);
            on_first(now_ns);
        }
        Some(_) => s.gaps_ns.push(now_ns.saturating_sub(*last_ns)),
    }
    *last_ns = now_ns;
    s.chunks += 1;
    s.text.push_str(&chunk.text);
    s.token_ids.extend(chunk.token_ids);
}

/// An error and its sources, one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked() {
        let t = Duration::from_secs(1);
        assert!(Client::new("http://127.0.0.1:8000", None, t).is_ok());
        let c = Client::new("http://127.0.0.1:8000/", None, t).expect("ok");
        assert_eq!(c.base(), "http://127.0.0.1:8000");
        for bad in [
            "127.0.0.1:8000",
            "https://x:1",
            "ftp://x",
            "http://x:1/?a=b",
            "::",
        ] {
            assert!(Client::new(bad, None, t).is_err(), "{bad}");
        }
    }
}
