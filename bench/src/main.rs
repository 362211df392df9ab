//! `fastlibra`: the command-line front door of the project.
//!
//! Every subcommand lives in its own module (`cmd_*.rs`); this file only parses the command
//! line, dispatches, and turns errors into a message on stderr and a non-zero exit status.

mod cmd_adapters;
mod cmd_bench;
mod cmd_bench_io;
mod cmd_cuda;
mod cmd_dgg;
mod cmd_generate;
mod cmd_plan;
mod cmd_serve;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// fastlibra: LoRA adapters and KV caches in the right memory tier for multi-LoRA serving.
#[derive(Parser, Debug)]
#[command(name = "fastlibra", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print the memory plan (page size, pages per tier, metadata bytes) for a model and GPU.
    Plan(cmd_plan::PlanArgs),
    /// DGG: turn microservice traces into call graphs, generate new ones, compare them.
    Dgg(cmd_dgg::DggArgs),
    /// Run cache policies on a workload and write a report.
    Bench(Box<cmd_bench::BenchArgs>),
    /// Measure the NVMe tier: write then read pages through the io_uring page file.
    BenchIo(cmd_bench_io::BenchIoArgs),
    /// Write random PEFT adapters of real shapes, or check one.
    Adapters(cmd_adapters::AdaptersArgs),
    /// Generate text from a checkpoint (GGUF or Hugging Face) on the CPU, streamed.
    Generate(cmd_generate::GenerateArgs),
    /// CUDA backend: compile-check the kernels (no GPU needed) or run the GPU checks.
    Cuda(cmd_cuda::CudaArgs),
    /// Serve a model and its LoRA adapters over the OpenAI HTTP API (vLLM's flags and metrics).
    Serve(Box<cmd_serve::ServeArgs>),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Plan(args) => cmd_plan::run(args),
        Command::Dgg(args) => cmd_dgg::run(args),
        Command::Bench(args) => cmd_bench::run(*args),
        Command::BenchIo(args) => cmd_bench_io::run(args),
        Command::Adapters(args) => cmd_adapters::run(args),
        Command::Cuda(args) => cmd_cuda::run(args),
        Command::Serve(args) => cmd_serve::run(*args).map_err(Into::into),
        Command::Generate(args) => cmd_generate::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
