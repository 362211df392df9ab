//! Wall-clock cost of the engine in a simulated run: how many requests the simulator finishes
//! per wall-second in each window of simulated time, and how long one event (the engine call
//! it makes, plus the driver's bookkeeping) takes. The engine itself reads no clock; only the
//! driver does, and only when a run asks for timing.

use std::time::Duration;

use super::api::{SimError, SimOptions, SimResult};
use crate::engine::PolicyKind;
use crate::workload::Workload;

/// Resolution of the call-time histogram, ns.
const BUCKET_NS: u64 = 100;
/// Calls up to this long are counted in buckets; longer ones only in the maximum and the tail.
const BUCKETS: usize = 100_000;

/// One window of simulated time.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct TimingWindow {
    /// Requests that finished (or failed) in the window.
    pub requests: u64,
    /// Events handled in the window.
    pub calls: u64,
    /// Wall time spent in the window, ns.
    pub wall_ns: u64,
}

impl TimingWindow {
    /// Requests per wall-second in the window (0 when no wall time passed).
    pub fn requests_per_wall_s(&self) -> f64 {
        if self.wall_ns == 0 {
            0.0
        } else {
            self.requests as f64 * 1e9 / self.wall_ns as f64
        }
    }
}

/// Timing of one simulated run.
#[derive(Clone, Debug)]
pub struct CallTiming {
    /// Simulated time per window, ns.
    pub window_ns: u64,
    /// The windows, from time zero.
    pub windows: Vec<TimingWindow>,
    buckets: Vec<u32>,
    /// Calls longer than the histogram covers, ns.
    overflow: Vec<u64>,
    calls: u64,
    /// The longest call, ns.
    pub call_ns_max: u64,
    /// The most nodes the tree held (sampled once per window).
    pub tree_nodes_max: usize,
}

impl CallTiming {
    pub(crate) fn new(window_ns: u64) -> CallTiming {
        CallTiming {
            window_ns: window_ns.max(1),
            windows: Vec::new(),
            buckets: vec![0; BUCKETS],
            overflow: Vec::new(),
            calls: 0,
            call_ns_max: 0,
            tree_nodes_max: 0,
        }
    }

    fn window(&mut self, now_ns: u64) -> &mut TimingWindow {
        let index = (now_ns / self.window_ns) as usize;
        if self.windows.len() <= index {
            self.windows.resize(index + 1, TimingWindow::default());
        }
        &mut self.windows[index]
    }

    /// One event at `now_ns`: its call took `call`, the whole loop turn `turn`, and `done`
    /// requests finished.
    pub(crate) fn record(&mut self, now_ns: u64, call: Duration, turn: Duration, done: u64) {
        let call_ns = call.as_nanos() as u64;
        let window = self.window(now_ns);
        window.calls += 1;
        window.requests += done;
        window.wall_ns += turn.as_nanos() as u64;
        self.calls += 1;
        self.call_ns_max = self.call_ns_max.max(call_ns);
        match self.buckets.get_mut((call_ns / BUCKET_NS) as usize) {
            Some(count) => *count += 1,
            None => self.overflow.push(call_ns),
        }
    }

    /// Whether the event at `now_ns` opens a window not seen yet (time to sample the tree).
    pub(crate) fn opens_window(&self, now_ns: u64) -> bool {
        (now_ns / self.window_ns) as usize >= self.windows.len()
    }

    /// Notes the tree's size.
    pub(crate) fn tree_nodes(&mut self, nodes: usize) {
        self.tree_nodes_max = self.tree_nodes_max.max(nodes);
    }

    /// Events handled.
    pub fn calls(&self) -> u64 {
        self.calls
    }

    /// The call time at quantile `q` (0..=1), ns, to the histogram's resolution (the upper
    /// edge of its bucket).
    pub fn call_ns_quantile(&self, q: f64) -> u64 {
        if self.calls == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.calls as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &count) in self.buckets.iter().enumerate() {
            seen += u64::from(count);
            if seen >= rank {
                return ((i as u64 + 1) * BUCKET_NS).min(self.call_ns_max);
            }
        }
        let mut tail = self.overflow.clone();
        tail.sort_unstable();
        let index = (rank - seen).saturating_sub(1) as usize;
        tail.get(index).copied().unwrap_or(self.call_ns_max)
    }
}

/// Simulates `policy` (one of the engine's policies; not `vllm-oracle`) with its wall-clock
/// timing per `window_ns` of simulated time.
pub fn run_policy_timed(
    workload: &Workload,
    policy: &str,
    options: &SimOptions,
    window_ns: u64,
) -> Result<(SimResult, CallTiming), SimError> {
    let kind = PolicyKind::from_name(policy).ok_or_else(|| SimError::UnknownPolicy {
        name: policy.to_string(),
        valid: PolicyKind::ALL.map(PolicyKind::name).join(", "),
    })?;
    super::driver::simulate_timed(workload, kind, options, CallTiming::new(window_ns))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_and_windows() {
        let mut t = CallTiming::new(10);
        for i in 1..=1000u64 {
            t.record(i, Duration::from_nanos(i * 100), Duration::from_nanos(2), 1);
        }
        t.record(5, Duration::from_millis(50), Duration::from_nanos(2), 0);
        assert_eq!(t.calls(), 1001);
        assert_eq!(t.call_ns_max, 50_000_000);
        // The 501st of 1,001 calls took 50,100 ns: bucket 501, whose upper edge is 50,200.
        assert_eq!(t.call_ns_quantile(0.5), 50_200);
        assert_eq!(t.call_ns_quantile(1.0), 50_000_000);
        assert_eq!(t.windows.len(), 101);
        assert_eq!(t.windows[0].requests, 9);
        assert_eq!(t.windows[0].requests_per_wall_s(), 9.0 * 1e9 / 20.0);
    }
}
