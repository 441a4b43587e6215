#!/usr/bin/env python3
"""PyTorch eager reference for the one-shot supernet step benchmark (examples/bench_oneshot.rs).

Builds the whole-network one-shot supernet from the spec the Rust side wrote — stem (kxk conv +
BN + swish, its fixed MBConv layers), every block's cells x layers x ops as MBConv modules at the
child's shapes, head (1x1 conv + BN + swish, global average pool, linear) — and runs the same
steps: the sampled path forward, cross-entropy, backward, AdamW (weight decay on weights of rank
>= 2), gradients set to None between steps, so ops off the path get no update (as dnas). With
"kd" (Cream's step) the step's board path also runs under no_grad and the loss is (KD + CE)/2,
KD = soft cross-entropy to the board path's softmax.
Arguments: SPEC contiguous|channels_last cpu|cuda fp32|amp. Driven over stdin/stdout: see
bench_ref_common.py.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from bench_ref_common import MBConv, adamw, args, parse, serve


class OneShot(nn.Module):
    def __init__(self, spec):
        super().__init__()
        st, se = spec["stem"], spec["se"]
        cin = spec["input"][0]
        self.stem_conv = nn.Sequential(nn.Conv2d(cin, st["channels"], st["kernel"], st["stride"], st["kernel"] // 2, bias=False),
                                       nn.BatchNorm2d(st["channels"], eps=1e-3))
        layers, c = [], st["channels"]
        for l in st["layers"]:
            k, e = parse(l["op"])
            layers.append(MBConv(c, l["out"], k, l["stride"], e, se))
            c = l["out"]
        self.stem_layers = nn.ModuleList(layers)
        def ops(l):
            return nn.ModuleList(MBConv(l["cin"], l["cout"], parse(op)[0], l["stride"], parse(op)[1], se) for op in l["ops"])
        # blocks[b][cell][layer][op]
        self.blocks = nn.ModuleList(nn.ModuleList(nn.ModuleList(ops(l) for l in cell) for cell in b["cells"]) for b in spec["blocks"])
        c, h = spec["head_in"], spec["head"]
        self.head = nn.Sequential(nn.Conv2d(c, h, 1, bias=False), nn.BatchNorm2d(h, eps=1e-3)) if h > 0 else None
        self.fc = nn.Linear(h if h > 0 else c, spec["classes"])

    def forward(self, x, path):
        h = F.silu(self.stem_conv(x))
        for m in self.stem_layers:
            h = m(h)
        for b, (cell, ops) in enumerate(path):
            for l, o in enumerate(ops):
                h = self.blocks[b][cell][l][o](h)
        if self.head is not None:
            h = F.silu(self.head(h))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(h, 1), 1))


def main():
    spec, fmt, device, amp = args()
    net = OneShot(spec).to(device=device, memory_format=fmt)
    opt = adamw(net, spec["lr"])
    b = spec["batch"]
    x = torch.randn([b] + spec["input"], device=device).contiguous(memory_format=fmt)
    y = torch.randint(0, spec["classes"], [b], device=device)
    kd = spec["kd"]
    net.train()

    def step(paths):
        student, board = paths
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.float16, enabled=amp):
            logits = net(x, student)
            loss = F.cross_entropy(logits, y)
            if kd:
                with torch.no_grad():
                    t = net(x, board)
                soft = -(F.softmax(t.float(), 1) * F.log_softmax(logits.float(), 1)).sum(1).mean()
                loss = (soft + loss) / 2
        loss.backward()
        opt.step()
        return loss

    serve(step, spec["paths"], spec["warmup"], device, fmt == torch.channels_last, sum(p.numel() for p in net.parameters()))


if __name__ == "__main__":
    main()
