#!/usr/bin/env bash
# The test command: setup + reference models + the whole cargo test suite (CPU only), then the
# CI gate: the shipped models validated against their budgets (tools/validate_models.sh).
source "$(dirname "$0")/env.sh"
cd "$DNAS_ROOT"
cargo test --quiet "$@" 2>&1
bash "$DNAS_ROOT/tools/validate_models.sh"
