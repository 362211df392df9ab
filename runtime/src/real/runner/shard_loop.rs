//! One shard's executor loop.

use std::sync::Arc;
use std::time::Duration;

use fastlibra_kernels::cpu::CpuModel;
use glommio::channels::shared_channel::ConnectedSender;

use super::inbox::{ShardInbox, send};
use super::{FromShard, ToShard};
use crate::real::adapters::SourceAdapter;
use crate::real::error::RealError;
use crate::real::shard::{Clock, Shard, ShardConfig, ShardReport};

/// One shard's loop: take messages, pump the shard, send outcomes; sleep when idle until a
/// message, the engine's next timer or (with I/O in flight) a short poll interval.
pub(crate) async fn shard_main(
    config: &ShardConfig,
    model: Arc<CpuModel>,
    adapters: &[Arc<SourceAdapter>],
    spill: &std::path::Path,
    clock: Clock,
    rx: &ShardInbox<ToShard>,
    tx: &ConnectedSender<FromShard>,
) {
    let mut shard = match Shard::new(config, model, adapters, spill) {
        Ok(s) => s,
        Err(e) => {
            let _ = tx.send(FromShard::Failed(e.to_string())).await;
            return;
        }
    };
    let _ = tx.send(FromShard::Ready).await;
    if let Err(e) = serve(&mut shard, clock, rx, tx).await {
        let _ = tx.send(FromShard::Failed(e.to_string())).await;
    }
}

async fn serve(
    shard: &mut Shard,
    clock: Clock,
    rx: &ShardInbox<ToShard>,
    tx: &ConnectedSender<FromShard>,
) -> Result<(), RealError> {
    let mut served = 0u64;
    let mut finishing = false;
    loop {
        while !finishing {
            let Some(msg) = rx.pop() else {
                break;
            };
            finishing |= handle(shard, msg, clock, &mut served)?;
        }
        if finishing {
            let report = shard.finish(&clock)?;
            for o in shard.take_outcomes() {
                send(tx, FromShard::Outcome(o)).await?;
            }
            return send(tx, FromShard::Done(Box::new(report_with(report, served)))).await;
        }
        let moved = shard.pump(&clock)?;
        for o in shard.take_outcomes() {
            send(tx, FromShard::Outcome(o)).await?;
        }
        if moved {
            glommio::yield_if_needed().await;
            continue;
        }
        // Idle: wait for a message or the engine's next timer (at most 100 ms), or 50 µs
        // while page I/O is in flight (its completions are polled).
        let now = clock.now_ns();
        let wait_ns = if shard.io_busy() {
            50_000
        } else {
            shard
                .next_timer_ns()
                .map_or(100_000_000, |t| t.saturating_sub(now))
                .clamp(50_000, 100_000_000)
        };
        rx.wait(Duration::from_nanos(wait_ns)).await;
    }
}

/// The report and the count of requests served travel together.
fn report_with(mut report: ShardReport, served: u64) -> ShardReport {
    report.served = served;
    report
}

/// Applies one message; true when the shard must finish (told to, or the front is gone).
fn handle(
    shard: &mut Shard,
    msg: Option<ToShard>,
    clock: Clock,
    served: &mut u64,
) -> Result<bool, RealError> {
    match msg {
        Some(ToShard::Arrive(request)) => {
            *served += 1;
            shard.arrive(clock.now_ns(), request);
        }
        Some(ToShard::EndSession(s)) => shard.end_session(s),
        Some(ToShard::Reload(adapter, source)) => shard.reload(clock.now_ns(), adapter, source)?,
        Some(ToShard::Finish) | None => return Ok(true),
    }
    Ok(false)
}
