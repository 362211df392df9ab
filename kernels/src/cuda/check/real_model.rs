//! A real checkpoint on the GPU against the CPU path: the same prompts through
//! [`CpuModel::forward_batch`] and [`CudaModel::forward_batch`], all in one batch, then greedy
//! steps; every second prompt with a random rank-[`ADAPTER_RANK`] adapter on q, k, v and o of
//! the checkpoint's shapes (the batch mixes it with the base model, as serving does). The CPU picks each next token ([`Reference`]); the GPU is fed the same tokens
//! (teacher forcing), so every step compares logits of the same inputs, and the GPU's own
//! arg-max at each step says whether its greedy tokens would be the CPU's.
//!
//! With fp32 weights the GPU is held to the CPU model itself. With bf16 weights it is held to
//! the CPU model whose GEMM weights are rounded the same way
//! ([`CpuModel::with_bf16_gemm_weights`]): the same function in fp32 arithmetic, so the same
//! bound; how far bf16 weights move the logits from the fp32 model is reported beside it.

use super::kernels::max_abs_diff;
use crate::cpu::{CpuLora, CpuModel, KvArena, SeqInput};
use crate::cuda::device::CudaDevice;
use crate::cuda::error::Result;
use crate::cuda::forward::CudaSeq;
use crate::cuda::model::{CudaModel, WeightPrecision};
use crate::cuda::pool::DevicePagePool;

/// The prompts the check runs, tokenised with the checkpoint's own tokenizer.
pub const PROMPTS: [&str; 4] = [
    "The capital of France is",
    "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n",
    "Water boils at a temperature of",
    "Once upon a time, in a small village by the sea, there lived",
];
/// Logit rows compared per prompt: the prompt's last position, then this many minus one
/// greedy steps.
pub const GREEDY_STEPS: usize = 8;
/// Largest |GPU − CPU| of any logit, fp32 weights against the CPU model, and bf16 weights
/// against the CPU model with the same bf16-rounded weights.
pub const LOGIT_TOLERANCE: f64 = 1e-2;
/// KV block of the check's pages.
const BLOCK_TOKENS: usize = 16;
/// Rank of the random adapter on the odd prompts.
pub const ADAPTER_RANK: usize = 8;

/// Whether prompt `s` runs with the adapter (the odd ones).
fn adapted(s: usize) -> bool {
    s % 2 == 1
}

/// The CPU path's run of the prompts: the tokens fed at each step and the logits it gave.
#[derive(Clone, Debug)]
pub struct Reference {
    /// Each prompt's token ids.
    pub prompts: Vec<Vec<u32>>,
    /// Each prompt's greedy tokens: the arg-max of each step's logits ([`GREEDY_STEPS`]).
    pub greedy: Vec<Vec<u32>>,
    /// `logits[step][prompt]`: the last position's logits of each step (step 0: the prompt).
    pub logits: Vec<Vec<Vec<f32>>>,
}

impl Reference {
    /// Runs `prompts` through `model` in one batch, then `steps - 1` greedy decode steps, all
    /// sequences together (as a serving batch would), the odd ones with `lora`.
    pub fn run(
        model: &CpuModel,
        prompts: &[Vec<u32>],
        steps: usize,
        lora: Option<&CpuLora>,
    ) -> Result<Reference> {
        let layout = PageLayout::of(prompts, steps);
        let mut arena = KvArena::for_model(model.config(), BLOCK_TOKENS, layout.pages)?;
        let mut greedy: Vec<Vec<u32>> = vec![Vec::new(); prompts.len()];
        let mut logits = Vec::with_capacity(steps);
        for step in 0..steps {
            let feed = step_tokens(prompts, &greedy, step);
            let seqs: Vec<SeqInput<'_>> = (0..prompts.len())
                .map(|s| SeqInput {
                    tokens: &feed[s],
                    block_table: &layout.tables[s],
                    start_pos: start_pos(prompts, s, step),
                    lora: lora.filter(|_| adapted(s)),
                })
                .collect();
            let out = model.forward_batch(&mut arena, &seqs)?;
            for (g, row) in greedy.iter_mut().zip(&out) {
                g.push(argmax(row));
            }
            logits.push(out);
        }
        Ok(Reference {
            prompts: prompts.to_vec(),
            greedy,
            logits,
        })
    }

