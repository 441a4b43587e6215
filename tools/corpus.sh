#!/usr/bin/env bash
# The public teacher corpus (tools/corpus.py: torchvision architectures exported at opsets
# 9–17 and taken down to 7–10 with onnx's version converter, NHWC fixed-batch variants, and
# PaddleOCR's classifier as Paddle2ONNX wrote it, Keras applications through tf2onnx), each through `dnas teacher inspect` and
# `dnas teacher check` on the setup's 20 labelled ImageNet photos (tch vs ORT vs tract, IR
# round trip). Prints the README's table (markdown) and writes $OUT/report.json.
#   tools/corpus.sh            # OUT=$DNAS_HOME/corpus
source "$(dirname "$0")/env.sh"
cd "$DNAS_ROOT"
set +e
OUT="${DNAS_CORPUS:-$DNAS_HOME/corpus}"
python tools/corpus.py --out "$OUT" || exit 2
cargo build --quiet --bin dnas || exit 2
BIN="$CARGO_TARGET_DIR/debug/dnas"
PHOTOS="$DNAS_HOME/pkgs/foolbox/foolbox/data"
mkdir -p "$OUT/checks"
python - "$OUT" <<'PY' > "$OUT/jobs.txt"
import json, sys
for e in json.load(open(sys.argv[1] + "/corpus.json")):
    mean = ",".join(map(str, e.get("mean", [0.485, 0.456, 0.406])))
    std = ",".join(map(str, e.get("std", [0.229, 0.224, 0.225])))
    print(e["file"], ",".join(map(str, e["input_shape"])), mean, std)
PY
while read -r file shape mean std; do
  stem="${file%.onnx}"
  "$BIN" teacher inspect "$OUT/$file" --input-shape "$shape" --json > "$OUT/checks/$stem.inspect.json" 2> "$OUT/checks/$stem.inspect.err"
  "$BIN" teacher check "$OUT/$file" --images "$PHOTOS" --prefix imagenet_ --input-shape "$shape" \
    --mean "$mean" --std "$std" --batch 10 --json > "$OUT/checks/$stem.check.json" 2> "$OUT/checks/$stem.check.err"
  echo "$file: exit $?" >&2
done < "$OUT/jobs.txt"
python - "$OUT" <<'PY'
import json, os, sys
out = sys.argv[1]
rows, report = [], []
for e in json.load(open(out + "/corpus.json")):
    stem = e["file"][:-5]
    def load(kind):
        try:
            return json.load(open(f"{out}/checks/{stem}.{kind}.json"))
        except Exception:
            return None
    ins, chk = load("inspect"), load("check")
    err = open(f"{out}/checks/{stem}.check.err").read().strip().splitlines()
    ops = len(ins["op_histogram"]) if ins else "—"
    if chk:
        tr = chk.get("tract_vs_ort") or {}
        verdict = "PASS" if chk["pass"] else "FAIL"
        cells = [f"{chk['tch_vs_ort']['max_rel']:.1e}", f"{tr.get('max_rel', float('nan')):.1e}",
                 f"{chk['top1_agree_tch_ort']}/{chk['images']}"]
    else:
        verdict = "error: " + (err[-1][:90] if err else "?")
        cells = ["—", "—", "—"]
    rows.append(f"| {e['file']} | {e['producer']} | {e['opset']} | {ops} | {verdict} | " + " | ".join(cells) + " |")
    report.append({**e, "ops": ins["op_histogram"] if ins else None, "check": chk, "error": None if chk else err[-1:] })
json.dump(report, open(out + "/report.json", "w"), indent=1)
print("| model | producer | opset | ops | `teacher check` | tch vs ORT max rel | tract vs ORT max rel | top-1 agree |")
print("|---|---|---|---|---|---|---|---|")
print("\n".join(rows))
n = sum(1 for r in report if r["check"] and r["check"]["pass"])
print(f"\n{n}/{len(report)} pass", file=sys.stderr)
PY
