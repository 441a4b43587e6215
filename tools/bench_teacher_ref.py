#!/usr/bin/env python3
"""PyTorch reference for the teacher forward benchmark (examples/bench_teacher.rs).

What the same network costs in libtorch itself, to tell the executor's overhead from the speed
of libtorch's CPU kernels: for each ONNX file given whose network tools/export_teachers.py can
build (efficientnet_lite0, mobilenet_v2, resnet18_op13/17), times the PyTorch module the file
was exported from, with the file's weights,
  eager     channels_last (what dnas's executor asks libtorch for: oneDNN convolutions), and
  frozen    torch.jit.freeze + torch.jit.optimize_for_inference (PyTorch's own inference
            optimiser: prepacked oneDNN weights, fused conv + activation),
against ONNX Runtime on the same file, interleaved in rounds in this one process (median of the
per-round ratios, so machine load changes cancel). Also checks the module computes what the file
does (max relative difference to ORT). Prints one JSON object per file.
Usage: bench_teacher_ref.py --batch B --runs R --threads T MODEL.onnx ...
"""
import argparse, os, statistics, sys, time

import numpy as np
import onnxruntime as ort
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import export_teachers as et  # noqa: E402

BUILDERS = {
    "efficientnet_lite0": et.lite0,
    "mobilenet_v2": et.mobilenet_v2,
    "resnet18_op13": lambda: et.random_tv("resnet18"),
    "resnet18_op17": lambda: et.random_tv("resnet18"),
}


def timed(f):
    t = time.perf_counter()
    f()
    return (time.perf_counter() - t) * 1000


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("models", nargs="+")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    for path in a.models:
        stem = os.path.splitext(os.path.basename(path))[0]
        if stem not in BUILDERS:
            print(f'{{"model": "{stem}", "skipped": "no PyTorch module known for this file"}}', flush=True)
            continue
        model = BUILDERS[stem]().eval()
        n = a.batch * 3 * 224 * 224
        # The benchmark's input pattern (examples/bench_teacher.rs).
        x = torch.from_numpy((np.arange(n) % 255).astype(np.float32) / 127.0 - 1.0).reshape(a.batch, 3, 224, 224)
        so = ort.SessionOptions()
        so.intra_op_num_threads = a.threads
        # As the Rust side: ORT's threads must not busy-wait into the next contestant's run.
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        feed = {sess.get_inputs()[0].name: x.numpy()}
        with torch.no_grad():
            eager = model.to(memory_format=torch.channels_last)
            xc = x.contiguous(memory_format=torch.channels_last)
            frozen = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(model.eval(), x)))
            want = torch.from_numpy(sess.run(None, feed)[0])
            err = max(float((f(i) - want).abs().max() / want.abs().max()) for f, i in [(eager, xc), (frozen, x)])
            contestants = {"ort": lambda: sess.run(None, feed), "eager": lambda: eager(xc), "frozen": lambda: frozen(x)}
            for _ in range(3):
                for f in contestants.values():
                    f()
            ms = {k: [] for k in contestants}
            for r in range(a.runs):
                order = list(contestants)[r % 3:] + list(contestants)[: r % 3]
                for k in order:
                    ms[k].append(timed(contestants[k]))
        ratio = lambda k: statistics.median([m / o for m, o in zip(ms[k], ms["ort"])])
        out = {"model": stem, "ort_ms": statistics.median(ms["ort"]), "eager_ms": statistics.median(ms["eager"]),
               "frozen_ms": statistics.median(ms["frozen"]), "eager_vs_ort": ratio("eager"), "frozen_vs_ort": ratio("frozen"),
               "max_rel_diff_vs_ort": err, "torch": torch.__version__}
        print(__import__("json").dumps(out), flush=True)


if __name__ == "__main__":
    main()
