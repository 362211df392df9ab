//! The entry point of the `peft_adapter` fuzz target (`fuzz/fuzz_targets/peft_adapter.rs`),
//! kept here so the stable corpus replay (`kernels/tests/fuzz_corpus.rs`) runs the very same
//! code.
//!
//! Input format: the first two bytes are the length `n` of the config part, little-endian
//! (clamped to what follows); the next `n` bytes are `adapter_config.json`, the rest is
//! `adapter_model.safetensors`. Both go through [`load_peft_bytes`], the code path of
//! [`load_peft`](super::load_peft), against [`tiny_model`].

use std::path::Path;

use super::adapter::Adapter;
use super::config::{AdapterConfig, CONFIG_FILE};
use super::error::Result;
use super::load::load_peft_bytes;
use crate::model::ModelSpec;

/// The model adapters are checked against: 2 layers, hidden 64, 4 heads, 2 KV heads (head 16),
/// FFN 128.
pub fn tiny_model() -> ModelSpec {
    ModelSpec {
        name: "tiny".into(),
        layers: 2,
        hidden_size: 64,
        attention_heads: 4,
        kv_heads: 2,
        head_dim: 16,
        intermediate_size: 128,
        vocab_size: 256,
        dtype_bytes: 2,
        params: 0,
        tensor_parallel: 1,
    }
}

/// Splits fuzz input into `(config_json, weights)` (see the module doc).
pub fn split(data: &[u8]) -> (&[u8], &[u8]) {
    let (len, rest) = match data {
        [lo, hi, rest @ ..] => (usize::from(u16::from_le_bytes([*lo, *hi])), rest),
        _ => (0, &[][..]),
    };
    rest.split_at(len.min(rest.len()))
}

/// Packs a config and a weights file into the input format; `None` when the config is longer
/// than 65,535 bytes.
pub fn pack(config_json: &[u8], weights: &[u8]) -> Option<Vec<u8>> {
    let len = u16::try_from(config_json.len()).ok()?;
    let mut out = Vec::with_capacity(2 + config_json.len() + weights.len());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(config_json);
    out.extend_from_slice(weights);
    Some(out)
}

/// Parses the config part on its own (any error must be typed), then loads both parts with
/// [`load_peft_bytes`] against [`tiny_model`]. On success, checks what a loaded adapter
/// promises: the config written back parses to the same config, every matrix has the length
/// its shape implies, and paging the adapter round-trips exactly.
pub fn peft_adapter(data: &[u8]) -> Result<Adapter> {
    let (config_json, weights) = split(data);
    let config = AdapterConfig::parse_bytes(config_json, Path::new(CONFIG_FILE));
    if let Ok(config) = &config {
        let mut again = AdapterConfig::parse(&config.to_json(), Path::new(CONFIG_FILE))?;
        // `to_json` writes PEFT's default task type when none was given.
        again.task_type.clone_from(&config.task_type);
        check(
            again == *config,
            "config does not round-trip through its JSON",
        )?;
    }
    let model = tiny_model();
    let adapter = load_peft_bytes(config_json, weights, &model)?;
    check(config.is_ok(), "loaded although the config alone fails")?;
    check(
        adapter.layer_count() == model.layers as usize,
        "layer count differs from the model",
    )?;
    let rank = adapter.rank() as usize;
    for layer in 0..adapter.layer_count() {
        for pair in adapter.layer(layer) {
            check(
                pair.a().len() == rank * pair.input() && pair.b().len() == pair.output() * rank,
                "matrix length differs from its shape",
            )?;
        }
    }
    let page_bytes = 256 * adapter.dtype().bytes() as u64;
    let back = adapter.paged(page_bytes)?.to_adapter()?;
    // NaN weights compare unequal; compare the bits through the dtype's encoding.
    check(
        back.shape() == adapter.shape() && same_bits(&back, &adapter),
        "paging does not round-trip",
    )?;
    Ok(adapter)
}

fn same_bits(x: &Adapter, y: &Adapter) -> bool {
    (0..x.layer_count()).all(|l| {
        x.layer(l).len() == y.layer(l).len()
            && x.layer(l).iter().zip(y.layer(l)).all(|(p, q)| {
                let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                bits(p.a()) == bits(q.a()) && bits(p.b()) == bits(q.b())
            })
    })
}

/// A broken promise is a panic on purpose: the fuzzer must report it as a crash.
fn check(holds: bool, what: &str) -> Result<()> {
    assert!(holds, "peft_adapter invariant broken: {what}");
    Ok(())
}
