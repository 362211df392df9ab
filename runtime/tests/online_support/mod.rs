//! Shared pieces of the serving-runtime tests: a tiny random model with a byte-level
//! tokenizer (always available), the real SmolLM2 checkpoint (or a skip), PEFT adapters
//! written to a scratch folder, and greedy decoding computed directly with the CPU model.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fastlibra_kernels::LoraTargets;
use fastlibra_kernels::checkpoint::locate;
use fastlibra_kernels::cpu::{CpuLora, CpuModel, CpuModelConfig, KvArena};
use fastlibra_kernels::peft::{Adapter, AdapterShape, WeightDtype, write_peft};
use fastlibra_kernels::sampling::{FinishReason, SamplingParams};
use fastlibra_kernels::tokenizer::{GgufVocab, TokenType, Tokenizer, VocabModel};
use fastlibra_runtime::engine::PolicyKind;
use fastlibra_runtime::online::{
    GenerateRequest, RequestStream, RuntimeSnapshot, ServeBackend, ServeOptions, TokenEvent, Usage,
};
use fastlibra_runtime::real::device::DeviceChoice;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A folder removed when dropped.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Scratch {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir = std::env::temp_dir().join(format!(
            "fastlibra-online-{tag}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// GPT-2's byte-to-character table.
fn byte_chars() -> Vec<char> {
    let printable = |b: u32| {
        (0x21..=0x7E).contains(&b) || (0xA1..=0xAC).contains(&b) || (0xAE..=0xFF).contains(&b)
    };
    let mut next = 256;
    (0..256u32)
        .map(|b| {
            if printable(b) {
                char::from_u32(b).unwrap()
            } else {
                next += 1;
                char::from_u32(next - 1).unwrap()
            }
        })
        .collect()
}

/// A byte-level tokenizer: three control tokens (`<|im_end|>`, id 2, ends a turn), then
/// the 256 bytes: 259 tokens.
pub fn byte_tokenizer() -> Tokenizer {
    let specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"];
    let mut tokens: Vec<String> = specials.iter().map(|s| s.to_string()).collect();
    let mut token_types = vec![TokenType::Control; 3];
    tokens.extend(byte_chars().iter().map(|c| c.to_string()));
    token_types.extend([TokenType::Normal; 256]);
    let vocab = GgufVocab {
        origin: "test.gguf".into(),
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
    Tokenizer::from_vocab(&vocab).expect("byte-level tokenizer")
}

/// The tiny random model with the byte tokenizer's vocabulary.
pub fn tiny() -> (Arc<CpuModel>, Arc<Tokenizer>) {
    let tokenizer = byte_tokenizer();
    let config = CpuModelConfig {
        vocab: tokenizer.vocab_size(),
        ..CpuModelConfig::tiny()
    };
    let model = CpuModel::random(config, 7).expect("tiny model");
    (Arc::new(model), Arc::new(tokenizer))
}

/// The SmolLM2 file, or `None` after one skip line; panics when it is missing and
/// `FASTLIBRA_REQUIRE_MODEL=1`.
pub fn smollm2(test: &str) -> Option<PathBuf> {
    if let Some(path) = locate::smollm2() {
        return Some(path);
    }
    let file = locate::model_dir()
        .unwrap_or_default()
        .join(locate::SMOLLM2_FILE);
    assert!(
        !locate::model_required(),
        "{test}: FASTLIBRA_REQUIRE_MODEL=1 but {} is missing; run scripts/fetch-model.sh",
        file.display()
    );
    eprintln!(
        "skip {test}: {} not found (run scripts/fetch-model.sh)",
        file.display()
    );
    None
}

/// Options for one emulated shard with small tiers.
pub fn options(model: &Path, tier_bytes: [u64; 3]) -> ServeOptions {
    ServeOptions {
        model: model.to_path_buf(),
        served_model_name: Some("base".into()),
        lora_modules: Vec::new(),
        max_loras: 4,
        max_lora_rank: 16,
        max_cpu_loras: None,
        max_model_len: None,
        max_num_seqs: 8,
        max_waiting: 64,
        device: DeviceChoice::Emulated,
        shards: 1,
        tier_bytes,
        spill_dir: None,
        policy: PolicyKind::Fastlibra,
    }
}

/// A random PEFT adapter of `config`'s shape on q, k, v and o, written to `dir`.
pub fn write_adapter(config: &CpuModelConfig, dir: &Path, rank: u32, seed: u64) {
    let spec = config.model_spec();
    let shape = AdapterShape {
        rank,
        alpha: 2.0 * rank as f32,
        targets: LoraTargets::ATTENTION,
        dtype: WeightDtype::F32,
    };
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let adapter = Adapter::from_fn(&spec, shape, |_, _, _, _| rng.random_range(-0.2f32..0.2))
        .expect("adapter");
    write_peft(dir, &adapter, &config.name).expect("write PEFT");
}

/// The adapter in `dir` as the CPU model applies it.
pub fn read_lora(config: &CpuModelConfig, dir: &Path) -> CpuLora {
    let adapter = fastlibra_kernels::peft::load_peft(dir, &config.model_spec()).expect("load PEFT");
    CpuLora::from_adapter(config, &adapter).expect("CPU LoRA")
}

/// Greedy decoding computed directly: `max_tokens` tokens after `prompt`, stopping after
/// the first of `stop_ids`.
pub fn direct_greedy(
    model: &CpuModel,
    lora: Option<&CpuLora>,
    prompt: &[u32],
    max_tokens: usize,
    stop_ids: &[u32],
) -> Vec<u32> {
    let block = 16;
    let pages = (prompt.len() + max_tokens).div_ceil(block) + 1;
    let mut arena = KvArena::for_model(model.config(), block, pages).unwrap();
    let table: Vec<u32> = (0..pages as u32).collect();
    let mut logits = model.prefill(&mut arena, prompt, &table, 0, lora).unwrap();
    let mut out = Vec::new();
    loop {
        let next = argmax(&logits);
        out.push(next);
        if out.len() == max_tokens || stop_ids.contains(&next) {
            return out;
        }
        let pos = prompt.len() + out.len() - 1;
        logits = model.decode(&mut arena, next, &table, pos, lora).unwrap();
    }
}

fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in logits.iter().enumerate() {
        if v > logits[best] {
            best = i;
        }
    }
    best as u32
}

/// A request.
pub fn request(adapter: Option<&str>, prompt: &[u32], params: SamplingParams) -> GenerateRequest {
    GenerateRequest {
        adapter: adapter.map(str::to_string),
        prompt: prompt.to_vec(),
        params,
    }
}

/// Greedy, `max_tokens` tokens.
pub fn greedy(max_tokens: usize) -> SamplingParams {
    SamplingParams {
        max_tokens,
        ..SamplingParams::greedy()
    }
}

/// What a whole stream carried.
#[derive(Debug)]
pub struct Collected {
    pub tokens: Vec<u32>,
    pub text: String,
    pub finish: Option<FinishReason>,
    pub usage: Option<Usage>,
    pub failed: Option<String>,
}

/// Reads a stream to its end.
pub fn collect(mut stream: RequestStream) -> Collected {
    let mut out = Collected {
        tokens: Vec::new(),
        text: String::new(),
        finish: None,
        usage: None,
        failed: None,
    };
    futures_lite::future::block_on(async {
        while let Some(event) = stream.next().await {
            match event {
                TokenEvent::Token(step) => {
                    out.tokens.push(step.token.id);
                    out.text.push_str(&step.text);
                }
                TokenEvent::Done { finish, usage } => {
                    out.finish = Some(finish);
                    out.usage = Some(usage);
                }
                TokenEvent::Failed { message } => out.failed = Some(message),
            }
        }
    });
    out
}

/// Submits and reads the whole answer.
pub fn generate(backend: &dyn ServeBackend, request: GenerateRequest) -> Collected {
    collect(backend.submit(request).expect("submit"))
}

/// Waits (at most 10 s) until `ended` requests have ended (finished or cancelled) and the
/// runtime is idle by its published gauges, and returns them. Checks that no pin is left and
/// that every idle invariant check passed.
pub fn wait_idle(backend: &dyn ServeBackend, ended: u64) -> RuntimeSnapshot {
    let start = Instant::now();
    loop {
        let s = backend.snapshot();
        if s.requests_finished + s.requests_cancelled >= ended && s.running == 0 && s.waiting == 0 {
            assert_eq!(s.pinned_hbm_pages, 0, "pins left when idle: {s:?}");
            assert!(s.invariant_checks > 0, "no invariant check ran: {s:?}");
            assert_eq!(s.invariant_failures, 0, "an invariant check failed: {s:?}");
            return s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "not idle after 10 s: {s:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}
