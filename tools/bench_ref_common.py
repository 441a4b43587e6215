"""Shared by the PyTorch eager references of the step benchmarks (bench_supernet_ref.py,
bench_oneshot_ref.py): dnas's MBConv in plain PyTorch, and the stdin/stdout protocol that lets
the Rust side interleave the references with its own steps (examples/common/interleave.rs).

MBConv as dnas builds it (src/ir/builder.rs): expand 1x1 + BN + swish (when expand > 1),
depthwise kxk + BN + swish, squeeze-excite (GAP, 1x1 + swish, 1x1 + sigmoid, scale), project
1x1 + BN, identity shortcut when shapes allow. BatchNorm eps 1e-3.
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
    """`ir_k5_e3` -> (5, 3)."""
    k, e = op[len("ir_k"):].split("_e")
    return int(k), int(e)


def args():
    """SPEC contiguous|channels_last cpu|cuda fp32|amp -> (spec, memory format, device, amp)."""
    spec = json.load(open(sys.argv[1]))
    channels_last = len(sys.argv) > 2 and sys.argv[2] == "channels_last"
    device = sys.argv[3] if len(sys.argv) > 3 else "cpu"
    amp = len(sys.argv) > 4 and sys.argv[4] == "amp"
    torch.set_num_threads(spec["threads"])
    torch.manual_seed(0)
    return spec, torch.channels_last if channels_last else torch.contiguous_format, device, amp


def adamw(net, lr):
    """AdamW, weight decay 1e-4 on weights of rank >= 2 only (as dnas)."""
    decay = [p for n, p in net.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in net.named_parameters() if p.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": 1e-4}, {"params": no_decay, "weight_decay": 0.0}], lr=lr)


def serve(step, paths, warm, device, channels_last, params=None):
    """Warm-up steps, `ready` (with the network's parameter count, which the Rust side checks
    against its own), then `run FIRST END` lines until `quit` (see the module doc)."""
    def sync():
        if device == "cuda":
            torch.cuda.synchronize()
    for s in range(warm):
        step(paths[s])
    sync()
    print(json.dumps({"ready": True, "torch": torch.__version__, "params": params}), flush=True)
    for line in sys.stdin:
        cmd = line.split()
        if not cmd or cmd[0] == "quit":
            break
        first, end = int(cmd[1]), int(cmd[2])
        t = time.perf_counter()
        for s in range(first, end):
            step(paths[s])
        sync()
        print(json.dumps({"ms_per_step": (time.perf_counter() - t) * 1000 / max(1, end - first)}), flush=True)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    out = {"peak_rss_mib": usage.ru_maxrss / 1024, "minor_faults": usage.ru_minflt, "channels_last": channels_last,
           "torch": torch.__version__}
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