    /// Steps run.
    pub fn steps(&self) -> usize {
        self.logits.len()
    }
}

/// How the GPU's run of a [`Reference`]'s tokens compared with it.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Comparison {
    /// max |GPU − CPU| over the prompts' last-position logits (∞ on a NaN).
    pub prefill_max_abs_diff: f64,
    /// The same over every step's logits.
    pub max_abs_diff: f64,
    /// Largest |logit| of the CPU reference, for scale.
    pub max_abs_logit: f64,
    /// The GPU's arg-max at each step, per prompt (fed the CPU's tokens).
    pub gpu_greedy: Vec<Vec<u32>>,
    /// Whether every one equals the CPU's.
    pub greedy_identical: bool,
}

impl Comparison {
    /// Whether the logits are within [`LOGIT_TOLERANCE`] and the greedy tokens identical.
    pub fn passed(&self) -> bool {
        self.max_abs_diff <= LOGIT_TOLERANCE && self.greedy_identical
    }
}

/// Feeds `reference`'s tokens through `gpu` (NaN-poisoned pages and buffers), the odd
/// prompts with `lora` loaded into pool pages after the KV pages, and compares.
pub fn compare(
    dev: &CudaDevice,
    gpu: &CudaModel,
    reference: &Reference,
    lora: Option<&CpuLora>,
) -> Result<Comparison> {
    let prompts = &reference.prompts;
    let steps = reference.steps();
    let layout = PageLayout::of(prompts, steps);
    let pf = gpu.config().page_floats(BLOCK_TOKENS);
    let lora_pages = lora.map_or(0, |l| gpu.lora_pages(l.rank(), pf));
    let pages = layout.pages + lora_pages;
    let mut pool = DevicePagePool::new(dev, pages, pf)?;
    let nan = vec![f32::NAN; pf];
    for p in 0..pages as u32 {
        pool.write_pages(dev, p, &nan)?;
    }
    let ids: Vec<u32> = (layout.pages as u32..pages as u32).collect();
    let device_lora = match lora {
        Some(l) => Some(gpu.load_lora(dev, &mut pool, l, &ids)?),
        None => None,
    };
    let mut gpu_greedy: Vec<Vec<u32>> = vec![Vec::new(); prompts.len()];
    let (mut prefill, mut all) = (0f64, 0f64);
    for step in 0..steps {
        let feed = step_tokens(prompts, &reference.greedy, step);
        let seqs: Vec<CudaSeq<'_>> = (0..prompts.len())
            .map(|s| CudaSeq {
                tokens: &feed[s],
                block_table: &layout.tables[s],
                start_pos: start_pos(prompts, s, step),
                lora: device_lora.as_ref().filter(|_| adapted(s)),
            })
            .collect();
        let got = gpu.forward_batch(dev, &mut pool, BLOCK_TOKENS, &seqs)?;
        let diff = max_abs_diff(&got, &reference.logits[step]);
        if step == 0 {
            prefill = diff;
        }
        all = all.max(diff);
        for (g, row) in gpu_greedy.iter_mut().zip(&got) {
            g.push(argmax(row));
        }
    }
    let max_abs_logit = reference
        .logits
        .iter()
        .flatten()
        .flatten()
        .fold(0f64, |m, v| m.max(f64::from(v.abs())));
    Ok(Comparison {
        prefill_max_abs_diff: prefill,
        max_abs_diff: all,
        max_abs_logit,
        greedy_identical: gpu_greedy == reference.greedy,
        gpu_greedy,
    })
}

/// What `fastlibra cuda check --model PATH` found.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RealModelCheck {
    /// The model's name.
    pub model: String,
    /// Tokens of each prompt.
    pub prompt_tokens: Vec<usize>,
    /// Rank of the random q, k, v, o adapter on the odd prompts.
    pub adapter_rank: usize,
    /// Logit rows compared per prompt (the prompt, then greedy steps).
    pub steps: usize,
    /// The CPU's greedy tokens with fp32 weights.
    pub cpu_greedy: Vec<Vec<u32>>,
    /// fp32 weights on the GPU against the CPU model.
    pub fp32: Comparison,
    /// bf16 GEMM weights on the GPU against the CPU model with the same rounded weights.
    pub bf16: Comparison,
    /// max |bf16 CPU − fp32 CPU| over the prompts' last-position logits: how far bf16 weights
    /// move this model (reported, not a pass condition).
    pub bf16_vs_fp32_prefill_max_abs_diff: f64,
    /// The bound both comparisons are held to.
    pub tolerance: f64,
    /// Whether both held, greedy tokens included.
    pub passed: bool,
}

