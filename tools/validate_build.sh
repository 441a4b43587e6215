#!/usr/bin/env bash
# The validation build (`cargo build --no-default-features`: `dnas validate`, `eval`,
# `teacher inspect`, no libtorch) against the full build: builds it in its own target directory,
# checks with ldd that it links no libtorch, then validates every shipped model against its
# budget with both builds (tools/validate_models.sh) and requires the same verdict and the same
# top-1 per runtime. Prints the build's wall time and the binary's size. Exit 1 on a difference
# or a failed gate.
source "$(dirname "$0")/env.sh"
cd "$DNAS_ROOT"
slim_target="$CARGO_TARGET_DIR/validate-build"
full="$CARGO_TARGET_DIR/debug/dnas"
slim="$slim_target/debug/dnas"
[[ -x $full ]] || cargo build --quiet --bin dnas
t0=$(date +%s)
cargo build --quiet --no-default-features --bin dnas --target-dir "$slim_target"
echo "[validate-build] built in $(($(date +%s) - t0)) s: $slim ($(du -h "$slim" | cut -f1))"
if ldd "$slim" | grep -E "libtorch|libc10|libcuda|libcudnn"; then
  echo "[validate-build] FAIL: the validation build links libtorch or CUDA (above)" >&2
  exit 1
fi
echo "[validate-build] ldd: no libtorch, no CUDA"
reports=$(mktemp -d)
status=0
mkdir -p "$reports/full" "$reports/slim"
DNAS_BIN=$full DNAS_REPORTS=$reports/full bash tools/validate_models.sh || status=1
DNAS_BIN=$slim DNAS_REPORTS=$reports/slim bash tools/validate_models.sh || status=1
python - "$reports" <<'EOF' || status=1
import json, pathlib, sys
root = pathlib.Path(sys.argv[1])
bad = 0
def key(r):
    acc = [(x["runtime"], x["correct"], x["total"], x["top1"]) for x in r.get("accuracy") or []]
    return {"pass": r["pass"], "params": r["params"], "macs": r["macs"], "top1": acc}
files = sorted((root / "full").glob("*.validate.json"))
for f in files:
    a, b = key(json.loads(f.read_text())), key(json.loads((root / "slim" / f.name).read_text()))
    same = a == b
    print(f"[validate-build] {f.stem}: full {a}\n[validate-build] {' ' * len(f.stem)}  slim {b}: {'same' if same else 'DIFFERENT'}")
    bad += not same
if not files:
    print("[validate-build] no reports to compare", file=sys.stderr)
    bad = 1
sys.exit(1 if bad else 0)
EOF
exit $status
