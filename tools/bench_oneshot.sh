#!/usr/bin/env bash
# One-shot supernet step (SPOS; --kd: Cream's step): dnas vs a PyTorch eager reference
# (tools/bench_oneshot_ref.py), same network, paths, batch and threads, interleaved in one run.
# Options: --batch B --steps N --rounds R --threads T --kd --cuda --amp (see examples/bench_oneshot.rs).
source "$(dirname "$0")/env.sh"
cd "$DNAS_ROOT"
cargo run --quiet --release --example bench_oneshot -- "$@"
