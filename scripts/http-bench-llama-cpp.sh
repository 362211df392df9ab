#!/usr/bin/env bash
# `fastlibra bench --backend http` against a server this project did not write: the
# llama-cpp-python server (scripts/py-env.sh's venv) on SmolLM2 (scripts/fetch-model.sh),
# started and stopped by --spawn-server, chat workload at a light rate. See docs/http-bench.md.
#
# Usage: scripts/http-bench-llama-cpp.sh [OUT_DIR] [extra bench flags…]
#   OUT_DIR default bench-out/http-llama-cpp. Environment: RATE (sessions/s, default 0.1),
#   DURATION (s, default 40), DRAIN (s, default 300), LORAS (default 4), THREADS (the server's,
#   default 1), FASTLIBRA (the binary, default target/release/fastlibra, built when missing).
# Prints the report table; exits non-zero when a request failed or went unanswered.
set -euo pipefail
cd "$(dirname "$0")/.."

cache=${XDG_CACHE_HOME:-$HOME/.cache}/fastlibra
venv=${FASTLIBRA_VENV:-$cache/venv}
model=${FASTLIBRA_MODEL_DIR:-$cache/models}/SmolLM2-135M-Instruct.Q4_1.gguf
out=${1:-bench-out/http-llama-cpp}
shift || true
bin=${FASTLIBRA:-target/release/fastlibra}

die() { echo "http-bench-llama-cpp: error: $*" >&2; exit 1; }
[ -x "$venv/bin/python" ] || die "no venv at $venv (run scripts/py-env.sh)"
"$venv/bin/python" -c 'import llama_cpp.server' 2>/dev/null \
    || die "llama-cpp-python[server] is not installed in $venv (run scripts/py-env.sh)"
[ -f "$model" ] || die "no model at $model (run scripts/fetch-model.sh)"
if [ ! -x "$bin" ]; then
    cargo build --release -p fastlibra-bench
fi

# One request at a time, whole (no interruption by the next one); SmolLM2's own context,
# since chat sessions resend their history. One thread: on a busy 2-core machine llama.cpp's
# spinning threads slowed decoding tenfold (20 tokens took 98 s with 2 threads, 11 s with 1).
server="'$venv/bin/python' -m llama_cpp.server --model '$model' --host 127.0.0.1 \
--port {port} --n_ctx 8192 --interrupt_requests false --n_threads ${THREADS:-1}"

"$bin" bench --backend http --spawn-server "$server" \
    --tokenizer "$model" \
    --workload chatbot --loras "${LORAS:-4}" --rate "${RATE:-0.1}" \
    --duration "${DURATION:-40}" --drain "${DRAIN:-300}" --request-timeout 120 \
    --out "$out" "$@"

python3 - "$out/report.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
for name, p in r["policies"].items():
    h = p["http"]
    print(f"{name}: {h['answered']}/{h['sent']} answered, {h['failures']}, "
          f"not sent {h['not_sent']}, models {h['models']}, prompts: {h['prompts']}")
    print(f"  TTFT mean {p['ttft_ms']['mean']:.1f} ms, P99 {p['ttft_ms']['p99']:.1f} ms; "
          f"ITL mean {h['itl_ms']['mean']:.1f} ms; e2e mean {p['e2e_ms']['mean']:.1f} ms")
    if h["answered"] != h["sent"] or h["not_sent"]:
        sys.exit(f"{name}: not every request was answered")
EOF
