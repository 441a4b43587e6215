#!/usr/bin/env bash
# Supernet block training step: dnas vs a PyTorch eager reference (tools/bench_supernet_ref.py),
# same block, shapes, sampled paths, batch and threads, in one run. Options: --block I --batch B
# --steps N --threads T, --paper: the DNA space on the real Lite0 at 224² (see examples/bench_supernet.rs).
source "$(dirname "$0")/env.sh"
cd "$DNAS_ROOT"
cargo run --quiet --release --example bench_supernet -- "$@"
