#!/usr/bin/env bash
# The test command: setup + reference models + the quick teacher corpus + the whole cargo test
# suite (CPU only), then the
# CI gate: the shipped models validated against their budgets (tools/validate_models.sh).
source "$(dirname "$0")/env.sh"
cd "$DNAS_ROOT"
# The quick teacher corpus tests/corpus.rs checks (tools/corpus.py --quick; cached).
python "$DNAS_ROOT/tools/corpus.py" --quick 2> >(grep -v -i "warn\|torch.onnx.export" >&2)
cargo test --quiet "$@" 2>&1
bash "$DNAS_ROOT/tools/validate_models.sh"
