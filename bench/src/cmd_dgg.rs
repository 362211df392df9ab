//! `fastlibra dgg …`: the DGG subcommands (handled by the `fastlibra-dgg` crate).

use clap::{Args, Subcommand};

/// Arguments of `fastlibra dgg`.
#[derive(Args, Debug)]
pub struct DggArgs {
    #[command(subcommand)]
    command: DggCommand,
}

#[derive(Subcommand, Debug)]
enum DggCommand {}

/// Runs a `dgg` subcommand.
pub fn run(args: DggArgs) -> Result<(), Box<dyn std::error::Error>> {
    match args.command {}
}
