#!/usr/bin/env bash
# Write every llama.cpp reference file the Rust tests compare against (docs/peers.md) into
# ${FASTLIBRA_REFS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/fastlibra/refs}. Each generator skips its
# work when the hash of its inputs (script, fixtures, model files, llama.cpp build) still matches
# the file it wrote, so a rerun takes seconds.
#
# Usage: scripts/refs/all.sh [--force]
#   Needs scripts/py-env.sh and scripts/fetch-model.sh to have run.
#   Env: FASTLIBRA_REFS_PEFT=DIR  convert this PEFT adapter folder (for example one written by
#                                 `fastlibra adapters synth --model PATH`) instead of the one
#                                 scripts/refs/synth_peft.py writes;
#        FASTLIBRA_REFS_SPEED=0   skip the speed measurement (speed_llama_cpp.json).
set -euo pipefail
cd "$(dirname "$0")/../.."
export PYTHONDONTWRITEBYTECODE=1
start=$(date +%s)

cache=${XDG_CACHE_HOME:-$HOME/.cache}/fastlibra
venv=${FASTLIBRA_VENV:-$cache/venv}
refs=${FASTLIBRA_REFS_DIR:-$cache/refs}
py="$venv/bin/python"
force=()
[ "${1:-}" = "--force" ] && force=(--force)
[ -x "$py" ] || { echo "refs: error: no venv at $venv (run scripts/py-env.sh)" >&2; exit 1; }
mkdir -p "$refs/lora"

step() {
    local name=$1; shift
    local t0; t0=$(date +%s)
    "$@"
    echo "refs: $name took $(( $(date +%s) - t0 )) s"
}

step logits_f32 "$py" scripts/refs/logits_ref.py "${force[@]}"
step perplexity_q4_1 "$py" scripts/refs/perplexity_ref.py "${force[@]}"

# LoRA: a PEFT folder (given, or synthesised with the model's shapes), its GGUF conversion,
# and llama.cpp's logits with it. Both writers are deterministic, so redoing them is harmless.
peft=${FASTLIBRA_REFS_PEFT:-$refs/lora/peft-r8}
if [ -z "${FASTLIBRA_REFS_PEFT:-}" ]; then
    "$py" scripts/refs/synth_peft.py "$peft" --rank 8 --alpha 16 --seed 7 >/dev/null
fi
"$py" scripts/refs/peft_to_gguf_lora.py "$peft" "$refs/lora/lora.gguf" >/dev/null
step logits_f32_lora "$py" scripts/refs/logits_ref.py --lora "$refs/lora/lora.gguf" --peft "$peft" "${force[@]}"
# The converter checked against a numpy model in Hugging Face's convention (fails on a wrong
# Q/K permutation or scaling).
step lora_check "$py" scripts/refs/check_lora.py --peft "$peft" --gguf "$refs/lora/lora.gguf" "${force[@]}"

# llama.cpp's token ids for the tokenizer tests (scripts/refs/tokenize.py; same conventions).
# -P keeps this folder off sys.path: tokenize.py must not shadow the standard module.
# (dequant.py and gguf_to_hf.py are not run here: the Rust tests call them with their own
# arguments.)
if [ -f scripts/refs/tokenize.py ]; then
    step tokenize "$py" -P scripts/refs/tokenize.py "${force[@]}"
fi

if [ "${FASTLIBRA_REFS_SPEED:-1}" != 0 ]; then
    step speed_llama_cpp "$py" scripts/refs/speed_ref.py "${force[@]}"
fi
echo "refs: all done in $(( $(date +%s) - start )) s ($refs)"
