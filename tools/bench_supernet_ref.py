#!/usr/bin/env python3
"""PyTorch eager reference for the supernet step benchmark (examples/bench_supernet.rs).

Reads the spec the Rust side wrote (layer shapes, ops, the sampled path of every step, batch,
threads) and runs the same block training step in plain PyTorch: for each cell the sampled
path's MBConv layers -> MSE to the target, summed over cells -> backward -> AdamW (weight decay
on conv weights only), gradients set to None between steps.
Arguments: SPEC contiguous|channels_last cpu|cuda fp32|amp (amp: float16 autocast of forward and
loss, no loss scaling, as the Rust side). Driven over stdin/stdout: see bench_ref_common.py.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from bench_ref_common import MBConv, adamw, args, parse, serve


def main():
    spec, fmt, device, amp = args()
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
    net = nn.ModuleList(cells).to(device=device, memory_format=fmt)
    opt = adamw(net, spec["lr"])
    b = spec["batch"]
    x = torch.randn([b] + spec["in_shape"], device=device).contiguous(memory_format=fmt)
    y = torch.randn([b] + spec["out_shape"], device=device).contiguous(memory_format=fmt)
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

    serve(step, spec["paths"], spec["warmup"], device, fmt == torch.channels_last, sum(p.numel() for p in net.parameters()))


if __name__ == "__main__":
    main()
