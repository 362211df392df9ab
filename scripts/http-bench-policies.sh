#!/usr/bin/env bash
# fastlibra's cache policies measured end to end through `fastlibra serve`: SmolLM2
# (scripts/fetch-model.sh) with synthesised PEFT adapters, one server per policy started and
# stopped by `bench --backend http --spawn-server`, the DGG workload, one combined report;
# then the same workload in-process (`bench --backend cpu --model`, the same drain) to show
# what HTTP adds.
# See docs/http-bench.md.
#
# Usage: scripts/http-bench-policies.sh [OUT_DIR] [extra bench flags…]
#   OUT_DIR default bench-out/http-policies. Environment (defaults in brackets):
#   RATE        DGG user queries/s [0.1]          DURATION  arrival window, s [120]
#   DRAIN       s after the window [300]          SEED      workload seed [1]
#   TENANTS     tenants per built-in service, 15 adapters each [2]
#   RANK        adapter rank (q, k, v, o; f32) [8]
#   CORES       shards [2]    HBM, HOST_TIER, NVME  tier sizes per shard [128M, 512M, 1G]
#   POLICIES    [fastlibra,vllm,slora]            IN_PROCESS  1: also run --backend cpu [1]
#   FASTLIBRA   the binary [target/release/fastlibra, built when missing]
#   MODEL       the GGUF checkpoint [SmolLM2-135M-Instruct.Q4_1.gguf from scripts/fetch-model.sh]
# Both runs write <policy>.requests.csv. Prints each policy's TTFT and the server's invalid-KV
# share, then the mean TTFT over the calls every policy completed (the same calls, paired);
# exits non-zero when a run answered nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

cache=${XDG_CACHE_HOME:-$HOME/.cache}/fastlibra
model=${MODEL:-${FASTLIBRA_MODEL_DIR:-$cache/models}/SmolLM2-135M-Instruct.Q4_1.gguf}
out=${1:-bench-out/http-policies}
shift || true
bin=${FASTLIBRA:-target/release/fastlibra}
tenants=${TENANTS:-2}
adapters=$((15 * tenants))
hbm=${HBM:-128M} host_tier=${HOST_TIER:-512M} nvme=${NVME:-1G} cores=${CORES:-2}

die() { echo "http-bench-policies: error: $*" >&2; exit 1; }
[ -f "$model" ] || die "no model at $model (run scripts/fetch-model.sh)"
if [ ! -x "$bin" ]; then
    cargo build --release -p fastlibra-bench
fi
mkdir -p "$out"

# One adapter folder per workload adapter (the built-in DGG services have 15 per tenant).
if [ ! -f "$out/adapters/adapter-$(printf %03d $((adapters - 1)))/adapter_config.json" ]; then
    "$bin" adapters synth --model "$model" --rank "${RANK:-8}" --count "$adapters" \
        --targets q,k,v,o --dtype f32 --out "$out/adapters"
fi
modules=() map=()
for ((k = 0; k < adapters; k++)); do
    modules+=("lora-$k=$out/adapters/adapter-$(printf %03d "$k")")
    map+=(--model-map "$k=lora-$k")
done

common=(--workload dgg --tenants "$tenants" --rate "${RATE:-0.1}"
    --duration "${DURATION:-120}" --seed "${SEED:-1}"
    --policies "${POLICIES:-fastlibra,vllm,slora}")

# Every policy gets the same model, adapters, shards and tiers; the server listens on the
# port the benchmark picks. The long request timeout keeps slow answers answered, not failed.
server="'$bin' serve --model '$model' --served-model-name smollm2 --policy {policy} \
--host 127.0.0.1 --port {port} --cores $cores --hbm $hbm --host-tier $host_tier --nvme $nvme \
--lora-modules ${modules[*]}"
# Token ids for exact prompt lengths; the next turn of a call resends the ids the server
# returned (`return_token_ids`), so its history KV matches. The tokenizer is the fallback for a
# server that returns none.
"$bin" bench --backend http --spawn-server "$server" --tokens-as-ids --tokenizer "$model" \
    "${map[@]}" \
    --drain "${DRAIN:-300}" --request-timeout 300 --requests-csv "${common[@]}" --out "$out/http" "$@"

if [ "${IN_PROCESS:-1}" = 1 ]; then
    "$bin" bench --backend cpu --model "$model" --adapters "$out/adapters" \
        --cores "$cores" --hbm "$hbm" --host "$host_tier" --nvme "$nvme" \
        --drain "${DRAIN:-300}" --requests-csv "${common[@]}" --out "$out/in-process" "$@"
fi

python3 - "$out" <<'EOF'
import csv, json, os, sys
out = sys.argv[1]
for kind in ("http", "in-process"):
    path = os.path.join(out, kind, "report.json")
    if not os.path.exists(path):
        continue
    r = json.load(open(path))
    print(f"{kind}:")
    for name, p in r["policies"].items():
        t, h = p["ttft_ms"], p.get("http")
        line = (f"  {name:10} {p['completed']}/{p['requests']} completed, TTFT mean "
                f"{t['mean']:.0f} ms, P99 {t['p99']:.0f} ms, invalid KV "
                f"{100 * p['invalid_kv_fraction']:.1f} %")
        if h:
            s = h.get("server") or {}
            hit = s.get("prefix_cache_hit_share")
            line += (f", prefix-cache hits {'–' if hit is None else f'{100 * hit:.1f} %'}"
                     f", failures {h['failures']}, not sent {h['not_sent']}")
        else:
            line += (f", LoRA hit {100 * p['hit_rate']['lora']:.1f} %, KV hit "
                     f"{100 * p['hit_rate']['kv']:.1f} %")
        print(line)
    # The same calls under every policy: those each one completed, paired by session and place
    # in the session (ids follow release order, which differs between policies).
    ttft = {}
    for name in r["policies"]:
        with open(os.path.join(out, kind, f"{name}.requests.csv")) as f:
            rows = list(csv.DictReader(f))
        rows.sort(key=lambda row: (row["session"], float(row["arrival_ms"]), int(row["request"])))
        place, ttft[name] = {}, {}
        for row in rows:
            turn = place[row["session"]] = place.get(row["session"], -1) + 1
            key = (row["session"], turn) if row["session"] else ("", row["request"])
            if row["status"] == "ok":
                ttft[name][key] = float(row["ttft_ms"])
    common = set.intersection(*(set(t) for t in ttft.values())) if ttft else set()
    if common:
        means = ", ".join(f"{name} {sum(t[k] for k in common) / len(common):.0f} ms"
                          for name, t in ttft.items())
        print(f"  paired: mean TTFT over the {len(common)} calls every policy completed: {means}")
EOF
