#!/usr/bin/env bash
# The test command: setup + reference models + the whole cargo test suite (CPU only).
source "$(dirname "$0")/env.sh"
cd "$DNAS_ROOT"
cargo test --quiet "$@" 2>&1
