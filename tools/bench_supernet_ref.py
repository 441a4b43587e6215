#!/usr/bin/env python3
"""PyTorch eager reference for the supernet step benchmark (examples/bench_supernet.rs).

Reads the spec the Rust side wrote (layer shapes, ops, the sampled path of every step, batch,
threads) and runs the same block training step in plain PyTorch: for each cell the sampled
path's MBConv layers (expand 1x1 + BN + swish, depthwise kxk + BN + swish, squeeze-excite,
project 1x1 + BN, residual when shapes allow) -> MSE to the target, summed over cells ->
backward -> AdamW (weight decay on conv weights only), gradients set to None between steps.
Arguments: SPEC contiguous|channels_last cpu|cuda fp32|amp (amp: float16 autocast of forward and
loss, no loss scaling, as the Rust side).

It is driven over stdin/stdout so that the Rust side can interleave it with its own steps (all
contestants timed in the same rounds, which is what makes the ratio robust on a shared machine):
after the warm-up steps it prints `{"ready": true}`; each line `run FIRST END` runs steps
FIRST..END and answers `{"ms_per_step": …}`; `quit` answers with peak RSS and, on CUDA, the max
allocated memory and nvidia-smi's figure for this process, then exits.
"""
import json
import os
import resource
import subprocess
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class MBConv(nn.Module):
    def __init__(self, cin, cout, k, stride, expand, se):
        super().__init__()
        mid = cin * expand
        self.expand = None
        if expand != 1:
            self.expand = nn.Sequential(nn.Conv2d(cin, mid, 1, bias=False), nn.BatchNorm2d(mid, eps=1e-3))
        self.dw = nn.Sequential(nn.Conv2d(mid, mid, k, stride, k // 2, groups=mid, bias=False), nn.BatchNorm2d(mid, eps=1e-3))
        self.se = None
        if se > 0:
            sq = max(1, int(cin * se))
            self.se = nn.ModuleList([nn.Conv2d(mid, sq, 1), nn.Conv2d(sq, mid, 1)])
        self.project = nn.Sequential(nn.Conv2d(mid, cout, 1, bias=False), nn.BatchNorm2d(cout, eps=1e-3))
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        h = x
        if self.expand is not None:
            h = F.silu(self.expand(h))
        h = F.silu(self.dw(h))
        if self.se is not None:
            s = F.adaptive_avg_pool2d(h, 1)
            s = torch.sigmoid(self.se[1](F.silu(self.se[0](s))))
            h = h * s
        h = self.project(h)
        return x + h if self.residual else h


def parse(op):
    k, e = op[len("ir_k"):].split("_e")
    return int(k), int(e)


def main():
    spec = json.load(open(sys.argv[1]))
    channels_last = len(sys.argv) > 2 and sys.argv[2] == "channels_last"
    device = sys.argv[3] if len(sys.argv) > 3 else "cpu"
    amp = len(sys.argv) > 4 and sys.argv[4] == "amp"
    torch.set_num_threads(spec["threads"])
    torch.manual_seed(0)
    cells = []
    for cell in spec["cells"]:
        layers = []
        for l in cell["layers"]:
            ops = nn.ModuleList()
            for op in l["ops"]:
                k, e = parse(op)
                ops.append(MBConv(l["cin"], l["cout"], k, l["stride"], e, spec["se"]))
            layers.append(ops)
        cells.append(nn.ModuleList(layers))
    net = nn.ModuleList(cells)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    net = net.to(device=device, memory_format=fmt)
    decay = [p for n, p in net.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in net.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 1e-4}, {"params": no_decay, "weight_decay": 0.0}], lr=spec["lr"])
    b = spec["batch"]
    x = torch.randn([b] + spec["in_shape"], device=device).contiguous(memory_format=fmt)
    y = torch.randn([b] + spec["out_shape"], device=device).contiguous(memory_format=fmt)

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()
    net.train()

    def step(paths):
        opt.zero_grad(set_to_none=True)
        loss = 0.0
        with torch.autocast("cuda", dtype=torch.float16, enabled=amp):
            for c, path in enumerate(paths):
                h = x
                for l, o in enumerate(path):
                    h = net[c][l][o](h)
                loss = loss + F.mse_loss(h, y)
        loss.backward()
        opt.step()
        return loss

    warm = spec["warmup"]
    for s in range(warm):
        step(spec["paths"][s])
    sync()
    print(json.dumps({"ready": True, "torch": torch.__version__}), flush=True)
    for line in sys.stdin:
        cmd = line.split()
        if not cmd or cmd[0] == "quit":
            break
        first, end = int(cmd[1]), int(cmd[2])
        t = time.perf_counter()
        for s in range(first, end):
            step(spec["paths"][s])
        sync()
        print(json.dumps({"ms_per_step": (time.perf_counter() - t) * 1000 / max(1, end - first)}), flush=True)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out = {"peak_rss_mib": rss, "minor_faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt, "channels_last": channels_last, "torch": torch.__version__}
    if device == "cuda":
        out["cuda_max_allocated_mib"] = torch.cuda.max_memory_allocated() / 2**20
        try:
            q = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
                               capture_output=True, text=True).stdout
            for line in q.splitlines():
                pid, mib = [f.strip() for f in line.split(",")]
                if int(pid) == os.getpid():
                    out["gpu_used_mib"] = float(mib)
        except (OSError, ValueError):
            pass
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
