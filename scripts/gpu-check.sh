#!/usr/bin/env bash
# GPU check of the CUDA backend, run on a GPU machine from a release binary built elsewhere
# (no Rust toolchain needed there). Runs `fastlibra cuda check`: kernels against the CPU
# reference (poisoned outputs), page-swap bandwidth vs a plain pinned cuMemcpyAsync (both
# directions), swap-in/compute overlap, and calibration (prefill by tokens, decode step,
# H2D/D2H) in the simulator's hardware TOML format; then the real model (SmolLM2-135M, when
# its file is found) on the GPU against the CPU path: last-position logits and greedy tokens
# of four prompts, fp32 and bf16 weights (`cuda check --model-only`, merged into results.json
# under "real_model"); then a short `bench --backend cuda --verify` of the three main policies
# (the real runtime on the GPU, every reused KV checked against a CPU recompute) and one of
# fastlibra with bf16 weights, merged into results.json under "bench" and "bench_bf16". Fits
# in 8 minutes (hard timeouts 240 s + 60 s + 120 s + 60 s).
#
# Usage: scripts/gpu-check.sh [FASTLIBRA_BINARY] [OUT_DIR] [MODEL]
#   FASTLIBRA_BINARY  default target/release/fastlibra (build it with
#                     `cargo build --release -p fastlibra-bench` and carry it over)
#   OUT_DIR           default gpu-check-out; gets results.json, calibration.toml, log.txt,
#                     real_model.json and its log, bench/, bench_bf16/ (the bench reports) and
#                     their logs
#   MODEL             the real model's file (default $FASTLIBRA_MODEL, else
#                     SmolLM2-135M-Instruct.F32.gguf, else .Q4_1.gguf, in the folder
#                     scripts/fetch-model.sh writes: $FASTLIBRA_MODEL_DIR, default
#                     ${XDG_CACHE_HOME:-~/.cache}/fastlibra/models); the step is skipped, with a
#                     line saying so, when there is none
# Env: FASTLIBRA_NVRTC=/path/to/libnvrtc.so.*  use this NVRTC instead of searching;
#      GPU_CHECK_QUICK=1                        smaller sizes.
# Exit status: 0 all targets held, 1 a check failed (or the bench run failed or mismatched),
#              2 no GPU / driver / NVRTC.
set -uo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/release/fastlibra}
out=${2:-gpu-check-out}
model=${3:-${FASTLIBRA_MODEL:-}}
mkdir -p "$out"

if ! ldconfig -p 2>/dev/null | grep -q 'libcuda\.so' && ! ls /usr/lib*/x86_64-linux-gnu/libcuda.so* /usr/lib64/libcuda.so* >/dev/null 2>&1; then
    echo "gpu-check: no CUDA driver found (libcuda.so.1 not loadable); nothing to measure"
    exit 2
fi
[ -x "$bin" ] || { echo "gpu-check: binary $bin not found or not executable"; exit 2; }

# NVRTC: the override, else Python packages (nvidia/*/lib), else standard CUDA folders.
nvrtc=${FASTLIBRA_NVRTC:-}
if [ -z "$nvrtc" ]; then
    dirs=$(python3 -c 'import site,sys; print("\n".join(site.getsitepackages()+[site.getusersitepackages()]))' 2>/dev/null || true)
    for d in $dirs /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/local/cuda-*/lib64 /usr/lib/x86_64-linux-gnu; do
        [ -d "$d" ] || continue
        nvrtc=$(find "$d" -maxdepth 4 -name 'libnvrtc.so*' ! -name '*builtins*' ! -name '*alt*' 2>/dev/null | sort -V | tail -n1)
        [ -n "$nvrtc" ] && break
    done
fi
[ -n "$nvrtc" ] && [ -f "$nvrtc" ] || { echo "gpu-check: libnvrtc.so* not found; set FASTLIBRA_NVRTC"; exit 2; }
# cudarc opens libnvrtc.so / .so.12; point that name at whatever version was found.
libdir=$(mktemp -d)
ln -sf "$(readlink -f "$nvrtc")" "$libdir/libnvrtc.so"
export LD_LIBRARY_PATH="$libdir:$(dirname "$(readlink -f "$nvrtc")")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
echo "gpu-check: nvrtc $nvrtc"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || true

