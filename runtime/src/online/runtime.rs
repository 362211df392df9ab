//! The serving runtime as the front sees it: [`OnlineRuntime`], the [`ServeBackend`] over the
//! glommio shards. Every call takes only short locks (the adapter registry, a shard's metrics
//! slot) and never waits on a shard's computation, except the adapter calls and `drain`,
//! which block until every shard has answered.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use fastlibra_kernels::cpu::CpuModelConfig;
use fastlibra_kernels::sampling::Generation;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::mpsc::{Sender, UnboundedSender};

use super::api::{
    AdapterError, AdapterListing, DrainReport, GenerateRequest, ModelInfo, RequestStream,
    RuntimeSnapshot, ServeBackend, SubmitError,
};
use super::live::Submitted;
use super::metrics::Published;
use super::registry::Registry;
use super::shard_loop::Control;
use crate::real::SourceAdapter;
use crate::real::device::DeviceChoice;
use crate::real::router::Router;
use crate::real::spill::SpillDir;

/// How long an adapter call waits for the shards' answers.
const ADAPTER_REPLY_TIMEOUT: Duration = Duration::from_secs(60);

/// Request counts shared by the front and the shards (atomics, no lock).
#[derive(Debug)]
pub(crate) struct Counters {
    /// Requests submitted that have produced no token yet.
    waiting: AtomicU64,
    /// Requests submitted and not yet ended.
    in_flight: AtomicU64,
    /// Requests in hand per shard (for the router's load-aware spill).
    loads: Vec<AtomicU32>,
    /// Why each shard stopped serving (it panicked or its engine failed); set once.
    failures: Vec<OnceLock<String>>,
    next_id: AtomicU64,
}

impl Counters {
    pub(crate) fn new(shards: usize) -> Counters {
        Counters {
            waiting: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            loads: (0..shards).map(|_| AtomicU32::new(0)).collect(),
            failures: (0..shards).map(|_| OnceLock::new()).collect(),
            next_id: AtomicU64::new(1),
        }
    }

    fn enter(&self, shard: usize) {
        self.waiting.fetch_add(1, Ordering::AcqRel);
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.loads[shard].fetch_add(1, Ordering::AcqRel);
    }

    /// Request of `shard` produced its first token.
    pub(crate) fn started(&self, _shard: usize) {
        self.waiting.fetch_sub(1, Ordering::AcqRel);
    }

    /// Request of `shard` ended (`still_waiting`: before its first token).
    pub(crate) fn leave(&self, shard: usize, still_waiting: bool) {
        if still_waiting {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
        }
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.loads[shard].fetch_sub(1, Ordering::AcqRel);
    }

    /// Shard `shard` stopped serving, for `why` (the first reason is kept).
    pub(crate) fn fail(&self, shard: usize, why: String) {
        let _ = self.failures[shard].set(why);
    }

    /// Why shard `shard` stopped serving, if it did.
    pub(crate) fn failure(&self, shard: usize) -> Option<&str> {
        self.failures[shard].get().map(String::as_str)
    }

    fn loads(&self) -> Vec<u32> {
        self.loads
            .iter()
            .map(|l| l.load(Ordering::Acquire))
            .collect()
    }
}

/// One shard as the front reaches it.
pub(crate) struct ShardLink {
    pub(crate) requests: Sender<Submitted>,
    pub(crate) control: UnboundedSender<Control>,
}

/// The serving runtime. Built by [`super::start`].
pub struct OnlineRuntime {
    pub(crate) info: ModelInfo,
    pub(crate) model: CpuModelConfig,
    pub(crate) page_bytes: u64,
    pub(crate) device: DeviceChoice,
    pub(crate) links: Vec<ShardLink>,
    pub(crate) router: Router,
    pub(crate) counters: Arc<Counters>,
    pub(crate) published: Arc<Published>,
    pub(crate) registry: Mutex<Registry>,
    /// Serialises adapter loads and unloads, so every shard registers in the same order.
    pub(crate) adapter_lock: Mutex<()>,
    pub(crate) max_waiting: u64,
    pub(crate) draining: AtomicBool,
    pub(crate) threads: Mutex<Vec<glommio::ExecutorJoinHandle<()>>>,
    /// The NVMe page files' folder; a temporary one is removed when the runtime goes.
    pub(crate) _spill: SpillDir,
}

impl std::fmt::Debug for OnlineRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnlineRuntime")
            .field("model", &self.info.served_name)
            .field("shards", &self.links.len())
            .finish()
    }
}

