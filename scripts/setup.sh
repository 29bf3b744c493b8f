#!/usr/bin/env bash
# Installs what cyberfilter needs on a fresh Debian machine (idempotent).
set -euo pipefail
cd "$(dirname "$0")/.."
echo "setup: nothing beyond the Rust toolchain is needed yet"
