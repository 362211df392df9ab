#!/usr/bin/env bash
# Create or update the Python venv of fastlibra's peers (docs/peers.md): the `gguf` package,
# numpy, jinja2, the `openai` client, `prometheus_client`, `safetensors`, and llama.cpp through
# `llama-cpp-python[server]`, built from its source distribution with a fixed, portable set of
# CPU features (a native build segfaulted on the Q4_1 file on one machine).
#
# Usage: scripts/py-env.sh
#   Venv:   ${FASTLIBRA_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/fastlibra/venv}
#   Wheels: the llama-cpp-python wheel it builds is kept in
#           ${FASTLIBRA_WHEELS:-${XDG_CACHE_HOME:-$HOME/.cache}/fastlibra/wheels}/<key>/, keyed by
#           its version, CMAKE_ARGS and the Python version, with build-info.json (llama.cpp
#           commit, ggml version, sdist SHA-256), so a new venv does not rebuild it.
#   Pins:   scripts/requirements.txt (direct) and scripts/requirements-lock.txt (every package,
#           used as pip constraints).
# Idempotent: a stamp file in the venv holds the hash of the pins, build flags and this script;
# when it matches and the packages import, the script does nothing. Missing build tools (cmake,
# a C/C++ compiler, python3-venv) are installed with apt-get when run as root on Debian;
# otherwise it says what to install.
set -euo pipefail
self="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
cd "$(dirname "$0")/.."
start=$(date +%s)

cache=${XDG_CACHE_HOME:-$HOME/.cache}/fastlibra
venv=${FASTLIBRA_VENV:-$cache/venv}
wheels=${FASTLIBRA_WHEELS:-$cache/wheels}
req=scripts/requirements.txt
lock=scripts/requirements-lock.txt
cmake_args="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
python=${PYTHON:-python3}

say() { echo "py-env: $*"; }
die() { echo "py-env: error: $*" >&2; exit 1; }

command -v "$python" >/dev/null || die "$python not found (install Python 3.9 or newer)"
pyver=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
llama_pin=$(grep -E '^llama-cpp-python' "$req" | sed -E 's/^llama-cpp-python(\[[a-z,]+\])?==//')
[ -n "$llama_pin" ] || die "$req: no 'llama-cpp-python[...]==VERSION' line"
key=$(printf '%s\n' "$llama_pin" "$cmake_args" "$pyver" | sha256sum | cut -c1-16)
stamp_want=$(cat "$req" "$lock" "$self" | sha256sum | cut -d' ' -f1)
stamp="$venv/.fastlibra-py-env.stamp"
wdir="$wheels/$key"

check_imports() {
    "$venv/bin/python" - <<'PY' 2>/dev/null
import gguf, numpy, jinja2, openai, prometheus_client, safetensors, llama_cpp
import llama_cpp.server.app  # the `server` extra
PY
}

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$stamp_want" ] && check_imports; then
    say "up to date ($venv, llama-cpp-python $llama_pin)"
    exit 0
fi

# --- build tools ----------------------------------------------------------------------------
need=()
command -v cmake >/dev/null || need+=(cmake)
{ command -v cc >/dev/null && command -v c++ >/dev/null && command -v make >/dev/null; } || need+=(build-essential)
"$python" -c 'import venv, ensurepip' 2>/dev/null || need+=("python3-venv")
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        say "installing ${need[*]} with apt-get"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    else
        die "missing ${need[*]}: install them (e.g. sudo apt-get install ${need[*]}) and rerun"
    fi
fi

# --- venv -----------------------------------------------------------------------------------
if [ ! -x "$venv/bin/python" ]; then
    say "creating $venv"
    mkdir -p "$(dirname "$venv")"
    "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check)

# --- llama-cpp-python: built once from the sdist, wheel kept outside the venv ----------------
build_info() { # SDIST OUT: what the sdist vendors, as JSON
    local sdist=$1 out=$2 top commit ggml
    top="llama_cpp_python-$llama_pin"
    commit=$(tar -xzOf "$sdist" "$top/CHANGELOG.md" | sed -n "/^## \[$llama_pin\]/,/^## \[[0-9]/p" |
        grep -o 'llama.cpp@[0-9a-f]*' | head -n1 | cut -d@ -f2 || true)
    ggml=$(tar -xzOf "$sdist" "$top/vendor/llama.cpp/ggml/CMakeLists.txt" |
        sed -nE 's/^set\(GGML_VERSION_(MAJOR|MINOR|PATCH) ([0-9]+)\)/\2/p' | paste -sd. || true)
    "$python" - "$out" "$llama_pin" "${commit:-unknown}" "${ggml:-unknown}" "$cmake_args" \
        "$(sha256sum "$sdist" | cut -d' ' -f1)" <<'PY'
import json, sys
out, pin, commit, ggml, args, sha = sys.argv[1:]
with open(out, "w") as f:
    json.dump({"llama_cpp_python": pin, "llama_cpp_commit": commit, "ggml_version": ggml,
               "cmake_args": args, "sdist_sha256": sha}, f, indent=1)
PY
}

whl=$(ls "$wdir"/llama_cpp_python-"$llama_pin"-*.whl 2>/dev/null | head -n1 || true)
if [ -z "$whl" ] || [ ! -f "$wdir/build-info.json" ]; then
    tmpw="$wdir.tmp"
    rm -rf "$tmpw" && mkdir -p "$tmpw"
    "${pip[@]}" download --quiet --no-deps --no-binary llama-cpp-python -d "$tmpw" \
        "llama-cpp-python==$llama_pin"
    sdist=$(ls "$tmpw"/llama_cpp_python-"$llama_pin".tar.gz)
    if [ -z "$whl" ]; then
        say "building llama-cpp-python $llama_pin from its sdist (CMAKE_ARGS=$cmake_args); takes minutes"
        b0=$(date +%s)
        CMAKE_ARGS="$cmake_args" FORCE_CMAKE=1 CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) \
            "${pip[@]}" wheel --quiet --no-deps --no-cache-dir -w "$tmpw" "$sdist"
        say "built llama-cpp-python in $(( $(date +%s) - b0 )) s"
    else
        cp "$whl" "$tmpw/"
    fi
    build_info "$sdist" "$tmpw/build-info.json"
    rm -f "$sdist"
    rm -rf "$wdir" && mv "$tmpw" "$wdir"
    whl=$(ls "$wdir"/llama_cpp_python-"$llama_pin"-*.whl | head -n1)
fi

# --- everything else, pinned by the lock ----------------------------------------------------
others=$(mktemp)
trap 'rm -f "$others"' EXIT
grep -vE '^llama-cpp-python' "$req" > "$others"
say "installing the pinned packages"
"${pip[@]}" install --quiet -c "$lock" -r "$others" "llama-cpp-python[server] @ file://$whl"
# A venv made before may hold a llama-cpp-python built with other flags: replace it.
"${pip[@]}" install --quiet --no-deps --force-reinstall "$whl"
cp "$wdir/build-info.json" "$venv/fastlibra-llama-build.json"

check_imports || die "packages installed but do not import (run: $venv/bin/python -c 'import llama_cpp.server.app')"
echo "$stamp_want" > "$stamp"
commit=$(sed -nE 's/.*"llama_cpp_commit": "([^"]*)".*/\1/p' "$wdir/build-info.json")
say "ready in $(( $(date +%s) - start )) s: $venv (llama-cpp-python $llama_pin, llama.cpp $commit)"
