//! Tokens per second of the CPU backend on SmolLM2-135M, one thread, measured the way
//! `scripts/refs/speed_ref.py` measures llama.cpp (docs/peers.md): prefill of 128 and 512
//! tokens from an empty cache (last position's logits only), single-sequence decode of 64
//! tokens after a 128-token prompt, and the same decode for 8 sequences in one batch (without
//! and with a rank-16 adapter of its own on all seven projections per sequence). One warm-up,
//! then the median of the runs. Each rate also prints tokens per CPU-second (the median over
//! the timed runs of tokens / (wall time × the process's CPU share)): on a loaded machine, an
//! estimate of the rate on an idle core.
//!
//! The model is `SmolLM2-135M-Instruct.F32.gguf` from the model folder (`FASTLIBRA_MODEL_DIR`,
//! see `checkpoint::locate`), else the Q4_1 file dequantised (the same arithmetic), else
//! random weights of the same shape. Where llama.cpp's figures are on file
//! (`speed_llama_cpp.json` in `FASTLIBRA_REFS_DIR`, default `…/fastlibra/refs`), the ratios
//! are printed too. Run: `cargo bench -p fastlibra-kernels --bench cpu_speed`; add a word to run
//! only the runs whose name holds it: `-- prefill`, `-- decode`, `-- "decode 1"` (one
//! sequence), `-- "decode 8"` (the batches).

use std::path::PathBuf;
use std::time::Instant;

use fastlibra_kernels::LoraTargets;
use fastlibra_kernels::checkpoint::{Checkpoint, locate};
use fastlibra_kernels::cpu::{CpuLora, CpuModel, CpuModelConfig, KvArena, SeqInput};

const BLOCK: usize = 16;
const PROMPT: usize = 128;
const STEPS: usize = 64;
const BATCH: usize = 8;
const REPEATS: usize = 5;

/// Process CPU time in seconds.
fn cpu_seconds() -> f64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid, exclusively borrowed timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut t) };
    t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9
}

/// Wall seconds of `f`, and the share of them this process spent on a CPU.
fn timed(f: impl FnOnce()) -> (f64, f64) {
    let (c0, t0) = (cpu_seconds(), Instant::now());
    f();
    let wall = t0.elapsed().as_secs_f64();
    (wall, (cpu_seconds() - c0) / wall)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn load() -> (CpuModel, String) {
    let dir = locate::model_dir();
    for name in ["SmolLM2-135M-Instruct.F32.gguf", locate::SMOLLM2_FILE] {
        let Some(path) = dir.as_ref().map(|d| d.join(name)).filter(|p| p.is_file()) else {
            continue;
        };
        let checkpoint = Checkpoint::open(&path).expect("the model file opens");
        let model = CpuModel::from_checkpoint(&checkpoint).expect("a Llama checkpoint");
        return (model, name.to_string());
    }
    let model = CpuModel::random(CpuModelConfig::smollm2_135m(), 1).expect("valid shape");
    (
        model,
        "random weights of the SmolLM2-135M shape".to_string(),
    )
}

fn tokens(n: usize, vocab: usize, salt: usize) -> Vec<u32> {
    (0..n)
        .map(|i| ((i * 7919 + salt * 104_729 + 13) % vocab) as u32)
        .collect()
}

struct Bench {
    model: CpuModel,
    shares: Vec<f64>,
    /// Tokens per second of CPU time of each timed run of the current measurement: on a loaded
    /// machine, what the wall rate would have been had the process kept its core.
    cpu_rates: Vec<f64>,
}

impl Bench {
    fn arena(&self, pages: usize) -> KvArena {
        KvArena::for_model(self.model.config(), BLOCK, pages).expect("arena")
    }

    fn prefill(&mut self, n: usize) -> f64 {
        let prompt = tokens(n, self.model.config().vocab, 0);
        let pages = n.div_ceil(BLOCK);
        let table: Vec<u32> = (0..pages as u32).collect();
        let mut arena = self.arena(pages);
        self.cpu_rates.clear();
        let mut run = || {
            let (wall, share) = timed(|| {
                self.model
                    .prefill(&mut arena, &prompt, &table, 0, None)
                    .expect("prefill");
            });
            self.shares.push(share);
            self.cpu_rates.push(n as f64 / (wall * share));
            n as f64 / wall
        };
        run();
        median((0..REPEATS).map(|_| run()).collect())
    }

    /// Decode of `seqs` sequences in one batch, each with `loras[s]` (if any).
    fn decode(&mut self, seqs: usize, loras: &[Option<CpuLora>], repeats: usize) -> f64 {
        let vocab = self.model.config().vocab;
        let per_seq = (PROMPT + STEPS).div_ceil(BLOCK) as u32;
        let tables: Vec<Vec<u32>> = (0..seqs as u32)
            .map(|s| (s * per_seq..(s + 1) * per_seq).collect())
            .collect();
        let texts: Vec<Vec<u32>> = (0..seqs)
            .map(|s| tokens(PROMPT + STEPS, vocab, s))
            .collect();
        let mut arena = self.arena(seqs * per_seq as usize);
        self.cpu_rates.clear();
        let mut run = || {
            for s in 0..seqs {
                let (text, table) = (&texts[s], &tables[s]);
                let lora = loras[s].as_ref();
                self.model
                    .prefill(&mut arena, &text[..PROMPT], table, 0, lora)
                    .expect("prompt");
            }
            let (wall, share) = timed(|| {
                for step in 0..STEPS {
                    let pos = PROMPT + step;
                    let batch: Vec<SeqInput<'_>> = (0..seqs)
                        .map(|s| SeqInput {
                            tokens: &texts[s][pos..pos + 1],
                            block_table: &tables[s],
                            start_pos: pos,
                            lora: loras[s].as_ref(),
                        })
                        .collect();
                    self.model.forward_batch(&mut arena, &batch).expect("step");
                }
            });
            self.shares.push(share);
            self.cpu_rates.push((seqs * STEPS) as f64 / (wall * share));
            (seqs * STEPS) as f64 / wall
        };
        run();
        median((0..repeats).map(|_| run()).collect())
    }

    /// The median tokens per CPU-second of the last measurement's timed runs (its warm-up
    /// left out), as a note for the line that reports it.
    fn per_cpu(&self) -> String {
        let rate = median(self.cpu_rates.iter().skip(1).copied().collect());
        format!(" [{rate:.1} per CPU-second]")
    }
}

/// llama.cpp's figures from `speed_llama_cpp.json`, if the reference script wrote them.
fn llama_cpp() -> Option<[f64; 3]> {
    let dir = std::env::var_os("FASTLIBRA_REFS_DIR")
        .map(PathBuf::from)
        .or_else(|| locate::cache_dir().map(|c| c.join("refs")))?;
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("speed_llama_cpp.json")).ok()?).ok()?;
    let f32 = &doc["results"]["f32"];
    let get = |k: &str| f32[k]["tokens_per_s"].as_f64();
    Some([get("prefill_128")?, get("prefill_512")?, get("decode")?])
}

