//! Time to first token through the in-process serving runtime at light load: one request at
//! a time, from `submit` to the first token event, median and percentiles over N requests.
//! The HTTP front's overhead, like for like (one runtime, requests alternating between the two
//! paths), is `cargo run --release -p fastlibra-serve --example http_overhead`.
//!
//! ```text
//! cargo run --release -p fastlibra-runtime --example online_ttft -- [MODEL] [REQUESTS] [PROMPT_TOKENS]
//! ```
//!
//! MODEL: a GGUF file or Hugging Face folder; default the SmolLM2 file of the model cache,
//! or, without it (or with MODEL `tiny`), the tiny random model with a byte-level tokenizer,
//! whose compute is so small that its TTFT is mostly the runtime's own overhead (the output
//! says which). REQUESTS: default 50 (after 5 warm-up requests). PROMPT_TOKENS: default 32; every
//! prompt is distinct, so no prefix cache hit shortens the prefill.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fastlibra_kernels::checkpoint::locate;
use fastlibra_kernels::cpu::{CpuModel, CpuModelConfig};
use fastlibra_kernels::sampling::SamplingParams;
use fastlibra_kernels::tokenizer::{GgufVocab, TokenType, Tokenizer, VocabModel};
use fastlibra_runtime::engine::PolicyKind;
use fastlibra_runtime::online::{
    GenerateRequest, ServeBackend, ServeOptions, TokenEvent, start, start_with,
};
use fastlibra_runtime::real::device::DeviceChoice;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let model = match args.first().map(String::as_str) {
        Some("tiny") => None,
        Some(path) => Some(PathBuf::from(path)),
        None => locate::smollm2(),
    };
    let requests: usize = args.get(1).map_or(Ok(50), |s| s.parse())?;
    let prompt_tokens: u32 = args.get(2).map_or(Ok(32), |s| s.parse())?;
    let options = ServeOptions {
        model: model
            .clone()
            .unwrap_or_else(|| PathBuf::from("tiny-random")),
        served_model_name: Some("base".into()),
        lora_modules: Vec::new(),
        max_loras: 4,
        max_lora_rank: 64,
        max_cpu_loras: None,
        max_model_len: None,
        max_num_seqs: 32,
        max_waiting: 256,
        device: DeviceChoice::Emulated,
        shards: 1,
        tier_bytes: [256 << 20, 256 << 20, 512 << 20],
        spill_dir: None,
        policy: PolicyKind::Fastlibra,
    };
    let started = Instant::now();
    let backend: Arc<dyn ServeBackend> = match &model {
        Some(_) => start(&options)?,
        None => {
            let tokenizer = byte_tokenizer()?;
            let config = CpuModelConfig {
                vocab: tokenizer.vocab_size(),
                ..CpuModelConfig::tiny()
            };
            let model = CpuModel::random(config, 7)?;
            start_with(Arc::new(model), Arc::new(tokenizer), &options)?
        }
    };
    println!(
        "model: {} ({}), started in {:.2} s",
        options.model.display(),
        if model.is_some() {
            "checkpoint"
        } else {
            "tiny random model"
        },
        started.elapsed().as_secs_f64()
    );
    let vocab = backend.model().tokenizer.vocab_size() as u32;
    let mut ttft = Vec::with_capacity(requests);
    for i in 0..requests + 5 {
        let prompt: Vec<u32> = (0..prompt_tokens)
            .map(|t| 3 + (i as u32 * 7919 + t * 104_729) % (vocab - 3))
            .collect();
        let request = GenerateRequest {
            adapter: None,
            prompt,
            params: SamplingParams {
                max_tokens: 4,
                stop_token_ids: Vec::new(),
                ..SamplingParams::greedy()
            },
        };
        let t0 = Instant::now();
        let mut stream = backend.submit(request)?;
        let mut first = None;
        futures_lite::future::block_on(async {
            while let Some(event) = stream.next().await {
                if matches!(event, TokenEvent::Token(_)) && first.is_none() {
                    first = Some(t0.elapsed());
                }
            }
        });
        if i >= 5
            && let Some(f) = first
        {
            ttft.push(f);
        }
    }
    ttft.sort();
    let pct = |p: f64| ttft[((ttft.len() as f64 - 1.0) * p).round() as usize];
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let mean = ttft.iter().map(|d| ms(*d)).sum::<f64>() / ttft.len() as f64;
    println!(
        "in-process TTFT over {} requests of {prompt_tokens} prompt tokens, one at a time: \
         median {:.3} ms, p90 {:.3} ms, p99 {:.3} ms, min {:.3} ms, mean {:.3} ms",
        ttft.len(),
        ms(pct(0.5)),
        ms(pct(0.9)),
        ms(pct(0.99)),
        ms(ttft[0]),
        mean
    );
    let report = backend.drain(Duration::from_secs(10));
    println!("drained: {report:?}");
    Ok(())
}

/// GPT-2's byte-level tokenizer over three control tokens and the 256 bytes.
fn byte_tokenizer() -> Result<Tokenizer, Box<dyn std::error::Error>> {
    let printable = |b: u32| {
        (0x21..=0x7E).contains(&b) || (0xA1..=0xAC).contains(&b) || (0xAE..=0xFF).contains(&b)
    };
    let mut next = 256;
    let mut tokens: Vec<String> = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for b in 0..256u32 {
        let c = if printable(b) {
            b
        } else {
            next += 1;
            next - 1
        };
        tokens.push(char::from_u32(c).ok_or("byte table")?.to_string());
    }
    let mut token_types = vec![TokenType::Control; 3];
    token_types.extend([TokenType::Normal; 256]);
    let vocab = GgufVocab {
        origin: "byte-level".into(),
        model: VocabModel::Gpt2 {
            merges: Vec::new(),
            pre: None,
        },
        tokens,
        token_types,
        bos: Some(1),
        eos: Some(2),
        eot: None,
        unk: None,
        add_bos: Some(false),
        add_eos: None,
        chat_template: None,
    };
    Ok(Tokenizer::from_vocab(&vocab)?)
}
