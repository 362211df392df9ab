#!/usr/bin/env bash
# Compile every CUDA kernel without a GPU: NVRTC to PTX through `fastlibra cuda compile-check`,
# then `ptxas -arch=sm_90 -v`, failing if a kernel spills or does not compile.
#
# Usage: scripts/cuda-compile-check.sh [FASTLIBRA_BINARY]
#   Installs nvidia-cuda-nvrtc-cu12 and nvidia-cuda-nvcc-cu12 with pip into a venv under
#   target/cuda-venv (reused when present), finds libnvrtc.so* and ptxas inside it, builds the
#   debug `fastlibra` binary unless one is given, and writes PTX, cubins and ptxas logs to
#   target/cuda-ptx. Env: CARGO_TARGET_DIR (default target), FASTLIBRA_NVRTC (a libnvrtc.so*
#   to use instead of the pip one), CUDA_ARCH (default 90).
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
target=${CARGO_TARGET_DIR:-target}
venv=target/cuda-venv
arch=${CUDA_ARCH:-90}

if [ ! -x "$venv/bin/pip" ]; then
    python3 -m venv "$venv" || { echo "error: python3 -m venv failed (apt-get install python3-venv)"; exit 1; }
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check nvidia-cuda-nvrtc-cu12 nvidia-cuda-nvcc-cu12

nvrtc=${FASTLIBRA_NVRTC:-$(find "$venv" -name 'libnvrtc.so*' ! -name '*builtins*' ! -name '*alt*' | sort | head -n1)}
ptxas=$(find "$venv" -type f -name ptxas | head -n1)
[ -n "$nvrtc" ] && [ -f "$nvrtc" ] || { echo "error: libnvrtc.so* not found in $venv"; exit 1; }
[ -n "$ptxas" ] || { echo "error: ptxas not found in $venv"; exit 1; }
# cudarc looks for libnvrtc.so / libnvrtc.so.12: give it that name in a folder of our own.
libdir=target/cuda-lib
mkdir -p "$libdir"
ln -sf "$(cd "$(dirname "$nvrtc")" && pwd)/$(basename "$nvrtc")" "$libdir/libnvrtc.so"
export LD_LIBRARY_PATH="$(cd "$libdir" && pwd):$(cd "$(dirname "$nvrtc")" && pwd)${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
echo "nvrtc: $nvrtc"
echo "ptxas: $ptxas ($("$ptxas" --version | tail -n1))"

bin=${1:-}
if [ -z "$bin" ]; then
    cargo build --quiet --locked -p fastlibra-bench --bin fastlibra
    bin="$target/debug/fastlibra"
fi
"$bin" cuda compile-check --out target/cuda-ptx --ptxas "$ptxas" --arch "$arch"
echo "cuda compile check: $(( $(date +%s) - start )) s"
