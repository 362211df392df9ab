//! The listener: a small tokio runtime on its own threads, hyper's HTTP/1.1 connections with
//! a header read timeout, and the shutdown sequence.
//!
//! ```text
//!  start ─► bind ─► thread "fastlibra-http" ─► accept loop ─┬─ connection ─► router
//!                                                            │
//!  SIGTERM / SIGINT / Server::stop ─────────────────────────► stop accepting, 503 to new
//!    requests ─► runtime.drain(deadline): in-flight requests finish, the rest are
//!    cancelled ─► connections close ─► the thread returns the DrainReport
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::Duration;

use fastlibra_runtime::online::{DrainReport, ServeBackend};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::options::FrontOptions;
use crate::routes;
use crate::state::AppState;

/// Time left to close connections after the runtime has drained.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The front's threads could not start.
    #[error("cannot start the HTTP threads: {0}")]
    Runtime(std::io::Error),
}

/// A running server. Drop does not stop it: call [`Server::stop`] or [`Server::join`].
pub struct Server {
    addr: SocketAddr,
    stop: Arc<Notify>,
    state: Arc<AppState>,
    thread: Option<JoinHandle<DrainReport>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// Starts serving `backend`. With `signals`, SIGTERM and SIGINT start the shutdown.
pub fn start(
    backend: Arc<dyn ServeBackend>,
    options: FrontOptions,
    signals: bool,
) -> Result<Server, ServeError> {
    let addr = options.addr;
    let listener =
        std::net::TcpListener::bind(addr).map_err(|source| ServeError::Bind { addr, source })?;
    let addr = listener
        .local_addr()
        .map_err(|source| ServeError::Bind { addr, source })?;
    listener
        .set_nonblocking(true)
        .map_err(|source| ServeError::Bind { addr, source })?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(options.threads.max(1))
        .thread_name("fastlibra-http")
        .enable_all()
        .build()
        .map_err(ServeError::Runtime)?;
    let state = Arc::new(AppState::new(backend, options));
    let stop = Arc::new(Notify::new());
    let (s, n) = (state.clone(), stop.clone());
    let thread = std::thread::Builder::new()
        .name("fastlibra-http-main".to_string())
        .spawn(move || runtime.block_on(serve(listener, s, n, signals)))
        .map_err(ServeError::Runtime)?;
    Ok(Server {
        addr,
        stop,
        state,
        thread: Some(thread),
    })
}

impl Server {
    /// Where it listens (the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Starts the shutdown (as SIGTERM does) and waits for it.
    pub fn stop(mut self) -> DrainReport {
        self.stop.notify_one();
        self.wait()
    }

    /// Waits until a signal has stopped the server.
    pub fn join(mut self) -> DrainReport {
        self.wait()
    }

    /// Whether shutdown has begun.
    pub fn is_draining(&self) -> bool {
        self.state.draining.load(Ordering::Acquire)
    }

    fn wait(&mut self) -> DrainReport {
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}

async fn serve(
    listener: std::net::TcpListener,
    state: Arc<AppState>,
    stop: Arc<Notify>,
    signals: bool,
) -> DrainReport {
    let listener = match TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(err) => {
            eprintln!("fastlibra serve: cannot accept connections: {err}");
            return DrainReport::default();
        }
    };
    let graceful = GracefulShutdown::new();
    let router = routes::router(state.clone());
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(state.options.read_timeout);
    let shutdown = async {
        tokio::select! {
            () = stop.notified() => {}
            () = crate::lifecycle::signal(signals) => {}
        }
    };
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => {
                let Ok((stream, _peer)) = accepted else { continue };
                // Each streamed token is a small write: with Nagle's algorithm on, it waits for
                // the client's (delayed, up to 40 ms) ACK of the previous one.
                let _ = stream.set_nodelay(true);
                let service = TowerToHyperService::new(router.clone());
                let conn = http.serve_connection(TokioIo::new(stream), service);
                let watched = graceful.watch(conn);
                tokio::spawn(async move {
                    // A client that resets or times out ends its connection; nothing to do.
                    let _ = watched.await;
                });
            }
        }
    }
    drop(listener);
    crate::lifecycle::drain(state, graceful, CLOSE_GRACE).await
}
