//! A fake [`ServeBackend`] for the front's tests: the byte-level tokenizer with a ChatML
//! template of [`crate::fuzz_entry`], and a generator thread per request that writes one letter per token (chosen by
//! the seed) at a set pace. It counts what the front must get right: cancellations, requests
//! still active, adapters and their versions.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::fuzz_entry::{byte_id, byte_tokenizer};
use fastlibra_kernels::sampling::{FinishReason, SampledToken, Step, TokenLogprob};
use fastlibra_runtime::online::{
    AdapterError, AdapterListing, DrainReport, GenerateRequest, ModelInfo, RequestStream,
    RuntimeSnapshot, ServeBackend, SubmitError, TokenEvent, Usage,
};

/// The base model's served name.
pub const BASE: &str = "fake-base";
/// The context length.
pub const MAX_MODEL_LEN: u32 = 64;
/// How the fake behaves.
#[derive(Clone, Debug)]
pub struct FakeConfig {
    /// Time between two tokens.
    pub token_pace: Duration,
    /// Refuse with `Overloaded` when this many requests are active.
    pub max_active: u64,
}

impl Default for FakeConfig {
    fn default() -> Self {
        FakeConfig {
            token_pace: Duration::ZERO,
            max_active: 1000,
        }
    }
}

/// The fake runtime.
pub struct FakeBackend {
    info: ModelInfo,
    config: FakeConfig,
    adapters: Mutex<Vec<AdapterListing>>,
    next_id: AtomicU64,
    /// Requests submitted and not yet finished or cancelled.
    pub active: Arc<AtomicU64>,
    /// Requests cancelled by dropping their stream.
    pub cancelled: Arc<AtomicU64>,
    /// Requests that ran to their end.
    pub finished: Arc<AtomicU64>,
    /// Set by [`FakeBackend::crash`]: why the fake's one shard stopped serving.
    crashed: Arc<OnceLock<String>>,
    draining: AtomicBool,
}

impl FakeBackend {
    /// A fake with `adapters` loaded (name, folder).
    pub fn new(config: FakeConfig, adapters: &[(&str, &Path)]) -> Arc<Self> {
        let info = ModelInfo {
            served_name: BASE.to_string(),
            path: PathBuf::from("/models/fake.gguf"),
            tokenizer: Arc::new(byte_tokenizer()),
            max_model_len: MAX_MODEL_LEN,
            block_tokens: 16,
            hbm_pages: 128,
            max_loras: 4,
            max_lora_rank: 16,
            created_unix_s: 1_700_000_000,
        };
        let fake = Arc::new(FakeBackend {
            info,
            config,
            adapters: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(1),
            active: Arc::default(),
            cancelled: Arc::default(),
            finished: Arc::default(),
            crashed: Arc::default(),
            draining: AtomicBool::new(false),
        });
        for (name, path) in adapters {
            fake.load_adapter(name, path)
                .expect("a start-up adapter loads");
        }
        fake
    }

    /// The fake's one shard stops serving for `why`, as a shard that panics does: running
    /// requests end with `Failed`, new ones get `ShardFailed`, `health` reports it.
    pub fn crash(&self, why: &str) {
        let _ = self.crashed.set(why.to_string());
    }

