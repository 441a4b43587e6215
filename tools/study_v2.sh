#!/usr/bin/env bash
# Truth v2 of the embedded space (models/study/fmnist_small_v2): where selection decides.
#
#   tools/study_v2.sh pilot [--shard i/n]    # the recipe pilot: 4 band architectures x 3 seeds
#                                            # under each candidate recipe, cheapest recipe first
#   tools/study_v2.sh truth RECIPE [--shard i/n]   # the truth under the chosen recipe: the band set
#                                            # (>= 32 architectures) and the space set (>= 8), 2 seeds each
#   tools/study_v2.sh auto [--shard i/n]     # pilot, then (once every shard's pilot runs are
#                                            # finished) the recipe `dnas study recipes` decides, then its truth
#   tools/study_v2.sh picks RECIPE [--shard i/n]   # every strategy searched at the demo budget with
#                                            # search seeds 0,1,2 (the default preset's settings), then
#                                            # each strategy's picks retrained with the truth's recipe
#                                            # and seeds 0,1 against its band set (dnas study picks)
#   tools/study_v2.sh ship                   # copy every finished record into models/ now
#
# The band: architectures drawn uniformly over the space (each cell combination weighted by how
# many architectures it holds) with 80-100% of models/demo/default.budget.json's MACs and within
# its params (dnas study truth --set band). The pilot's architectures are the band set's first four
# (the same sampling seed), so the pilot's runs under the chosen recipe are reused by the truth.
#
# Resumable: run it again to continue (finished runs are never redone; a killed run resumes
# from its last checkpoint). On a fresh checkout the finished runs are restored from
# models/study/fmnist_small_v2 (records only: an unfinished run starts again). One libtorch
# thread per process: start one process per core with --shard 0/2 and --shard 1/2. After each recipe the small files (study.json, plans, every
# runs/*/record.json, truth-*.json; no weights) are copied to models/study/fmnist_small_v2.
# DNAS_BIN: a dnas binary to use as it is (e.g. a copy, so that rebuilding while the pilot runs
# for hours cannot change the program under it); by default the project's build.
source "${DNAS_TOOLS:-$(dirname "$0")}/env.sh"
cd "$DNAS_ROOT"
if [ -n "${DNAS_BIN:-}" ]; then
  DNAS="$DNAS_BIN"
else
  cargo build --quiet --bin dnas
  DNAS="$CARGO_TARGET_DIR/debug/dnas"
fi
ROOT="${DNAS_STUDY_DIR:-$DNAS_ROOT/runs/study-v2}"
SHIP="$DNAS_ROOT/models/study/fmnist_small_v2"
BUDGET=models/demo/default.budget.json
COMMON=(--space models/spaces/fmnist_small.json --teacher models/fmnist_teacher.onnx
  --data fmnist --held-out 5000 --data-seed 0 --batch 128 --optimizer adamw --lr 3e-3
  --weight-decay 0.05 --schedule cosine --warmup-epochs 0.5 --label-smoothing 0
  --threads 1 --workers 1)

# The candidate recipes: name -> (train images, epochs). Plain cross-entropy throughout.
recipe_flags() {
  case "$1" in
    r20k-e2) echo "--train-subset 20000 --epochs 2" ;;
    r55k-e2) echo "--epochs 2" ;;
    r55k-e4) echo "--epochs 4" ;;
    *) echo "unknown recipe '$1' (r20k-e2, r55k-e2, r55k-e4)" >&2; return 2 ;;
  esac
}

