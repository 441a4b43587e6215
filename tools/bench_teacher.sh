#!/usr/bin/env bash
# Teacher forward benchmark: dnas tch executor vs ONNX Runtime, same ONNX, same run.
source "$(dirname "$0")/env.sh"
cd "$DNAS_ROOT"
cargo run --quiet --example bench_teacher -- "$@"