    /// Waits (bounded) until no request is active; whether that happened.
    pub fn wait_idle(&self, within: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < within {
            if self.active.load(Ordering::SeqCst) == 0 {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    }
}

/// The letter token `i` of a request with `seed` writes.
fn letter(seed: Option<u64>, i: usize) -> u8 {
    let s = seed.unwrap_or(23);
    b'a' + ((s.wrapping_add(i as u64 * 7)) % 26) as u8
}

/// What a generator thread works with.
struct Generator {
    pace: Duration,
    tx: tokio::sync::mpsc::UnboundedSender<TokenEvent>,
    stop: Arc<AtomicBool>,
    crashed: Arc<OnceLock<String>>,
    /// Requests active, and requests that ran to their end.
    done: (Arc<AtomicU64>, Arc<AtomicU64>),
}

fn generate(request: GenerateRequest, g: Generator) {
    let Generator {
        pace,
        tx,
        stop,
        crashed,
        done,
    } = g;
    let p = &request.params;
    for i in 0..p.max_tokens {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        std::thread::sleep(pace);
        if let Some(why) = crashed.get() {
            let _ = tx.send(TokenEvent::Failed {
                message: format!("shard 0 stopped serving: {why}"),
            });
            if !stop.swap(true, Ordering::SeqCst) {
                done.0.fetch_sub(1, Ordering::SeqCst);
            }
            return;
        }
        let b = letter(p.seed, i);
        let last = i + 1 == p.max_tokens;
        let token = SampledToken {
            id: byte_id(b),
            logprob: p.logprobs.map(|_| -0.25),
            top_logprobs: (0..p.logprobs.unwrap_or(0))
                .map(|k| TokenLogprob {
                    id: byte_id(b'a' + k as u8),
                    logprob: -1.0 - k as f32,
                })
                .collect(),
        };
        let step = Step {
            token,
            text: (b as char).to_string(),
            finish: last.then_some(FinishReason::Length),
        };
        let _ = tx.send(TokenEvent::Token(step));
    }
    let usage = Usage {
        prompt_tokens: request.prompt.len() as u32,
        completion_tokens: p.max_tokens as u32,
        cached_tokens: 0,
    };
    let _ = tx.send(TokenEvent::Done {
        finish: FinishReason::Length,
        usage,
    });
    // Whichever ends the request first, the generator or a cancel, counts it.
    if !stop.swap(true, Ordering::SeqCst) {
        done.0.fetch_sub(1, Ordering::SeqCst);
        done.1.fetch_add(1, Ordering::SeqCst);
    }
}

impl ServeBackend for FakeBackend {
    fn model(&self) -> &ModelInfo {
        &self.info
    }

    fn health(&self) -> Result<(), String> {
        match self.crashed.get() {
            None => Ok(()),
            Some(why) => Err(format!("shard 0 stopped serving: {why}")),
        }
    }

    fn submit(&self, request: GenerateRequest) -> Result<RequestStream, SubmitError> {
        if self.draining.load(Ordering::SeqCst) {
            return Err(SubmitError::ShuttingDown);
        }
        if let Some(why) = self.crashed.get() {
            return Err(SubmitError::ShardFailed {
                shard: 0,
                reason: why.clone(),
            });
        }
        if let Some(name) = &request.adapter
            && !self
                .adapters
                .lock()
                .expect("lock")
                .iter()
                .any(|a| &a.name == name)
        {
            return Err(SubmitError::UnknownAdapter(name.clone()));
        }
        let waiting = self.active.load(Ordering::SeqCst);
        if waiting >= self.config.max_active {
            return Err(SubmitError::Overloaded {
                waiting,
                retry_after_s: 2,
            });
        }
        self.active.fetch_add(1, Ordering::SeqCst);
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let stop = Arc::new(AtomicBool::new(false));
        let generator = Generator {
            pace: self.config.token_pace,
            tx,
            stop: stop.clone(),
            crashed: self.crashed.clone(),
            done: (self.active.clone(), self.finished.clone()),
        };
        std::thread::spawn(move || generate(request, generator));
        let (active, cancelled) = (self.active.clone(), self.cancelled.clone());
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        Ok(RequestStream::new(id, rx, move || {
            if !stop.swap(true, Ordering::SeqCst) {
                active.fetch_sub(1, Ordering::SeqCst);
                cancelled.fetch_add(1, Ordering::SeqCst);
            }
        }))
    }

    fn load_adapter(&self, name: &str, path: &Path) -> Result<AdapterListing, AdapterError> {
        if name.is_empty() || name == BASE {
            return Err(AdapterError::BadName {
                name: name.to_string(),
                reason: "empty or the base model's".to_string(),
            });
        }
        if !path.join("adapter_config.json").is_file() {
            return Err(AdapterError::Invalid {
                path: path.to_path_buf(),
                reason: "no adapter_config.json".to_string(),
            });
        }
        let mut adapters = self.adapters.lock().expect("lock");
        let version = match adapters.iter().position(|a| a.name == name) {
            Some(i) => adapters.remove(i).version + 1,
            None => 1,
        };
        let listing = AdapterListing {
            name: name.to_string(),
            path: path.to_path_buf(),
            version,
            rank: 8,
            created_unix_s: 1_700_000_001,
        };
        adapters.push(listing.clone());
        Ok(listing)
    }

    fn unload_adapter(&self, name: &str) -> Result<(), AdapterError> {
        let mut adapters = self.adapters.lock().expect("lock");
        match adapters.iter().position(|a| a.name == name) {
            Some(i) => {
                adapters.remove(i);
                Ok(())
            }
            None => Err(AdapterError::NotFound(name.to_string())),
        }
    }

    fn adapters(&self) -> Vec<AdapterListing> {
        self.adapters.lock().expect("lock").clone()
    }

    fn snapshot(&self) -> RuntimeSnapshot {
        let active = self.active.load(Ordering::SeqCst);
        RuntimeSnapshot {
            running: active,
            running_adapters: self.adapters().into_iter().map(|a| a.name).collect(),
            prefix_cache_queries: 10,
            prefix_cache_hits: 4,
            shards_serving: vec![self.crashed.get().is_none()],
            ..RuntimeSnapshot::default()
        }
    }

    fn drain(&self, deadline: Duration) -> DrainReport {
        self.draining.store(true, Ordering::SeqCst);
        let before = self.finished.load(Ordering::SeqCst);
        let idle = self.wait_idle(deadline);
        DrainReport {
            finished: self.finished.load(Ordering::SeqCst) - before,
            cancelled: if idle {
                0
            } else {
                self.active.load(Ordering::SeqCst)
            },
        }
    }
}

/// A folder that looks like a PEFT adapter to the fake, removed on drop.
pub struct AdapterDir(pub PathBuf);

impl AdapterDir {
    /// A fresh one named after `tag`.
    pub fn new(tag: &str) -> Self {
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let name = format!("fastlibra-serve-{tag}-{}-{n}", std::process::id());
        let dir = std::env::temp_dir().join(name);
        std::fs::create_dir_all(&dir).expect("temp dir");
        std::fs::write(dir.join("adapter_config.json"), "{}").expect("config");
        AdapterDir(dir)
    }
}

impl Drop for AdapterDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
