#!/usr/bin/env bash
# dnas export vs torch.onnx.export of the same architecture and weights, ORT CPU 1 thread, one run
# (tools/bench_export.py). Default: the shipped searched Fashion-MNIST student.
# Options: --arch A.json --weights W.safetensors (then passed on: --runs N --rounds R).
source "$(dirname "$0")/env.sh"
cd "$DNAS_ROOT"
arch=models/archs/fmnist_searched.json
weights=models/fmnist_searched.safetensors
while [[ $# -gt 0 ]]; do
  case $1 in
    --arch) arch=$2; shift 2 ;;
    --weights) weights=$2; shift 2 ;;
    *) break ;;
  esac
done
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cargo run --quiet --release -- export --arch "$arch" --weights "$weights" -o "$out/dnas.onnx" >/dev/null
python "$DNAS_ROOT/tools/bench_export.py" --arch "$arch" --weights "$weights" --dnas-onnx "$out/dnas.onnx" "$@"
