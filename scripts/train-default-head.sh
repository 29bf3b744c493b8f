#!/bin/sh
# Trains the verdict head shipped for the default model (SmolLM2-135M-Instruct Q4_1 GGUF):
# weak labels from the default rules' confident tiers over ../shared/realdata (arXiv, ctf/,
# reports/ and news/ held out; scripts/default_head_set.py says exactly what is taken), pooled
# hidden states of layer $LAYER, L2 logistic regression with 5-fold CV. Writes the weights and a
# manifest (what it was trained on, CV metrics, and its figures on the labelled arXiv sample):
#   src/verify/head/default/smollm2-135m.head.json
#   src/verify/head/default/smollm2-135m.manifest.json
# The texts stay outside the repository ($CACHE); features are cached there, so a rerun only
# retrains (seconds). Usage: scripts/train-default-head.sh [CACHE_DIR]
set -eu
cd "$(dirname "$0")/.."
CACHE=${1:-${TMPDIR:-/tmp}/cyberfilter-head}
LAYER=${LAYER:-24}
mkdir -p "$CACHE"
cargo build --release --bin cyberfilter
BIN=${CARGO_TARGET_DIR:-target}/release/cyberfilter
python3 scripts/default_head_set.py "$CACHE/default-train.jsonl" --cyberfilter "$BIN"
"$BIN" bench accuracy \
    --train "$CACHE/default-train.jsonl" \
    --layers 8,12,16,20,24,30 --head-layer "$LAYER" \
    --features-cache "$CACHE/feats.bin" \
    --save-head src/verify/head/default/smollm2-135m.head.json