sync_ship() { # study dir -> shipped dir
  local dir="$1" ship="$2"
  [ -d "$dir" ] || return 0
  mkdir -p "$ship/runs"
  for f in "$dir"/study.json "$dir"/plan-*.json "$dir"/truth*.json; do [ -f "$f" ] && cp "$f" "$ship/"; done
  for r in "$dir"/runs/*/record.json; do
    [ -f "$r" ] || continue
    id=$(basename "$(dirname "$r")"); mkdir -p "$ship/runs/$id"; cp "$r" "$ship/runs/$id/record.json"
  done
}

RECIPES=(r20k-e2 r55k-e2 r55k-e4)

# The run directory is not in git (weights, checkpoints); the shipped small files are. On a fresh
# checkout, seed it from them so finished runs are not redone (a run is finished when its
# record.json exists; an unfinished one restarts from scratch, its checkpoint being local).
restore() { # shipped dir -> study dir
  local ship="$1" dir="$2"
  [ -f "$ship/study.json" ] || return 0
  mkdir -p "$dir/runs"
  for f in "$ship"/study.json "$ship"/plan-*.json; do
    [ -f "$f" ] && [ ! -e "$dir/$(basename "$f")" ] && cp "$f" "$dir/"
  done
  for r in "$ship"/runs/*/record.json; do
    [ -f "$r" ] || continue
    id=$(basename "$(dirname "$r")")
    [ -e "$dir/runs/$id/record.json" ] || { mkdir -p "$dir/runs/$id"; cp "$r" "$dir/runs/$id/record.json"; }
  done
  return 0
}
for r in "${RECIPES[@]}"; do restore "$SHIP/pilot/$r" "$ROOT/pilot-$r"; done
for r in "${RECIPES[@]}"; do
  if [ -f "$SHIP/truth/study.json" ] && grep -q "\"$r\"" "$SHIP/truth/recipe-name" 2>/dev/null; then
    restore "$SHIP/truth" "$ROOT/truth-$r"
  fi
done

pilot() {
    for r in "${RECIPES[@]}"; do
      # shellcheck disable=SC2046
      "$DNAS" study truth "${COMMON[@]}" $(recipe_flags "$r") -o "$ROOT/pilot-$r" \
        --set band --budget "$BUDGET" --band 0.8,1.0 --archs 4 --seed 0 --seeds 0,1,2 "$@"
      sync_ship "$ROOT/pilot-$r" "$SHIP/pilot/$r"
    done
}

# Waits until every pilot run of every shard is finished, then prints the decided recipe's name.
decide() {
    local want=$((4 * 3)) dirs=()
    for r in "${RECIPES[@]}"; do
      while [ "$(ls "$ROOT/pilot-$r"/runs/*/record.json 2>/dev/null | wc -l)" -lt "$want" ]; do
        echo "[study_v2] waiting for the other shards' pilot runs of $r" >&2; sleep 120
      done
      dirs+=("$ROOT/pilot-$r")
    done
    "$DNAS" study recipes --dir "$(IFS=,; echo "${dirs[*]}")" --out "$ROOT" >&2
    cp "$ROOT/recipes.json" "$SHIP/pilot/recipes.json"
    python3 -c "import json,os,sys; d=json.load(open(sys.argv[1]))['decision']['chosen']; print(os.path.basename(d).removeprefix('pilot-'))" "$ROOT/recipes.json"
}