quick=()
[ "${GPU_CHECK_QUICK:-0}" = 1 ] && quick=(--quick)
timeout 240 "$bin" cuda check --json "$out/results.json" --toml "$out/calibration.toml" "${quick[@]}" 2>&1 | tee "$out/log.txt"
rc=${PIPESTATUS[0]}
[ "$rc" = 2 ] && { echo "gpu-check: exit 2 (no usable GPU)"; exit 2; }

# The real model on the GPU against the CPU path (it has never run on a GPU before this).
if [ -z "$model" ]; then
    models=${FASTLIBRA_MODEL_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/fastlibra/models}
    for f in SmolLM2-135M-Instruct.F32.gguf SmolLM2-135M-Instruct.Q4_1.gguf; do
        [ -f "$models/$f" ] && { model=$models/$f; break; }
    done
fi
if [ -n "$model" ] && [ ! -e "$model" ]; then
    echo "gpu-check: real-model step skipped: $model not found"
    echo skipped >"$out/real_model.exit"
elif [ -n "$model" ]; then
    echo "gpu-check: real model $model: cuda check --model-only"
    timeout 60 "$bin" cuda check --model "$model" --model-only --json "$out/real_model.json" \
        >"$out/real_model-log.txt" 2>&1
    echo $? >"$out/real_model.exit"
    tail -n 6 "$out/real_model-log.txt"
else
    echo "gpu-check: real-model step skipped: no model file (give MODEL or FASTLIBRA_MODEL, or run scripts/fetch-model.sh)"
    echo skipped >"$out/real_model.exit"
fi

# The real runtime on the GPU: 10 s of DGG arrivals per policy, two shards sharing the GPU;
# then fastlibra alone with bf16 GEMM weights (verified within 1e-2 of the fp32 recompute).
bench_run() { # NAME TIMEOUT EXTRA...
    local name=$1 limit=$2
    shift 2
    echo "gpu-check: bench --backend cuda --verify $*"
    timeout "$limit" "$bin" bench --backend cuda --workload dgg --tenants 1 --rate 2 --duration 10 \
        --cores 2 --verify --json --out "$out/$name" "$@" >"$out/$name.json" 2>"$out/$name-log.txt"
    echo $? >"$out/$name.exit"
    tail -n 5 "$out/$name-log.txt"
}
bench_run bench 120
bench_run bench_bf16 60 --policies fastlibra --weights bf16
python3 - "$out" <<'PY' || rc=1
import json, sys
out = sys.argv[1]
try:
    results = json.load(open(f"{out}/results.json"))
except (OSError, ValueError):
    results = {}
ok = True
real_exit = open(f"{out}/real_model.exit").read().strip()
if real_exit == "skipped":
    results["real_model"] = {"skipped": "no model file"}
else:
    try:
        real = json.load(open(f"{out}/real_model.json")).get("real_model")
    except (OSError, ValueError):
        real = None
    results["real_model"] = {"exit": int(real_exit), "report": real}
    ok &= int(real_exit) == 0 and real is not None and real.get("passed") is True
    if real:
        for w in ("fp32", "bf16"):
            c = real[w]
            diff = c["max_abs_diff"]  # null when the GPU gave a NaN
            diff = "NaN" if diff is None else f"{diff:.2e}"
            print(f"gpu-check: real model {w}: logits max |diff| {diff} "
                  f"(<= {real['tolerance']}), greedy identical {c['greedy_identical']}")
for name in ("bench", "bench_bf16"):
    exit_code = int(open(f"{out}/{name}.exit").read())
    try:
        bench = json.load(open(f"{out}/{name}.json"))
    except (OSError, ValueError):
        bench = None
    results[name] = {"exit": exit_code, "report": bench}
    ok &= exit_code == 0 and bench is not None
    for policy, p in (bench or {}).get("policies", {}).items():
        v, r = p.get("verify") or {}, p.get("runtime") or {}
        print(f"gpu-check: {name} {policy}: {p.get('requests')} requests, {p.get('failed')} failed, "
              f"verify {v.get('checked')} checked / {v.get('mismatches')} mismatches on {r.get('device')}")
        ok &= v.get("mismatches") == 0 and not r.get("fallback")
json.dump(results, open(f"{out}/results.json", "w"), indent=2)
sys.exit(0 if ok else 1)
PY
echo "gpu-check: exit $rc; results in $out/"
exit "$rc"
