#!/usr/bin/env bash
# The version-1 truth set of the embedded space (models/study/fmnist_small; superseded by
# tools/study_v2.sh, docs/study.md): 24 architectures of
# models/spaces/fmnist_small.json retrained from scratch with the truth recipe (plain cross-entropy,
# 20,000 images, 2 epochs; one held-out split for all), 6 of them twice.
# Resumable: run it again to continue (finished runs are never redone). Extra flags go to
# `dnas study truth` (e.g. --device cuda:0, --shard 0/2).
#   tools/study_fmnist.sh                      # work in runs/study-fmnist_small
#   DNAS_STUDY_DIR=/shared/s tools/study_fmnist.sh --shard 1/2 --device cuda:1
# After each call the small files (study.json, the plans, every runs/*/record.json, truth.json, the
# rank/ and pick/ reports; no weights) are copied to models/study/fmnist_small, which
# `dnas study rank`, `dnas study pick` and `dnas report --study` read as they are.
source "$(dirname "$0")/env.sh"
cd "$DNAS_ROOT"
cargo build --quiet --bin dnas
DIR="${DNAS_STUDY_DIR:-$DNAS_ROOT/runs/study-fmnist_small-r1}"
SHIP="$DNAS_ROOT/models/study/fmnist_small"
sync_ship() {
  mkdir -p "$SHIP/runs"
  for f in "$DIR"/study.json "$DIR"/plan-*.json "$DIR"/truth*.json; do [ -f "$f" ] && cp "$f" "$SHIP/"; done
  for d in rank rank/differences pick; do
    [ -d "$DIR/$d" ] && mkdir -p "$SHIP/$d" && cp "$DIR/$d"/*.json "$SHIP/$d/" 2>/dev/null
  done
  for r in "$DIR"/runs/*/record.json; do
    [ -f "$r" ] || continue
    id=$(basename "$(dirname "$r")"); mkdir -p "$SHIP/runs/$id"; cp "$r" "$SHIP/runs/$id/record.json"
  done
}
trap sync_ship EXIT
"$CARGO_TARGET_DIR/debug/dnas" study truth \
  --space models/spaces/fmnist_small.json --teacher models/fmnist_teacher.onnx -o "$DIR" \
  --archs 24 --repeat 6 --seed 0 --train-seed 0 --near-budget models/demo/default.budget.json \
  --data fmnist --held-out 5000 --data-seed 0 --train-subset 20000 --epochs 2 --batch 128 --optimizer adamw \
  --lr 3e-3 --weight-decay 0.05 --schedule cosine --warmup-epochs 0.5 --label-smoothing 0 "$@"