/// The whole check on `dev`: the CPU references (fp32 and bf16-rounded), then the model on the
/// GPU with each precision, fed the same tokens, the odd prompts with the same random adapter.
pub fn run(
    dev: &CudaDevice,
    model: &CpuModel,
    name: &str,
    prompts: &[Vec<u32>],
) -> Result<RealModelCheck> {
    crate::cuda::check_supported(model.config())?;
    let lora = CpuLora::random(model.config(), ADAPTER_RANK, 0.5, 7)?;
    let fp32_ref = Reference::run(model, prompts, GREEDY_STEPS, Some(&lora))?;
    let fp32 = {
        let mut gpu = CudaModel::from_cpu_with(dev, model, WeightPrecision::F32)?;
        gpu.poison = true;
        compare(dev, &gpu, &fp32_ref, Some(&lora))?
    };
    let rounded = model.with_bf16_gemm_weights();
    let bf16_ref = Reference::run(&rounded, prompts, GREEDY_STEPS, Some(&lora))?;
    drop(rounded);
    let bf16 = {
        let mut gpu = CudaModel::from_cpu_with(dev, model, WeightPrecision::Bf16)?;
        gpu.poison = true;
        compare(dev, &gpu, &bf16_ref, Some(&lora))?
    };
    Ok(RealModelCheck {
        model: name.to_string(),
        prompt_tokens: prompts.iter().map(Vec::len).collect(),
        adapter_rank: ADAPTER_RANK,
        steps: GREEDY_STEPS,
        bf16_vs_fp32_prefill_max_abs_diff: max_abs_diff(&bf16_ref.logits[0], &fp32_ref.logits[0]),
        cpu_greedy: fp32_ref.greedy,
        passed: fp32.passed() && bf16.passed(),
        fp32,
        bf16,
        tolerance: LOGIT_TOLERANCE,
    })
}

impl RealModelCheck {
    /// A few lines for the terminal.
    pub fn summary(&self) -> String {
        let line = |what: &str, c: &Comparison| {
            format!(
                "{what}: prompt logits max |diff| {:.2e}, all {} steps {:.2e} (≤ {:.0e}; max |logit| {:.1}); greedy identical {}",
                c.prefill_max_abs_diff,
                self.steps,
                c.max_abs_diff,
                self.tolerance,
                c.max_abs_logit,
                c.greedy_identical
            )
        };
        format!(
            "real model {} ({} prompts, every second with a rank-{} q/k/v/o adapter): {}\n  {}\n  {}\n  bf16 weights move the prompt logits by {:.2e} from fp32 (reported)",
            self.model,
            self.prompt_tokens.len(),
            self.adapter_rank,
            if self.passed { "ok" } else { "FAILED" },
            line("fp32 weights vs CPU", &self.fp32),
            line("bf16 weights vs CPU with bf16-rounded weights", &self.bf16),
            self.bf16_vs_fp32_prefill_max_abs_diff
        )
    }
}

/// Each sequence's pages: its own run of pages, enough for the prompt and every greedy step.
struct PageLayout {
    tables: Vec<Vec<u32>>,
    pages: usize,
}

impl PageLayout {
    fn of(prompts: &[Vec<u32>], steps: usize) -> PageLayout {
        let mut next = 0u32;
        let tables = prompts
            .iter()
            .map(|p| {
                let n = (p.len() + steps).div_ceil(BLOCK_TOKENS) as u32;
                next += n;
                (next - n..next).collect()
            })
            .collect();
        PageLayout {
            tables,
            pages: next as usize,
        }
    }
}

/// The tokens each sequence feeds at `step`: the prompt at step 0, then the previous greedy
/// token.
fn step_tokens(prompts: &[Vec<u32>], greedy: &[Vec<u32>], step: usize) -> Vec<Vec<u32>> {
    (0..prompts.len())
        .map(|s| {
            if step == 0 {
                prompts[s].clone()
            } else {
                vec![greedy[s][step - 1]]
            }
        })
        .collect()
}

