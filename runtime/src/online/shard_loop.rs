//! One serving shard's loop, on its own glommio executor: take requests and control messages,
//! pump the shard, send each finished request's last event, publish metrics; when idle, wait
//! for a message or the engine's next timer (a message wakes it at once).

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_lite::{FutureExt, future};
use rustc_hash::FxHashSet;
use tokio::sync::mpsc::{Receiver, UnboundedReceiver};

use super::live::{Chooser, LiveTable, SharedTable, Submitted};
use super::metrics::Published;
use crate::engine::NewRequest;
use crate::real::adapters::SourceAdapter;
use crate::real::error::RealError;
use crate::real::{Clock, Shard};

/// How often a busy shard publishes its metrics.
const PUBLISH_EVERY: Duration = Duration::from_millis(100);

/// Messages besides requests (unbounded: a cancel must never wait or fail).
pub(crate) enum Control {
    /// The client dropped request `id`'s stream.
    Cancel(u64),
    /// Register a new adapter; reply with its id.
    Add(
        Arc<SourceAdapter>,
        std::sync::mpsc::Sender<Result<u32, String>>,
    ),
    /// New weights for adapter `id` (a new version).
    Reload(
        u32,
        Arc<SourceAdapter>,
        std::sync::mpsc::Sender<Result<(), String>>,
    ),
    /// Drop adapter `id` once its requests are done (the front routes no more to it).
    Unload(u32),
    /// Finish what is held until the deadline, cancel the rest, stop; reply with
    /// (finished, cancelled).
    Drain(Instant, std::sync::mpsc::Sender<(u64, u64)>),
    /// Panic (fault injection for tests: [`super::OnlineRuntime::inject_shard_panic`]).
    Panic,
}

/// What a shard loop works with.
pub(crate) struct ShardLoop {
    pub(crate) shard: Shard,
    pub(crate) index: usize,
    pub(crate) clock: Clock,
    pub(crate) table: SharedTable,
    pub(crate) requests: Receiver<Submitted>,
    pub(crate) control: UnboundedReceiver<Control>,
    pub(crate) published: Arc<Published>,
}

enum Wake {
    Request(Option<Box<Submitted>>),
    Control(Option<Control>),
    Timer,
}

struct Drain {
    deadline: Instant,
    reply: std::sync::mpsc::Sender<(u64, u64)>,
    finished_before: u64,
}

impl ShardLoop {
    /// Runs until drained, or until every sender is gone. A shard whose engine fails or that
    /// panics stops serving without taking the process down: its requests, held or still
    /// queued, end with an error, and the front refuses new ones for it.
    pub(crate) async fn run(mut self) {
        self.shard
            .set_chooser(Box::new(Chooser(self.table.clone())));
        let why = match AssertUnwindSafe(self.serve()).catch_unwind().await {
            Ok(Ok(())) => return,
            Ok(Err(e)) => format!("its engine failed: {e}"),
            Err(panic) => format!("it panicked: {}", panic_message(panic.as_ref())),
        };
        self.stop_serving(&why);
    }

    /// After a failure: refuse new requests, end every request held or queued, publish.
    fn stop_serving(&mut self, why: &str) {
        let message = format!("shard {} stopped serving: {why}", self.index);
        // A panic unwound through any borrow of the table, so it is free again.
        let mut table = self.table.borrow_mut();
        table.shard_failed(why);
        self.requests.close();
        table.fail_all(&message);
        while let Ok(s) = self.requests.try_recv() {
            table.refuse(s, &message);
        }
        drop(table);
        // The shard may be half-way through a change; reading its gauges may panic again.
        let _ = std::panic::catch_unwind(AssertUnwindSafe(|| self.publish()));
    }

    async fn serve(&mut self) -> Result<(), RealError> {
        let mut unloading: FxHashSet<u32> = FxHashSet::default();
        let mut drain: Option<Drain> = None;
        let mut last_publish = Instant::now();
        let mut checked_idle = false;
        loop {
            while let Ok(msg) = self.control.try_recv() {
                self.handle_control(msg, &mut unloading, &mut drain);
            }
            while let Ok(s) = self.requests.try_recv() {
                self.arrive(s);
            }
            let started = Instant::now();
            let forward_before = self.shard.forward_ns();
            let moved = self.shard.pump(&self.clock)?;
            if moved {
                let forward = self.shard.forward_ns() - forward_before;
                let call = started.elapsed().as_nanos() as u64;
                let engine_s = call.saturating_sub(forward) as f64 * 1e-9;
                self.table
                    .borrow_mut()
                    .metrics
                    .engine_call
                    .observe(engine_s);
            }
            for o in self.shard.take_outcomes() {
                self.table.borrow_mut().finish(&o);
            }
            let now = self.clock.now_ns();
            unloading.retain(|&id| !self.shard.remove_adapter(now, id));
            let idle = self.table.borrow().len() == 0;
            if idle && !checked_idle {
                checked_idle = true;
                self.check_idle();
            }
            checked_idle &= idle;
            if let Some(d) = &drain
                && (idle || Instant::now() >= d.deadline)
            {
                let d = drain.take().expect("checked");
                self.end_drain(d);
                return Ok(());
            }
            if moved {
                if last_publish.elapsed() >= PUBLISH_EVERY {
                    self.publish();
                    last_publish = Instant::now();
                }
                glommio::yield_if_needed().await;
                continue;
            }
            self.publish();
            last_publish = Instant::now();
            if self.wait(&mut unloading, &mut drain).await {
                return Ok(()); // every sender is gone
            }
        }
    }