fn now_unix_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl OnlineRuntime {
    /// The adapter id serving `name` (`None`: the base model, id 0).
    fn adapter_id(&self, adapter: Option<&str>) -> Result<u32, SubmitError> {
        match adapter {
            None => Ok(0),
            Some(name) if name == self.info.served_name => Ok(0),
            Some(name) => self
                .registry
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .id_of(name)
                .ok_or_else(|| SubmitError::UnknownAdapter(name.to_string())),
        }
    }

    fn validate(&self, request: &GenerateRequest) -> Result<Generation, SubmitError> {
        let prompt_tokens = request.prompt.len() as u32;
        if prompt_tokens == 0 {
            return Err(SubmitError::Invalid("the prompt is empty".into()));
        }
        let vocab = self.info.tokenizer.vocab_size();
        if let Some(t) = request.prompt.iter().find(|&&t| t as usize >= vocab) {
            return Err(SubmitError::Invalid(format!(
                "prompt token {t} is outside the vocabulary of {vocab} tokens"
            )));
        }
        let max_tokens = u32::try_from(request.params.max_tokens).unwrap_or(u32::MAX);
        if u64::from(prompt_tokens) + u64::from(max_tokens) > u64::from(self.info.max_model_len) {
            return Err(SubmitError::TooLong {
                prompt_tokens,
                max_tokens,
                max_model_len: self.info.max_model_len,
            });
        }
        Generation::new(&self.info.tokenizer, &request.params, &request.prompt)
            .map_err(|e| SubmitError::Invalid(e.to_string()))
    }

    /// Sends `make(reply)` to every shard and collects the answers.
    fn ask_all<T: Send + 'static>(
        &self,
        make: impl Fn(std::sync::mpsc::Sender<Result<T, String>>) -> Control,
    ) -> Result<Vec<T>, AdapterError> {
        if let Err(why) = self.health() {
            return Err(AdapterError::Runtime(why));
        }
        let (tx, rx) = std::sync::mpsc::channel();
        for link in &self.links {
            link.control
                .send(make(tx.clone()))
                .map_err(|_| AdapterError::Runtime("the runtime has stopped".into()))?;
        }
        drop(tx);
        let mut out = Vec::with_capacity(self.links.len());
        for _ in &self.links {
            match rx.recv_timeout(ADAPTER_REPLY_TIMEOUT) {
                Ok(Ok(v)) => out.push(v),
                Ok(Err(e)) => return Err(AdapterError::Runtime(e)),
                Err(_) => return Err(AdapterError::Runtime("a shard did not answer".into())),
            }
        }
        Ok(out)
    }

    fn read_adapter(&self, name: &str, path: &Path) -> Result<Arc<SourceAdapter>, AdapterError> {
        let invalid = |reason: String| AdapterError::Invalid {
            path: path.to_path_buf(),
            reason,
        };
        if !path.is_dir() {
            return Err(invalid("no such folder".into()));
        }
        let source =
            SourceAdapter::load(&self.model, path, self.info.max_lora_rank, self.page_bytes)
                .map_err(|e| invalid(e.to_string()))?;
        let source = SourceAdapter {
            name: name.to_string(),
            ..source
        };
        let source = Arc::new(source);
        match self.device {
            DeviceChoice::Emulated => Ok(source),
            DeviceChoice::Cuda { .. } => source
                .for_cuda(&self.model, self.page_bytes)
                .map_err(|e| invalid(e.to_string())),
        }
    }
}

impl OnlineRuntime {
    /// Fault injection for tests: shard `shard` panics when it next reads its control
    /// channel, as a bug in the engine would make it. The runtime's answer to that (the
    /// shard's requests fail, new ones get [`SubmitError::ShardFailed`], [`ServeBackend::health`]
    /// reports it) is what the tests check.
    #[doc(hidden)]
    pub fn inject_shard_panic(&self, shard: usize) {
        if let Some(link) = self.links.get(shard) {
            let _ = link.control.send(Control::Panic);
        }
    }
}

impl ServeBackend for OnlineRuntime {
    fn model(&self) -> &ModelInfo {
        &self.info
    }

    fn health(&self) -> Result<(), String> {
        match (0..self.links.len()).find_map(|s| Some((s, self.counters.failure(s)?))) {
            None => Ok(()),
            Some((shard, why)) => Err(format!("shard {shard} stopped serving: {why}")),
        }
    }