/// Positions sequence `s` has cached before `step`.
fn start_pos(prompts: &[Vec<u32>], s: usize, step: usize) -> usize {
    if step == 0 {
        0
    } else {
        prompts[s].len() + step - 1
    }
}

/// The index of the largest value (the first on a tie; NaN never wins).
pub fn argmax(row: &[f32]) -> u32 {
    let mut best = 0;
    for (i, v) in row.iter().enumerate() {
        if *v > row[best] || row[best].is_nan() && !v.is_nan() {
            best = i;
        }
    }
    best as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::CpuModelConfig;

    #[test]
    fn argmax_takes_the_first_largest_and_skips_nan() {
        assert_eq!(argmax(&[1.0, 3.0, 3.0, -1.0]), 1);
        assert_eq!(argmax(&[f32::NAN, 0.5, 0.25]), 1);
        assert_eq!(argmax(&[2.0]), 0);
    }

    #[test]
    fn each_sequence_gets_its_own_pages_for_prompt_and_steps() {
        let prompts = vec![vec![1u32; 9], vec![2; 16], vec![3; 1]];
        let l = PageLayout::of(&prompts, 8);
        // 17, 24 and 9 positions of 16-token blocks.
        assert_eq!(l.tables, vec![vec![0, 1], vec![2, 3], vec![4]]);
        assert_eq!(l.pages, 5);
        assert_eq!(
            step_tokens(&prompts, &[vec![7], vec![8], vec![9]], 1)[1],
            vec![8]
        );
        assert_eq!(start_pos(&prompts, 0, 0), 0);
        assert_eq!(start_pos(&prompts, 0, 3), 11);
    }

    #[test]
    fn the_reference_greedy_run_is_the_cpu_models_own_decode() {
        let model = CpuModel::random(CpuModelConfig::tiny(), 3).unwrap();
        let prompts = vec![vec![5u32, 9, 200, 17], vec![1, 2]];
        let r = Reference::run(&model, &prompts, 4, None).unwrap();
        assert_eq!(r.steps(), 4);
        // Sequence 0 alone, one token at a time, picks the same tokens and logits.
        let mut arena = KvArena::for_model(model.config(), 16, 2).unwrap();
        let mut logits = model
            .prefill(&mut arena, &prompts[0], &[0], 0, None)
            .unwrap();
        for step in 0..4 {
            assert_eq!(argmax(&logits), r.greedy[0][step]);
            let diff = max_abs_diff(&[logits.clone()], &[r.logits[step][0].clone()]);
            assert!(diff < 1e-5, "step {step}: {diff}");
            let pos = prompts[0].len() + step;
            logits = model
                .decode(&mut arena, r.greedy[0][step], &[0], pos, None)
                .unwrap();
        }
    }

    #[test]
    fn the_adapter_moves_the_odd_prompts_only() {
        let model = CpuModel::random(CpuModelConfig::tiny(), 3).unwrap();
        let lora = CpuLora::random(model.config(), ADAPTER_RANK, 0.5, 7).unwrap();
        let prompts = vec![vec![5u32, 9, 200], vec![1, 2, 3]];
        let base = Reference::run(&model, &prompts, 2, None).unwrap();
        let with = Reference::run(&model, &prompts, 2, Some(&lora)).unwrap();
        assert_eq!(base.logits[0][0], with.logits[0][0]);
        assert_ne!(base.logits[0][1], with.logits[0][1]);
    }

    #[test]
    fn bf16_weights_on_the_cpu_round_the_gemm_weights_only() {
        let model = CpuModel::random(CpuModelConfig::tiny(), 3).unwrap();
        let rounded = model.with_bf16_gemm_weights();
        let prompts = vec![vec![5u32, 9, 200, 17]];
        let a = Reference::run(&model, &prompts, 1, None).unwrap();
        let b = Reference::run(&rounded, &prompts, 1, None).unwrap();
        let diff = max_abs_diff(&a.logits[0], &b.logits[0]);
        assert!(diff > 0.0 && diff < 0.1, "{diff}");
        assert_eq!(rounded.with_bf16_gemm_weights().config(), model.config());
    }
}
