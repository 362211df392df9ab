//! The deterministic discrete-event simulator: the engine core in virtual time, over a
//! modelled GPU, PCIe links and NVMe.
//!
//! - `api`, `driver`, `plan`, `oracle`: the plain simulator and its memory plan;
//! - [`faults`], `checks`, [`stress`]: fault injection from a seed, the checkers that run after
//!   every step and at the end, and stressed runs (faults, admission limit, peaks);
//! - [`campaign`]: seeded fault campaigns on tiny workloads; [`overload`]: bursts and recovery.

mod api;
pub mod campaign;
mod checks;
mod driver;
pub mod faults;
pub mod oracle;
pub mod overload;
pub mod plan;
pub mod stress;
pub mod timing;

pub use api::{
    MAIN_POLICIES, POLICIES, ProgressFn, SimError, SimOptions, SimProgress, SimResult, run_policy,
};
pub use faults::{FaultCounts, FaultPlan, SlowLink};
pub use stress::{Peaks, StressPlan, StressReport, run_stressed};
pub use timing::{CallTiming, TimingWindow, run_policy_timed};
