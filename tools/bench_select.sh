#!/usr/bin/env bash
# Selection benchmark: exact constrained selection on a DNA-size instance. See examples/bench_select.rs.
source "$(dirname "$0")/env.sh"
cd "$DNAS_ROOT"
cargo run --quiet --example bench_select -- "$@"
