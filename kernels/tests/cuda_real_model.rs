//! The real SmolLM2 checkpoint (F32 file) on the CUDA path: its shape is one the kernels run,
//! the CPU half of `fastlibra cuda check --model` runs on the file (tokenised prompts, greedy
//! steps, every second prompt with a q, k, v, o adapter of its shapes, the bf16-rounded
//! reference and how far it moves the logits), and on a GPU the whole
//! comparison passes. Without a CUDA driver the GPU test prints why it skipped; a missing model
//! file is a skip line, or a failure under `FASTLIBRA_REQUIRE_MODEL=1`.

mod refs_support;

use fastlibra_kernels::cpu::CpuLora;
use fastlibra_kernels::cuda::check::max_abs_diff;
use fastlibra_kernels::cuda::check::real_model::{self, ADAPTER_RANK, GREEDY_STEPS, Reference};
use fastlibra_kernels::cuda::{CudaDevice, CudaError, check_supported};
use fastlibra_kernels::generate::{LoadedModel, Prompt};
use refs_support::{F32_FILE, model_file};

fn load(test: &str) -> Option<(LoadedModel, Vec<Vec<u32>>)> {
    let path = model_file(test, F32_FILE)?;
    let m = LoadedModel::open(&path).expect("the model loads");
    let prompts = real_model::PROMPTS
        .iter()
        .map(|p| m.prompt_ids(&Prompt::Text((*p).to_string())).expect("ids"))
        .collect();
    Some((m, prompts))
}

#[test]
fn smollm2_is_a_shape_the_kernels_run_and_the_cpu_reference_runs_on_it() {
    let Some((m, prompts)) = load("cuda_real_model_reference") else {
        return;
    };
    let c = m.model.config();
    assert_eq!((c.heads, c.kv_heads, c.head_dim), (9, 3, 64));
    check_supported(c).expect("SmolLM2 runs on the CUDA kernels");
    let lora = CpuLora::random(c, ADAPTER_RANK, 0.5, 7).expect("an adapter of SmolLM2's shapes");
    let fp32 =
        Reference::run(&m.model, &prompts, GREEDY_STEPS, Some(&lora)).expect("fp32 reference");
    let rounded = m.model.with_bf16_gemm_weights();
    let bf16 =
        Reference::run(&rounded, &prompts, GREEDY_STEPS, Some(&lora)).expect("bf16 reference");
    assert_eq!(fp32.steps(), GREEDY_STEPS);
    let moved = max_abs_diff(&bf16.logits[0], &fp32.logits[0]);
    let agree = fp32
        .greedy
        .iter()
        .zip(&bf16.greedy)
        .map(|(a, b)| a.iter().zip(b).take_while(|(x, y)| x == y).count())
        .collect::<Vec<_>>();
    println!(
        "prompt tokens {:?}; fp32 greedy {:?}; bf16 weights move the prompt logits by {moved:.3e}; greedy tokens shared before the first difference {agree:?}",
        prompts.iter().map(Vec::len).collect::<Vec<_>>(),
        fp32.greedy
    );
    // Rounded weights change the function a little, not a lot.
    assert!(moved > 0.0 && moved < 1.0, "{moved}");
}

#[test]
fn smollm2_on_the_gpu_matches_the_cpu_path() {
    let dev = match CudaDevice::open(0) {
        Ok(dev) => dev,
        Err(CudaError::NoDriver) => {
            println!("skipped: no CUDA driver found (libcuda.so.1 not loadable)");
            return;
        }
        Err(e) => panic!("CUDA driver present but the device did not open: {e}"),
    };
    let Some((m, prompts)) = load("cuda_real_model_gpu") else {
        return;
    };
    let check = real_model::run(&dev, &m.model, "SmolLM2-135M-Instruct", &prompts)
        .expect("the comparison ran");
    println!("{}", check.summary());
    assert!(check.passed, "{check:#?}");
}
