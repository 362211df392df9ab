//! Tensor names as PEFT writes them for a Llama-family `CausalLM`:
//! `base_model.model.model.layers.{i}.self_attn.{q,k,v,o}_proj.lora_{A,B}.weight` and
//! `base_model.model.model.layers.{i}.mlp.{gate,up,down}_proj.lora_{A,B}.weight`.

use super::adapter::Matrix;
use super::config::module_name;
use crate::model::LoraTarget;

const PREFIX: &str = "base_model.model.model.layers.";

fn block(target: LoraTarget) -> &'static str {
    match target {
        LoraTarget::Q | LoraTarget::K | LoraTarget::V | LoraTarget::O => "self_attn",
        LoraTarget::Gate | LoraTarget::Up | LoraTarget::Down => "mlp",
    }
}

fn matrix_name(matrix: Matrix) -> &'static str {
    match matrix {
        Matrix::A => "lora_A",
        Matrix::B => "lora_B",
    }
}

/// The name of one LoRA matrix.
pub fn tensor_name(layer: u32, target: LoraTarget, matrix: Matrix) -> String {
    format!(
        "{PREFIX}{layer}.{}.{}.{}.weight",
        block(target),
        module_name(target),
        matrix_name(matrix)
    )
}

/// Parses a LoRA tensor name back into `(layer, target, matrix)`; `None` for any other name
/// (a projection under the wrong block, a bias, an embedding, a misspelling).
pub fn parse_tensor_name(name: &str) -> Option<(u32, LoraTarget, Matrix)> {
    let rest = name.strip_prefix(PREFIX)?;
    let (layer, rest) = rest.split_once('.')?;
    if layer.is_empty() || !layer.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let layer: u32 = layer.parse().ok()?;
    let (block_name, rest) = rest.split_once('.')?;
    let (module, rest) = rest.split_once('.')?;
    let target = LoraTarget::from_name(module.strip_suffix("_proj")?)?;
    if block(target) != block_name {
        return None;
    }
    let matrix = match rest {
        "lora_A.weight" => Matrix::A,
        "lora_B.weight" => Matrix::B,
        _ => return None,
    };
    Some((layer, target, matrix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for target in LoraTarget::ALL {
            for matrix in [Matrix::A, Matrix::B] {
                let name = tensor_name(7, target, matrix);
                assert_eq!(parse_tensor_name(&name), Some((7, target, matrix)));
            }
        }
        assert_eq!(
            tensor_name(0, LoraTarget::Q, Matrix::A),
            "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"
        );
        assert_eq!(
            tensor_name(3, LoraTarget::Down, Matrix::B),
            "base_model.model.model.layers.3.mlp.down_proj.lora_B.weight"
        );
    }

    #[test]
    fn other_names_are_rejected() {
        for bad in [
            "base_model.model.model.layers.0.mlp.q_proj.lora_A.weight",
            "base_model.model.model.layers.x.self_attn.q_proj.lora_A.weight",
            "base_model.model.model.layers.0.self_attn.q_proj.lora_A.bias",
            "base_model.model.model.layers.0.self_attn.q.lora_A.weight",
            "base_model.model.lm_head.lora_A.weight",
            "base_model.model.model.layers.+1.self_attn.q_proj.lora_A.weight",
        ] {
            assert_eq!(parse_tensor_name(bad), None, "{bad}");
        }
    }
}
