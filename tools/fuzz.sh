#!/usr/bin/env bash
# Fuzzes the ONNX importer with cargo-fuzz (libFuzzer), two targets (fuzz/fuzz_targets/):
#   import     ONNX bytes → IR → graph checks → shape inference → params/MACs
#   roundtrip  ONNX bytes → IR → writer → reader: the same graph back
# Seeds: the hostile corpus and the small well-formed models of tests/hostile.rs, and the shipped
# Fashion-MNIST models. Crashes land in fuzz/artifacts/<target>/; keep each as a regression case
# (add it to tests/hostile.rs once fixed).
#
#   tools/fuzz.sh [--runs N | --seconds S] [--jobs J] [TARGET…]
#     default: --seconds 60, both targets, one after the other; --runs 1000000 for the full bar.
# Installs cargo-fuzz (crates.io) into $DNAS_HOME/cargo-tools the first time; needs the nightly
# toolchain (rustup). Built without a sanitizer (`-s none`: dnas has no unsafe code of its own
# on these paths; panics, aborts and overflow checks are what the fuzzer looks for), with debug
# assertions and overflow checks on.
source "$(dirname "$0")/env.sh"
cd "$DNAS_ROOT"
limit=(-max_total_time=60)
targets=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --runs) limit=(-runs="$2"); shift 2 ;;
    --seconds) limit=(-max_total_time="$2"); shift 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
[[ ${#targets[@]} -gt 0 ]] || targets=(import roundtrip)
export PATH="$DNAS_HOME/cargo-tools/bin:$PATH"
if ! cargo fuzz --version > /dev/null 2>&1; then
  echo "[fuzz] installing cargo-fuzz into $DNAS_HOME/cargo-tools" >&2
  cargo install --locked cargo-fuzz --root "$DNAS_HOME/cargo-tools" || exit 2
fi
rustup run nightly rustc --version > /dev/null 2>&1 || { echo "[fuzz] needs the nightly toolchain: rustup toolchain install nightly" >&2; exit 2; }

# The fuzz binaries link libtorch but do not carry dnas's rpath (a dependency's link args stay
# with its own binaries): point the loader at the venv's torch libraries.
torch_lib=$(python -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))') || exit 2
export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
seeds="$DNAS_HOME/fuzz-seeds"
rm -rf "$seeds" && mkdir -p "$seeds"
DNAS_WRITE_HOSTILE="$seeds" cargo test --quiet --test hostile -- --ignored write_corpus > /dev/null || exit 2
cp models/*.onnx "$seeds/"
status=0
for t in "${targets[@]}"; do
  corpus="$DNAS_HOME/fuzz-corpus/$t"
  mkdir -p "$corpus"
  echo "== cargo fuzz run $t (${limit[*]}; corpus $corpus, seeds $seeds)"
  log="$DNAS_HOME/fuzz-$t.log"
  (cd fuzz && cargo +nightly fuzz run -s none "$t" "$corpus" "$seeds" -- "${limit[@]}" -max_len=262144 \
    -rss_limit_mb=4096 -print_final_stats=1) > "$log" 2>&1
  rc=$?
  grep -E "^#[0-9]+ *(INITED|DONE)|^stat::number_of_executed_units|^stat::peak_rss_mb|panicked|SUMMARY|Test unit written" "$log"
  echo "[fuzz] $t: exit $rc, log $log"
  [[ $rc -eq 0 ]] || status=1
  if compgen -G "fuzz/artifacts/$t/*" > /dev/null; then
    echo "[fuzz] $t: crash inputs in fuzz/artifacts/$t/" >&2
    status=1
  fi
done
exit $status