truth() {
    r="$1"; shift
    flags=$(recipe_flags "$r")
    dir="$ROOT/truth-$r"
    mkdir -p "$SHIP/truth"; echo "\"$r\"" > "$SHIP/truth/recipe-name"
    # Reuse the pilot's seeds 0 and 1 of the same recipe (same architectures, same runs).
    if [ -d "$ROOT/pilot-$r/runs" ]; then
      mkdir -p "$dir/runs"
      for d in "$ROOT/pilot-$r"/runs/*-s0 "$ROOT/pilot-$r"/runs/*-s1; do
        [ -f "$d/record.json" ] && [ ! -e "$dir/runs/$(basename "$d")" ] && cp -r "$d" "$dir/runs/"
      done
    fi
    # shellcheck disable=SC2086
    "$DNAS" study truth "${COMMON[@]}" $flags -o "$dir" --set band --budget "$BUDGET" --band 0.8,1.0 \
      --archs 32 --seed 0 --seeds 0,1 "$@"
    sync_ship "$dir" "$SHIP/truth"
    # shellcheck disable=SC2086
    "$DNAS" study truth "${COMMON[@]}" $flags -o "$dir" --set space --near-budget "$BUDGET" \
      --archs 8 --seed 0 --seeds 0,1 "$@"
    sync_ship "$dir" "$SHIP/truth"
}

# The default preset's search settings (dnas demo), per strategy.
search_flags() {
  local common=(--space models/spaces/fmnist_small.json --teacher models/fmnist_teacher.onnx --data fmnist
    --held-out 5000 --train-subset 8000 --epochs 1 --batch 64 --budget "$BUDGET" --threads 1 --workers 1)
  case "$1" in
    dna) echo "${common[@]}" --rank-batches 4 --rank-batch 256 --recal-batch 256 ;;
    spos | cream) echo "${common[@]}" --eval-batches 4 --eval-batch 256 ;;
    mfkd) echo "${common[@]}" --init 5 --evals 10 --promote 2 ;;
  esac
}

STRATEGIES=(dna spos cream mfkd)
SEARCH_SEEDS=(0 1 2)

picks() {
    r="$1"; shift
    local shard="0/1"
    [ "${1:-}" = "--shard" ] && shard="$2"
    local i="${shard%/*}" n="${shard#*/}" k=0
    # The searches: job k of this shard when k mod n = i. A finished search is kept (search.json
    # has its result); an unfinished one resumes from its checkpoints.
    for st in "${STRATEGIES[@]}"; do
      for seed in "${SEARCH_SEEDS[@]}"; do
        if [ $((k % n)) -eq "$i" ]; then
          run="$ROOT/search/$st-seed$seed"
          if ! grep -q '"result"' "$run/search.json" 2>/dev/null; then
            # shellcheck disable=SC2046
            "$DNAS" search "$st" --run "$run" --seed "$seed" $(search_flags "$st")
          fi
        fi
        k=$((k + 1))
      done
    done
    # Every strategy's picks against the band once all its searches are finished.
    for st in "${STRATEGIES[@]}"; do
      runs=()
      for seed in "${SEARCH_SEEDS[@]}"; do
        run="$ROOT/search/$st-seed$seed"
        while ! grep -q '"result"' "$run/search.json" 2>/dev/null; do
          echo "[study_v2] waiting for the search $run (another shard)" >&2; sleep 120
        done
        runs+=("$run")
      done
      "$DNAS" study picks --truth "$ROOT/truth-$r" --run "$(IFS=,; echo "${runs[*]}")" --name "$st" \
        --budget "$BUDGET" --teacher models/fmnist_teacher.onnx --seeds 0,1 --threads 1 --workers 1 "$@"
      sync_ship "$ROOT/truth-$r" "$SHIP/truth"
      mkdir -p "$SHIP/truth/picks"; cp "$ROOT/truth-$r"/picks/*.json "$SHIP/truth/picks/" 2>/dev/null || true
    done
}

what="${1:-}"; shift || true
case "$what" in
  pilot) pilot "$@" ;;
  truth)
    r="${1:?truth needs the chosen recipe (r20k-e2, r55k-e2, r55k-e4)}"; shift
    truth "$r" "$@" ;;
  picks)
    r="${1:?picks needs the recipe of the truth (r20k-e2, r55k-e2, r55k-e4)}"; shift
    picks "$r" "$@" ;;
  auto)
    pilot "$@"
    r=$(decide)
    echo "[study_v2] the pilot chose recipe $r" >&2
    truth "$r" "$@" ;;
  ship) # copy what is finished now into models/ (before a session ends mid-recipe)
    for r in "${RECIPES[@]}"; do
      sync_ship "$ROOT/pilot-$r" "$SHIP/pilot/$r"
      [ -d "$ROOT/truth-$r" ] && sync_ship "$ROOT/truth-$r" "$SHIP/truth"
    done
    [ -f "$ROOT/recipes.json" ] && cp "$ROOT/recipes.json" "$SHIP/pilot/recipes.json"
    exit 0 ;;
  *) echo "usage: tools/study_v2.sh pilot|truth RECIPE|auto|ship [--shard i/n]" >&2; exit 2 ;;
esac
