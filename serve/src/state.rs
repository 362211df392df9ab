//! What every handler shares.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use fastlibra_runtime::online::ServeBackend;
use tokio::sync::Semaphore;

use crate::metrics::Metrics;
use crate::options::FrontOptions;

/// The front's state: the runtime, the settings, the metrics and the bounds.
pub struct AppState {
    /// The serving runtime.
    pub backend: Arc<dyn ServeBackend>,
    /// The front's settings.
    pub options: FrontOptions,
    /// What `/metrics` shows.
    pub metrics: Arc<Metrics>,
    /// One permit per generation request in flight.
    pub slots: Arc<Semaphore>,
    /// Set on SIGTERM/SIGINT: new generation requests get 503.
    pub draining: AtomicBool,
    next_id: AtomicU64,
}

impl AppState {
    /// The state of a front over `backend`.
    pub fn new(backend: Arc<dyn ServeBackend>, options: FrontOptions) -> Self {
        AppState {
            metrics: Arc::new(Metrics::new(backend.clone())),
            slots: Arc::new(Semaphore::new(options.max_in_flight as usize)),
            backend,
            options,
            draining: AtomicBool::new(false),
            next_id: AtomicU64::new(1),
        }
    }

    /// A fresh response id, `prefix-N`.
    pub fn response_id(&self, prefix: &str) -> String {
        format!("{prefix}-{}", self.next_id.fetch_add(1, Ordering::Relaxed))
    }

    /// Whether shutdown has begun.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
