#!/usr/bin/env python3
"""Export benchmark reference: the same architecture and weights exported by torch.onnx.export
from a plain PyTorch module, against dnas's own export, timed through ONNX Runtime (CPU, 1 intra-op
thread, batch 1) in the same process, interleaved. Prints node counts, op histograms, the outputs'
agreement (proof that both files hold the same network), p50/p90 latency, the ratio dnas / torch
(goal <= 1.0) and peak RSS.

Usage: bench_export.py --arch A.json --weights W.safetensors --dnas-onnx M.onnx [--runs 300] [--rounds 5]
"""
import argparse
import collections
import json
import os
import resource
import tempfile
import time

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file


class ConvBN(nn.Module):
    def __init__(self, cin, cout, k, stride, groups, act):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=1e-3)
        self.act = act

    def forward(self, x):
        x = self.bn(self.conv(x))
        return x * torch.sigmoid(x) if self.act else x


class SE(nn.Module):
    def __init__(self, c, sq):
        super().__init__()
        self.reduce = nn.Conv2d(c, sq, 1)
        self.expand = nn.Conv2d(sq, c, 1)

    def forward(self, x):
        s = F.adaptive_avg_pool2d(x, 1)
        s = self.reduce(s)
        s = s * torch.sigmoid(s)
        return x * torch.sigmoid(self.expand(s))


class MBConv(nn.Module):
    def __init__(self, cin, cout, k, stride, expand, se):
        super().__init__()
        mid = cin * expand
        if expand != 1:
            self.expand = ConvBN(cin, mid, 1, 1, 1, True)
        self.dw = ConvBN(mid, mid, k, stride, mid, True)
        if se > 0:
            self.se = SE(mid, max(1, int(cin * se)))
        self.project = ConvBN(mid, cout, 1, 1, 1, False)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        h = x
        if hasattr(self, "expand"):
            h = self.expand(h)
        h = self.dw(h)
        if hasattr(self, "se"):
            h = self.se(h)
        h = self.project(h)
        return x + h if self.residual else h


def parse_op(op):
    if op == "skip":
        return None
    k, e = op[len("ir_k"):].split("_e")
    return int(k), int(e)


class Stem(ConvBN):
    pass


class Child(nn.Module):
    """The network dnas's build_child makes from an architecture JSON, with the same parameter names."""

    def __init__(self, arch):
        super().__init__()
        se = arch["se"]
        cin, s = arch["input"][0], arch["stem"]
        self.stem = Stem(cin, s["channels"], s["kernel"], s["stride"], 1, True)
        self.stem.layers = nn.ModuleList()
        c = s["channels"]
        for l in s.get("layers", []):
            k, e = parse_op(l["op"])
            self.stem.layers.append(MBConv(c, l["out"], k, l["stride"], e, se))
            c = l["out"]
        self.blocks = nn.ModuleList()
        for b in arch["blocks"]:
            layers = nn.ModuleList()
            n = len(b["layers"])
            for i, op in enumerate(b["layers"]):
                cout = b["out"] if i + 1 == n else b["width"]
                stride = b["stride"] if i == 0 else 1
                p = parse_op(op)
                layers.append(nn.Identity() if p is None else MBConv(c, cout, p[0], stride, p[1], se))
                c = cout
            self.blocks.append(layers)
        hc = arch["head"]["channels"]
        self.head = ConvBN(c, hc, 1, 1, 1, True) if hc > 0 else None
        self.classifier = nn.Linear(hc if hc > 0 else c, arch["classes"])

    def forward(self, x):
        x = ConvBN.forward(self.stem, x)
        for l in self.stem.layers:
            x = l(x)
        for b in self.blocks:
            for l in b:
                x = l(x)
        if self.head is not None:
            x = self.head(x)
        x = F.adaptive_avg_pool2d(x, 1).reshape(x.shape[0], -1)
        return self.classifier(x)


def session(path):
    o = ort.SessionOptions()
    o.intra_op_num_threads = 1
    o.inter_op_num_threads = 1
    o.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, o, providers=["CPUExecutionProvider"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", required=True)
    ap.add_argument("--weights", required=True)
    ap.add_argument("--dnas-onnx", required=True)
    ap.add_argument("--runs", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    torch.set_num_threads(1)
    arch = json.load(open(a.arch))
    model = Child(arch).eval()
    state = load_file(a.weights)
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise SystemExit(f"weights do not match the architecture: missing {missing[:5]}, unexpected {unexpected[:5]}")
    c, h, w = arch["input"]
    x = torch.randn(1, c, h, w, generator=torch.Generator().manual_seed(0))
    tmp = os.path.join(tempfile.mkdtemp(), "torch_export.onnx")
    torch.onnx.export(model, (x,), tmp, opset_version=17, dynamo=False, input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}}, do_constant_folding=True)
    models = {"dnas": a.dnas_onnx, "torch.onnx.export": tmp}
    sessions = {k: session(p) for k, p in models.items()}
    feed = x.numpy()
    with torch.no_grad():
        eager = model(x).numpy()
    outs = {k: s.run(None, {s.get_inputs()[0].name: feed})[0] for k, s in sessions.items()}
    print(f"architecture {arch['name']}  input {[1, c, h, w]}  ORT {ort.__version__} CPU, 1 intra-op thread, ORT_ENABLE_ALL, batch 1")
    print(f"max |dnas - torch eager| {np.abs(outs['dnas'] - eager).max():.2e}   "
          f"max |torch.onnx.export - torch eager| {np.abs(outs['torch.onnx.export'] - eager).max():.2e}")
    for k, p in models.items():
        g = onnx.load(p).graph
        hist = collections.Counter(n.op_type for n in g.node)
        print(f"{k:<18} nodes {len(g.node):>4}  initializers {len(g.initializer):>4}  " + " ".join(f"{o}:{n}" for o, n in sorted(hist.items())))
    times = {k: [] for k in models}
    for _ in range(20):
        for k, s in sessions.items():
            s.run(None, {s.get_inputs()[0].name: feed})
    for _ in range(a.rounds):
        for k, s in sessions.items():
            name = s.get_inputs()[0].name
            for _ in range(a.runs // a.rounds):
                t = time.perf_counter()
                s.run(None, {name: feed})
                times[k].append((time.perf_counter() - t) * 1000)
    p = {k: (np.percentile(v, 50), np.percentile(v, 90)) for k, v in times.items()}
    for k, (p50, p90) in p.items():
        print(f"{k:<18} p50 {p50:.4f} ms  p90 {p90:.4f} ms  ({len(times[k])} runs in {a.rounds} interleaved rounds)")
    nodes = {k: len(onnx.load(v).graph.node) for k, v in models.items()}
    print(f"ratio dnas / torch.onnx.export p50 {p['dnas'][0] / p['torch.onnx.export'][0]:.3f} (goal <= 1.0); "
          f"nodes {nodes['dnas']} vs {nodes['torch.onnx.export']} (goal: no more)")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