/// The word runs must contain to be timed (`cargo bench … -- WORD`), or none for every run.
fn filter() -> Option<String> {
    std::env::args().skip(1).find(|a| !a.starts_with('-'))
}

fn main() {
    let only = filter();
    let wanted = |name: &str| only.as_deref().is_none_or(|w| name.contains(w));
    let (model, source) = load();
    let c = model.config().clone();
    println!("cpu_speed: {source}, one thread, pages of {BLOCK} tokens");
    let mut b = Bench {
        model,
        shares: Vec::new(),
        cpu_rates: Vec::new(),
    };
    let nan = f64::NAN;
    let p128 = if wanted("prefill 128") {
        b.prefill(128)
    } else {
        nan
    };
    let p512 = if wanted("prefill 512") {
        b.prefill(512)
    } else {
        nan
    };
    for (n, v) in [(128, p128), (512, p512)] {
        if !v.is_nan() {
            println!("prefill {n} tokens: {v:8.1} tokens/s");
        }
    }
    let d1 = if wanted("decode 1") {
        b.decode(1, &[None], REPEATS)
    } else {
        nan
    };
    if !d1.is_nan() {
        println!(
            "decode, 1 sequence: {d1:8.1} tokens/s (context {PROMPT}..{}){}",
            PROMPT + STEPS,
            b.per_cpu()
        );
    }
    if wanted("decode 8") {
        let none: Vec<Option<CpuLora>> = vec![None; BATCH];
        let d8 = b.decode(BATCH, &none, 3);
        println!(
            "decode, {BATCH} batched: {d8:8.1} tokens/s ({:.2} × one sequence){}",
            d8 / d1,
            b.per_cpu()
        );
        let loras: Vec<Option<CpuLora>> = (0..BATCH as u64)
            .map(|s| {
                Some(CpuLora::random_on(&c, LoraTargets::ALL_LINEAR, 16, 2.0, s).expect("lora"))
            })
            .collect();
        let d8l = b.decode(BATCH, &loras, 3);
        println!(
            "decode, {BATCH} batched, rank-16 adapter each on all seven projections: {d8l:8.1} \
             tokens/s ({:.2} × one sequence){}",
            d8l / d1,
            b.per_cpu()
        );
    }
    let share = b.shares.iter().copied().fold(f64::INFINITY, f64::min);
    println!(
        "lowest CPU share of a timed run: {share:.3} (below 0.95: another process took the core)"
    );
    let ours = [p128, p512, d1];
    let issue = [434.0, 375.0, 21.0];
    let ratios = |of: [f64; 3]| {
        let r: Vec<String> = ours
            .iter()
            .zip(of)
            .map(|(o, l)| format!("{:.2}", o / l))
            .collect();
        r.join(" / ")
    };
    println!("ratios prefill 128 / prefill 512 / decode against llama.cpp:");
    println!(
        "  the issue's figures (434 / 375 / 21 tokens/s): {}",
        ratios(issue)
    );
    if let Some(measured) = llama_cpp() {
        println!(
            "  speed_llama_cpp.json ({:.0} / {:.0} / {:.1} tokens/s): {}",
            measured[0],
            measured[1],
            measured[2],
            ratios(measured)
        );
    }
}
