#!/usr/bin/env bash
# The test command: setup + reference models + the quick teacher corpus + a local Slurm cluster
# (when this is root: tools/slurm_cluster.sh) + the whole cargo test suite (CPU only), then the
# CI gate: the shipped models validated against their budgets with the full build and with the
# validation build that links no libtorch, which must agree (tools/validate_build.sh).
# Exits non-zero when any part fails.
source "$(dirname "$0")/env.sh"
cd "$DNAS_ROOT"
status=0
# The quick teacher corpus tests/corpus.rs checks (tools/corpus.py --quick; cached).
python "$DNAS_ROOT/tools/corpus.py" --quick 2> >(grep -v -i "warn\|torch.onnx.export" >&2) || status=1
# The real one-node Slurm tests/slurm.rs submits to; once it is up, those tests must run.
if [[ $(id -u) -eq 0 ]] && bash "$DNAS_ROOT/tools/slurm_cluster.sh" start; then
  export DNAS_SLURM_TESTS=required
else
  echo "[test] no local Slurm cluster (needs root): tests/slurm.rs will skip" >&2
fi
cargo test --quiet "$@" 2>&1 || status=1
bash "$DNAS_ROOT/tools/validate_build.sh" || status=1
exit $status
