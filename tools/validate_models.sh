#!/usr/bin/env bash
# The CI gate for the models shipped in models/: every budget in models/budgets/NAME.json is
# checked against models/NAME.onnx with `dnas validate` (top-1 through ONNX Runtime and tract on
# the Fashion-MNIST test split, params, MACs, latency per target, ratios against the budget's
# reference measured in the same run). Any violated budget fails the script (exit 1).
# Copy this pattern into your own pipeline: `dnas validate model.onnx --data … --budget b.json`.
source "$(dirname "$0")/env.sh"
cd "$DNAS_ROOT"
dnas=${DNAS_BIN:-$CARGO_TARGET_DIR/debug/dnas}
[[ -x $dnas ]] || cargo build --quiet --bin dnas
reports=${DNAS_REPORTS:-$(mktemp -d)}
status=0
for budget in models/budgets/*.json; do
  name=$(basename "$budget" .json)
  echo "== dnas validate models/$name.onnx --budget $budget"
  "$dnas" validate "models/$name.onnx" --data fmnist --budget "$budget" --report "$reports/$name.validate.json" || status=1
done
echo "reports in $reports"
exit $status
