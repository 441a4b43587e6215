#!/usr/bin/env bash
# Latency table vs measured end-to-end latency for random architectures of the embedded space,
# same target, same run (examples/bench_lut.rs). Options: --target T --archs N --runs R --seed S.
source "$(dirname "$0")/env.sh"
cd "$DNAS_ROOT"
cargo run --quiet --release --example bench_lut -- "$@"
