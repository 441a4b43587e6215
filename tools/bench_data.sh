#!/usr/bin/env bash
# Data pipeline benchmark: loader throughput vs the loop it feeds, same run. See examples/bench_data.rs.
source "$(dirname "$0")/env.sh"
cd "$DNAS_ROOT"
cargo run --quiet --example bench_data -- "$@"
