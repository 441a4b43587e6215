# Sourced by tools/dnas and tools/test.sh: runs setup (idempotent, seconds when cached), loads its
# environment, exports the reference models, and points cargo at a target dir outside the clone.
set -euo pipefail
export DNAS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export DNAS_HOME="${DNAS_HOME:-$HOME/.cache/dnas}"
bash "$DNAS_ROOT/tools/setup.sh" >&2
# shellcheck disable=SC1091
source "$DNAS_HOME/env.sh"
python "$DNAS_ROOT/tools/export_teachers.py" 2> >(grep -v -i "warn\|torch.onnx.export\|ph = \|pw = \|if ph" >&2)
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$DNAS_HOME/target}"
