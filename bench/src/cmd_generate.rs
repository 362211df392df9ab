//! `fastlibra generate`: text from a real checkpoint on the CPU, streamed to the terminal as
//! it is generated, with an optional PEFT adapter.
//!
//! The work is [`fastlibra_kernels::generate`]'s (the same function the server's output is
//! compared with); this module parses the flags, streams each step's text to stdout and prints
//! a summary line (tokens, finish reason, prefill and decode speed) to stderr.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use fastlibra_kernels::generate::{LoadedModel, Prompt, generate};
use fastlibra_kernels::sampling::SamplingParams;

/// Arguments of `fastlibra generate`.
#[derive(Args, Debug)]
#[command(group = clap::ArgGroup::new("input").required(true).args(["prompt", "chat"]))]
pub struct GenerateArgs {
    /// The checkpoint: a `.gguf` file or a Hugging Face folder.
    #[arg(long, value_name = "PATH")]
    model: PathBuf,
    /// A PEFT adapter folder (adapter_config.json + adapter_model.safetensors) to apply.
    #[arg(long, value_name = "DIR")]
    lora: Option<PathBuf>,
    /// Plain text to continue (BOS added where the checkpoint says so).
    #[arg(long, value_name = "TEXT")]
    prompt: Option<String>,
    /// A user message, rendered with the checkpoint's chat template.
    #[arg(long, value_name = "TEXT")]
    chat: Option<String>,
    /// Most tokens to generate.
    #[arg(long, default_value_t = 128, value_name = "N")]
    max_tokens: usize,
    /// Softmax temperature; 0 is greedy (the most likely token each time).
    #[arg(
        long,
        default_value_t = 0.0,
        value_name = "T",
        allow_negative_numbers = true
    )]
    temperature: f32,
    /// Keep only the K most likely tokens (0: all).
    #[arg(long, default_value_t = 0, value_name = "K")]
    top_k: usize,
    /// Nucleus sampling: keep the most likely tokens up to this probability mass.
    #[arg(
        long,
        default_value_t = 1.0,
        value_name = "P",
        allow_negative_numbers = true
    )]
    top_p: f32,
    /// Seed of the sampler; the same seed gives the same text. [default: drawn at random]
    #[arg(long, value_name = "S")]
    seed: Option<u64>,
    /// Print the generated token ids to stderr at the end.
    #[arg(long)]
    show_ids: bool,
}

/// Runs `fastlibra generate`.
pub fn run(args: GenerateArgs) -> Result<(), Box<dyn std::error::Error>> {
    let params = SamplingParams {
        temperature: args.temperature,
        top_k: args.top_k,
        top_p: args.top_p,
        seed: args.seed,
        max_tokens: args.max_tokens,
        ..SamplingParams::default()
    };
    params.validate()?;
    let loaded = LoadedModel::open(&args.model)?;
    let lora = args
        .lora
        .as_deref()
        .map(|d| loaded.load_lora(d))
        .transpose()?;
    let prompt = match (args.prompt, args.chat) {
        (Some(text), _) => Prompt::Text(text),
        (None, Some(text)) => Prompt::Chat(text),
        (None, None) => return Err("one of --prompt or --chat is needed".into()),
    };
    let ids = loaded.prompt_ids(&prompt)?;
    let start = Instant::now();
    let mut first: Option<Instant> = None;
    let mut stdout = std::io::stdout().lock();
    let mut write_err = None;
    let out = generate(
        &loaded.model,
        &loaded.tokenizer,
        lora.as_ref(),
        &ids,
        &params,
        &loaded.name(),
        |step| {
            first.get_or_insert_with(Instant::now);
            if write_err.is_none()
                && let Err(e) = stdout
                    .write_all(step.text.as_bytes())
                    .and_then(|()| stdout.flush())
            {
                write_err = Some(e);
            }
        },
    )?;
    if let Some(e) = write_err {
        return Err(format!("writing to stdout: {e}").into());
    }
    writeln!(stdout)?;
    let end = Instant::now();
    let prefill_s = first.map_or(0.0, |f| (f - start).as_secs_f64());
    let decode_s = first.map_or(0.0, |f| (end - f).as_secs_f64());
    let decoded = out.tokens.len().saturating_sub(1);
    eprintln!(
        "{} prompt tokens ({:.1} tokens/s), {} generated ({:.1} tokens/s), finish: {:?}",
        out.prompt_tokens,
        out.prompt_tokens as f64 / prefill_s.max(1e-9),
        out.tokens.len(),
        decoded as f64 / decode_s.max(1e-9),
        out.finish
    );
    if args.show_ids {
        eprintln!("ids: {:?}", out.tokens);
    }
    Ok(())
}
