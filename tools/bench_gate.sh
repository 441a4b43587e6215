#!/usr/bin/env bash
# How much a noisy machine moves the CI latency gate: the model/reference p50 ratio of
# `dnas validate` (models/fmnist_demo_full.onnx against its budget's reference, the teacher) timed
# sequentially (all of one, then the other: how dnas timed before) and interleaved (run against
# run, the default), on a quiet machine and with a bursty CPU hog beside it (one busy process per
# core, each switching on and off every 0.1–0.8 s, as other CI jobs do). The modes alternate
# within each repetition so both see the same conditions.
#
# The ratio is the gate's own: sequential, p50 of the model / p50 of the reference; interleaved,
# the median of the per-round ratios. Interleaved ONNX Runtime targets are timed as validate times
# them: in a child process (`dnas time-pair`) whose two sessions share one intra-op thread pool.
# Prints, per target and mode: the quiet median ratio, the hogged median and range, and how far
# the hogged ratios move from the quiet median (mean |hog − quiet|). The gate holds when the
# interleaved movement is well under the sequential one.
#   tools/bench_gate.sh [--reps N] [--model NAME]      (defaults: 6, fmnist_demo_full)
source "$(dirname "$0")/env.sh"
cd "$DNAS_ROOT"
reps=6
name=fmnist_demo_full
while [[ $# -gt 0 ]]; do
  case $1 in
    --reps) reps=$2; shift 2 ;;
    --model) name=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
dnas=${DNAS_BIN:-$CARGO_TARGET_DIR/debug/dnas}
[[ -x $dnas ]] || cargo build --quiet --bin dnas || exit 2
out=$(mktemp -d)
hog_pids=()
stop_hog() { for p in "${hog_pids[@]}"; do kill "$p" 2>/dev/null; done; hog_pids=(); }
trap stop_hog EXIT
start_hog() {
  for _ in $(seq "$(nproc)"); do
    python3 -c '
import random, time
r = random.Random()
while True:
    end = time.time() + r.uniform(0.1, 0.8)
    while time.time() < end:
        pass
    time.sleep(r.uniform(0.1, 0.8))' &
    hog_pids+=($!)
  done
}
for cond in quiet hog; do
  [[ $cond == hog ]] && start_hog
  for r in $(seq "$reps"); do
    for mode in sequential interleaved; do
      "$dnas" validate "models/$name.onnx" --budget "models/budgets/$name.json" --no-accuracy \
        --timing "$mode" --report "$out/$cond-$mode-$r.json" > /dev/null || true
      [[ -s $out/$cond-$mode-$r.json ]] || { echo "validate wrote no report ($cond $mode $r)" >&2; exit 2; }
    done
    echo "[bench_gate] $cond repetition $r/$reps done" >&2
  done
  stop_hog
done
python3 - "$out" "$reps" <<'EOF'
import json, statistics, sys
out, reps = sys.argv[1], int(sys.argv[2])
ratios = {}
for cond in ("quiet", "hog"):
    for mode in ("sequential", "interleaved"):
        for r in range(1, reps + 1):
            rep = json.load(open(f"{out}/{cond}-{mode}-{r}.json"))
            refs = {x["target"]: x for x in rep["reference"]["latency"]}
            for row in rep["latency"]:
                if row["available"]:
                    # The gate's own ratio: per-round (interleaved) or of the p50s (sequential).
                    paired = row.get("paired_ratio")
                    ratio = paired["p50"] if paired else row["p50_ms"] / refs[row["target"]]["p50_ms"]
                    ratios.setdefault((row["target"], mode, cond), []).append(ratio)
print(f"{'target':<12} {'timing':<12} {'quiet median':>12} {'hog median':>10} {'hog range':>15} {'moves by':>9}")
moves = {}
for target in sorted({k[0] for k in ratios}):
    for mode in ("sequential", "interleaved"):
        q, h = ratios[(target, mode, "quiet")], ratios[(target, mode, "hog")]
        qm = statistics.median(q)
        move = sum(abs(x - qm) for x in h) / len(h)
        moves[(target, mode)] = move
        print(f"{target:<12} {mode:<12} {qm:>12.3f} {statistics.median(h):>10.3f} {min(h):>7.3f}–{max(h):<7.3f} {move:>9.3f}")
for target in sorted({k[0] for k in ratios}):
    s, i = moves[(target, "sequential")], moves[(target, "interleaved")]
    print(f"{target}: interleaved moves {i / s:.2f}× as much as sequential" if s > 0 else f"{target}: sequential did not move")
print(f"reports in {out}")
EOF
