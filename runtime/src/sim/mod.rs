//! The deterministic discrete-event simulator: the engine core in virtual time, over a
//! modelled GPU, PCIe links and NVMe.

mod api;
mod driver;
pub mod oracle;
pub mod plan;

pub use api::{
    MAIN_POLICIES, POLICIES, ProgressFn, SimError, SimOptions, SimProgress, SimResult, run_policy,
};
