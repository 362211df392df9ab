//! Shutdown: signals, then draining the runtime within a deadline, then closing connections.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use fastlibra_runtime::online::DrainReport;
use hyper_util::server::graceful::GracefulShutdown;

use crate::state::AppState;

/// Resolves on SIGTERM or SIGINT when `enabled`; never otherwise.
pub async fn signal(enabled: bool) {
    if !enabled {
        return std::future::pending().await;
    }
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        (Err(err), _) | (_, Err(err)) => {
            eprintln!("fastlibra serve: cannot watch for signals ({err}); stop it with SIGKILL");
            std::future::pending::<()>().await
        }
    }
}

/// Refuses new requests, lets the runtime finish those in flight until the deadline (it
/// cancels the rest), then gives connections `grace` to close.
pub async fn drain(
    state: Arc<AppState>,
    graceful: GracefulShutdown,
    grace: Duration,
) -> DrainReport {
    state.draining.store(true, Ordering::Release);
    let backend = state.backend.clone();
    let deadline = state.options.drain_deadline;
    let report = tokio::task::spawn_blocking(move || backend.drain(deadline))
        .await
        .unwrap_or_default();
    // Streams have ended (finished or cancelled); idle keep-alive connections close now.
    let _ = tokio::time::timeout(grace, graceful.shutdown()).await;
    report
}