    fn submit(&self, request: GenerateRequest) -> Result<RequestStream, SubmitError> {
        if self.draining.load(Ordering::Acquire) {
            return Err(SubmitError::ShuttingDown);
        }
        let adapter = self.adapter_id(request.adapter.as_deref())?;
        let generation = self.validate(&request)?;
        let waiting = self.counters.waiting.load(Ordering::Acquire);
        if waiting >= self.max_waiting {
            return Err(SubmitError::Overloaded {
                waiting,
                retry_after_s: 1,
            });
        }
        let shard = self.router.route(adapter, &self.counters.loads()) as usize;
        if let Some(why) = self.counters.failure(shard) {
            return Err(SubmitError::ShardFailed {
                shard: shard as u32,
                reason: why.to_string(),
            });
        }
        let id = self.counters.next_id.fetch_add(1, Ordering::AcqRel);
        let (events, rx) = tokio::sync::mpsc::unbounded_channel();
        let cancelled = Arc::new(AtomicBool::new(false));
        let submitted = Submitted {
            id,
            adapter,
            max_tokens: u32::try_from(request.params.max_tokens).unwrap_or(u32::MAX),
            prompt: request.prompt,
            generation,
            events,
            cancelled: cancelled.clone(),
            submitted: Instant::now(),
        };
        self.counters.enter(shard);
        if let Err(e) = self.links[shard].requests.try_send(submitted) {
            self.counters.leave(shard, true);
            return Err(match e {
                TrySendError::Full(_) => SubmitError::Overloaded {
                    waiting,
                    retry_after_s: 1,
                },
                TrySendError::Closed(_) => match self.counters.failure(shard) {
                    Some(why) => SubmitError::ShardFailed {
                        shard: shard as u32,
                        reason: why.to_string(),
                    },
                    None => SubmitError::ShuttingDown,
                },
            });
        }
        let control = self.links[shard].control.clone();
        Ok(RequestStream::new(id, rx, move || {
            cancelled.store(true, Ordering::Release);
            let _ = control.send(Control::Cancel(id));
        }))
    }

    fn load_adapter(&self, name: &str, path: &Path) -> Result<AdapterListing, AdapterError> {
        let bad = |reason: &str| AdapterError::BadName {
            name: name.to_string(),
            reason: reason.to_string(),
        };
        if name.is_empty() {
            return Err(bad("the name is empty"));
        }
        if name == self.info.served_name {
            return Err(bad("it is the base model's name"));
        }
        if self.draining.load(Ordering::Acquire) {
            return Err(AdapterError::Runtime("the server is shutting down".into()));
        }
        let source = self.read_adapter(name, path)?;
        let rank = source.paged.layout.shape.rank;
        let _serial = self.adapter_lock.lock().unwrap_or_else(|p| p.into_inner());
        let existing = self
            .registry
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .id_of(name);
        let now_s = now_unix_s();
        match existing {
            Some(id) => {
                self.ask_all(|reply| Control::Reload(id, source.clone(), reply))?;
                let mut registry = self.registry.lock().unwrap_or_else(|p| p.into_inner());
                registry
                    .bump(name, path.to_path_buf(), rank, now_s)
                    .ok_or_else(|| AdapterError::NotFound(name.to_string()))
            }
            None => {
                let ids = self.ask_all(|reply| Control::Add(source.clone(), reply))?;
                let id = ids[0];
                if ids.iter().any(|&i| i != id) {
                    return Err(AdapterError::Runtime(format!(
                        "the shards registered {name} under different ids: {ids:?}"
                    )));
                }
                let mut registry = self.registry.lock().unwrap_or_else(|p| p.into_inner());
                registry.add(id, name, path.to_path_buf(), rank, now_s);
                Ok(registry
                    .get(name)
                    .map(|e| e.listing.clone())
                    .expect("added"))
            }
        }
    }

    fn unload_adapter(&self, name: &str) -> Result<(), AdapterError> {
        let _serial = self.adapter_lock.lock().unwrap_or_else(|p| p.into_inner());
        let id = self
            .registry
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name)
            .ok_or_else(|| AdapterError::NotFound(name.to_string()))?;
        for link in &self.links {
            let _ = link.control.send(Control::Unload(id));
        }
        Ok(())
    }

    fn adapters(&self) -> Vec<AdapterListing> {
        self.registry
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .listings()
    }

    fn snapshot(&self) -> RuntimeSnapshot {
        let registry = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        let served = self.info.served_name.clone();
        let mut snapshot = self.published.merged(|id| {
            if id == 0 {
                Some(served.clone())
            } else {
                registry.name_of(id)
            }
        });
        snapshot.shards_serving = (0..self.links.len())
            .map(|s| self.counters.failure(s).is_none())
            .collect();
        snapshot
    }

    fn drain(&self, deadline: Duration) -> DrainReport {
        if self.draining.swap(true, Ordering::AcqRel) {
            return DrainReport::default(); // drained already
        }
        let until = Instant::now() + deadline;
        let (tx, rx) = std::sync::mpsc::channel();
        for link in &self.links {
            let _ = link.control.send(Control::Drain(until, tx.clone()));
        }
        drop(tx);
        let mut report = DrainReport::default();
        for _ in &self.links {
            match rx.recv_timeout(deadline + Duration::from_secs(10)) {
                Ok((finished, cancelled)) => {
                    report.finished += finished;
                    report.cancelled += cancelled;
                }
                Err(_) => break,
            }
        }
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|p| p.into_inner()));
        for t in threads {
            let _ = t.join();
        }
        report
    }
}

impl Drop for OnlineRuntime {
    fn drop(&mut self) {
        // The shards stop when their channels close; nothing is left running after this.
        self.drain(Duration::ZERO);
    }
}
