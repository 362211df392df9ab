//! `fastlibra plan`: placeholder until the memory plan lands.
use clap::Args;

/// Arguments of `fastlibra plan`.
#[derive(Args, Debug)]
pub struct PlanArgs {}

/// Prints the memory plan.
pub fn run(_args: PlanArgs) -> Result<(), Box<dyn std::error::Error>> {
    Ok(())
}
