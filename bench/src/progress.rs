//! Progress bars (indicatif) for simulations that take more than a moment.
//!
//! One bar per simulation: it fills as the simulated clock approaches the last arrival, and
//! its message says what runs (`fastlibra @ 2.0/s`, `find-peak vllm: probe 3 @ 4.5/s`). Bars
//! are drawn on stderr only when stderr is a terminal and the caller wants them (not with
//! `--quiet` or `--json`); otherwise every call is a no-op. A finished bar is cleared, so
//! only the result lines stay on screen.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use fastlibra_runtime::sim::{ProgressFn, SimProgress};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Position units of a full bar (per mille of the arrival window).
const BAR_LENGTH: u64 = 1_000;

/// How often a bar redraws on its own.
pub const TICK: Duration = Duration::from_millis(200);

/// Makes a bar per simulation, or nothing.
#[derive(Clone, Debug)]
pub struct Progress {
    enabled: bool,
}

impl Progress {
    /// Bars when `wanted` and stderr is a terminal.
    pub fn new(wanted: bool) -> Progress {
        Progress {
            enabled: wanted && std::io::stderr().is_terminal(),
        }
    }

    /// No bars.
    pub fn hidden() -> Progress {
        Progress { enabled: false }
    }

    /// Whether bars are drawn.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Starts a bar for one simulation; `callback()` feeds it from the simulator.
    pub fn start(&self, message: String) -> SimBar {
        if !self.enabled {
            return SimBar { bar: None };
        }
        let bar = ProgressBar::with_draw_target(Some(BAR_LENGTH), ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template(
            "{spinner} {msg} [{wide_bar}] {percent:>3}% of arrivals, {elapsed}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_message(message);
        // The simulator reports every few thousand events, which can be seconds apart under
        // overload; a steady tick keeps the spinner and the elapsed time moving meanwhile.
        bar.enable_steady_tick(TICK);
        SimBar { bar: Some(bar) }
    }

    /// Prints a line above any bar (or plainly when bars are off).
    pub fn println(&self, line: &str) {
        eprintln!("{line}");
    }
}

/// One simulation's bar (inert when bars are off).
#[derive(Debug)]
pub struct SimBar {
    bar: Option<ProgressBar>,
}

impl SimBar {
    /// The simulator callback that moves this bar, or `None` when bars are off.
    pub fn callback(&self) -> Option<ProgressFn> {
        let bar = self.bar.clone()?;
        Some(ProgressFn(Arc::new(move |p: SimProgress| {
            bar.set_position(position(&p));
        })))
    }

    /// Removes the bar from the screen.
    pub fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Per mille of the arrival window simulated (full once the last arrival is reached).
pub fn position(p: &SimProgress) -> u64 {
    if p.last_arrival_ns == 0 {
        return BAR_LENGTH;
    }
    let done = u128::from(p.simulated_ns.min(p.last_arrival_ns)) * u128::from(BAR_LENGTH)
        / u128::from(p.last_arrival_ns);
    done as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn position_is_bounded() {
        let p = |simulated_ns, last_arrival_ns| SimProgress {
            simulated_ns,
            last_arrival_ns,
            requests_done: 0,
        };
        assert_eq!(position(&p(0, 100)), 0);
        assert_eq!(position(&p(50, 100)), 500);
        assert_eq!(position(&p(500, 100)), BAR_LENGTH);
        assert_eq!(position(&p(5, 0)), BAR_LENGTH);
    }

    #[test]
    fn hidden_bars_do_nothing() {
        let bar = Progress::hidden().start("x".into());
        assert!(bar.callback().is_none());
        bar.finish();
    }
}