    /// Sleeps until a message, the engine's next timer, or a short poll while page I/O is in
    /// flight. True when both channels are closed.
    async fn wait(&mut self, unloading: &mut FxHashSet<u32>, drain: &mut Option<Drain>) -> bool {
        let now = self.clock.now_ns();
        let wait_ns = if self.shard.io_busy() || !unloading.is_empty() || drain.is_some() {
            50_000
        } else {
            self.shard
                .next_timer_ns()
                .map_or(100_000_000, |t| t.saturating_sub(now))
                .clamp(50_000, 100_000_000)
        };
        let requests = &mut self.requests;
        let control = &mut self.control;
        let woke = future::or(
            async { Wake::Control(control.recv().await) },
            future::or(
                async { Wake::Request(requests.recv().await.map(Box::new)) },
                async {
                    glommio::timer::sleep(Duration::from_nanos(wait_ns)).await;
                    Wake::Timer
                },
            ),
        )
        .await;
        match woke {
            Wake::Request(Some(s)) => self.arrive(*s),
            Wake::Control(Some(c)) => self.handle_control(c, unloading, drain),
            Wake::Timer => {}
            Wake::Request(None) | Wake::Control(None) => {
                return self.requests.is_closed() && self.control.is_closed();
            }
        }
        false
    }

    fn arrive(&mut self, s: Submitted) {
        let request = NewRequest {
            id: s.id,
            adapter: s.adapter,
            session: None,
            tokens: s.prompt.clone(),
            max_new_tokens: s.max_tokens,
        };
        if self.table.borrow_mut().admit(s) {
            self.shard.arrive(self.clock.now_ns(), request);
        }
    }

    fn handle_control(
        &mut self,
        msg: Control,
        unloading: &mut FxHashSet<u32>,
        drain: &mut Option<Drain>,
    ) {
        let now = self.clock.now_ns();
        match msg {
            Control::Cancel(id) => {
                if self.table.borrow_mut().cancel(id) {
                    self.shard.cancel(now, id);
                }
            }
            Control::Add(source, reply) => {
                let _ = reply.send(
                    self.shard
                        .add_adapter(now, source)
                        .map_err(|e| e.to_string()),
                );
            }
            Control::Reload(id, source, reply) => {
                let _ = reply.send(
                    self.shard
                        .reload(now, id, source)
                        .map_err(|e| e.to_string()),
                );
            }
            Control::Unload(id) => {
                unloading.insert(id);
            }
            Control::Panic => panic!("fault injection: shard {} panics", self.index),
            Control::Drain(deadline, reply) => {
                let finished_before = self.table.borrow().metrics.requests_finished;
                *drain = Some(Drain {
                    deadline,
                    reply,
                    finished_before,
                });
            }
        }
    }

    /// Cancels what is left at the drain's end and replies.
    fn end_drain(&mut self, d: Drain) {
        let now = self.clock.now_ns();
        let ids = self.table.borrow().ids();
        for &id in &ids {
            self.shard.cancel(now, id);
        }
        let cancelled = self
            .table
            .borrow_mut()
            .fail_all("the server shut down before the request finished");
        self.check_idle();
        self.publish();
        let finished = self.table.borrow().metrics.requests_finished - d.finished_before;
        let _ = d.reply.send((finished, cancelled));
    }

    /// The shard holds no request: nothing may be pinned, and the invariants must hold.
    fn check_idle(&mut self) {
        let ok = self.shard.engine().active_requests() == 0
            && self.shard.engine().pinned_nodes() == 0
            && self.shard.check_invariants().is_ok();
        let mut t = self.table.borrow_mut();
        t.metrics.invariant_checks += 1;
        if !ok {
            t.metrics.invariant_failures += 1;
        }
    }

    fn publish(&mut self) {
        let mut t = self.table.borrow_mut();
        let (running, waiting) = t.adapters();
        let m = &mut t.metrics;
        m.running = running.len() as u64;
        m.waiting = waiting.len() as u64;
        m.running_adapters = running;
        m.waiting_adapters = waiting;
        m.read_shard(&self.shard);
        self.published.publish(self.index, m);
        drop(t);
        self.shard.forget_timeline();
    }
}

/// The text of a panic's payload.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a panic without a message")
}

/// Starts shard `index`'s loop (called on its executor).
pub(crate) async fn shard_main(lp: ShardLoop) {
    lp.run().await;
}

/// Builds the live table for shard `index`.
pub(crate) fn table(
    tokenizer: Arc<fastlibra_kernels::tokenizer::Tokenizer>,
    counters: Arc<super::runtime::Counters>,
    index: usize,
) -> SharedTable {
    std::rc::Rc::new(std::cell::RefCell::new(LiveTable::new(
        tokenizer, counters, index,
    )))
}
