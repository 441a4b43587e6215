#!/usr/bin/env python3
"""The public teacher corpus of `tools/corpus.sh`: CNN classifiers as other exporters and other
opsets write them, assembled only from what the package registries offer.

Writes into OUT (default $DNAS_HOME/corpus), one .onnx per entry plus corpus.json (file,
producer, opset, how it was made, the input shape to check it with):
  <arch>_op{9,11,12,13,17,20}.onnx  torchvision architectures, seeded random weights and BN
                                 statistics, torch.onnx.export (TorchScript exporter)
  <arch>_op9_to{7,8}.onnx, <arch>_op11_to10.onnx, <arch>_op20_to21.onnx
                                 exports converted with onnx.version_converter (legacy
                                 Dropout/BatchNormalization/Clip/Squeeze forms; opset 21)
  <arch>_nhwc_b1.onnx            an NHWC model with a fixed batch of 1 (the TF-converter layout)
  paddle_ppocr_cls.onnx          PaddleOCR's text-direction classifier as Paddle2ONNX wrote it,
                                 shipped inside the rapidocr-onnxruntime wheel (PyPI)
  tf_*.onnx                      Keras applications converted by tf2onnx (tools/corpus_tf.py, run in
                                 its own venv $DNAS_HOME/tf-venv: TensorFlow and torch apart)
--quick: the subset `tools/test.sh` builds for tests/corpus.rs (one model of each kind: legacy
opsets 7 and 10, a Split at opset 9, an NHWC fixed batch, Paddle2ONNX).
Idempotent: existing files are kept.
"""
import argparse, json, os, subprocess, sys, tempfile, zipfile

import onnx
import torch
import torch.nn as nn
import torchvision
from onnx import version_converter

HOME = os.environ.get("DNAS_HOME", os.path.expanduser("~/.cache/dnas"))
ARCHS = ["resnet18", "mobilenet_v2", "squeezenet1_1", "shufflenet_v2_x0_5", "mnasnet0_5"]
OPSETS = [9, 11, 12, 13, 17, 20]  # 20: the TorchScript exporter's last
# (export opset, target) for onnx.version_converter: down to 7, 8, 10 (it has no downward
# adapters from 13 for Relu, Clip, Identity, so each is reached from the nearest export above
# it) and up to 21.
DOWN = [(9, 7), (9, 8), (11, 10), (20, 21)]
RAPIDOCR = "rapidocr-onnxruntime==1.4.4"
TF_PACKAGES = ["tensorflow-cpu==2.21.0", "tf2onnx==1.17.0", "onnx"]
PADDLE_CLS = "rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx"


def seeded(arch):
    torch.manual_seed(0)
    m = getattr(torchvision.models, arch)(weights=None).eval()
    g = torch.Generator().manual_seed(1)
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm2d):
            mod.running_mean.copy_(torch.randn(mod.num_features, generator=g) * 0.1)
            mod.running_var.copy_(torch.rand(mod.num_features, generator=g) * 0.5 + 0.75)
    return m


class Nhwc(nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, x):
        return self.m(x.permute(0, 3, 1, 2))


def export(m, path, opset, shape, dynamic=True):
    x = torch.randn(*shape)
    axes = {"input": {0: "N"}, "logits": {0: "N"}} if dynamic else None
    torch.onnx.export(m, x, path, opset_version=opset, input_names=["input"], output_names=["logits"],
                      dynamic_axes=axes, dynamo=False)


def tf_models(out):
    """The TensorFlow-converter entries (tools/corpus_tf.py in $DNAS_HOME/tf-venv, made on first use)."""
    venv = os.path.join(HOME, "tf-venv")
    py = os.path.join(venv, "bin", "python")
    stamp = os.path.join(venv, "dnas-packages.txt")
    want = "\n".join(TF_PACKAGES)
    if not os.path.exists(stamp) or open(stamp).read() != want:
        print(f"[corpus] creating {venv} ({', '.join(TF_PACKAGES)})", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        subprocess.run([py, "-m", "pip", "install", "-q", *TF_PACKAGES], check=True)
        with open(stamp, "w") as f:
            f.write(want)
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus_tf.py")
    return json.loads(subprocess.run([py, script, out], check=True, stdout=subprocess.PIPE).stdout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=None)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    a.out = a.out or os.path.join(HOME, "corpus-quick" if a.quick else "corpus")
    # --quick: (arch, exports, down-conversions, NHWC variant)
    plan = [(arch, OPSETS, DOWN, True) for arch in ARCHS]
    if a.quick:
        plan = [("squeezenet1_1", [9, 11], [(9, 7), (11, 10)], True), ("shufflenet_v2_x0_5", [9], [], False),
                ("mobilenet_v2", [9], [(9, 7)], False)]
    os.makedirs(a.out, exist_ok=True)
    entries = []

    def add(file, how, shape, **kw):
        m = onnx.load(os.path.join(a.out, file), load_external_data=False)
        opset = next(o.version for o in m.opset_import if o.domain in ("", "ai.onnx"))
        entries.append({"file": file, "producer": f"{m.producer_name} {m.producer_version}".strip(), "opset": opset,
                        "how": how, "input_shape": shape, **kw})

    for arch, opsets, down, nhwc in plan:
        m = seeded(arch)
        for op in opsets:
            f = f"{arch}_op{op}.onnx"
            if not os.path.exists(os.path.join(a.out, f)):
                print(f"[corpus] {f}", file=sys.stderr)
                export(m, os.path.join(a.out, f), op, (1, 3, 224, 224))
            add(f, f"torchvision {arch}, torch.onnx.export opset {op}", [1, 3, 224, 224])
        for src, op in down:
            f = f"{arch}_op{src}_to{op}.onnx"
            if not os.path.exists(os.path.join(a.out, f)):
                print(f"[corpus] {f}", file=sys.stderr)
                base = onnx.load(os.path.join(a.out, f"{arch}_op{src}.onnx"))
                try:
                    onnx.save(version_converter.convert_version(base, op), os.path.join(a.out, f))
                except Exception as e:  # the converter has no adapter for some op at this opset
                    print(f"[corpus]   onnx.version_converter cannot take {arch} to opset {op}: {e}", file=sys.stderr)
                    continue
            add(f, f"torchvision {arch} opset {src}, onnx.version_converter to {op}", [1, 3, 224, 224])
        if not nhwc:
            continue
        f = f"{arch}_nhwc_b1.onnx"
        if not os.path.exists(os.path.join(a.out, f)):
            print(f"[corpus] {f}", file=sys.stderr)
            export(Nhwc(m), os.path.join(a.out, f), 13, (1, 224, 224, 3), dynamic=False)
        add(f, f"torchvision {arch} behind an NHWC input, fixed batch 1, opset 13", [1, 224, 224, 3])

    f = "paddle_ppocr_cls.onnx"
    if not os.path.exists(os.path.join(a.out, f)):
        with tempfile.TemporaryDirectory() as tmp:
            print(f"[corpus] {f} from the {RAPIDOCR} wheel", file=sys.stderr)
            subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", tmp, RAPIDOCR], check=True)
            whl = next(p for p in os.listdir(tmp) if p.endswith(".whl"))
            with zipfile.ZipFile(os.path.join(tmp, whl)) as z, open(os.path.join(a.out, f), "wb") as o:
                o.write(z.read(PADDLE_CLS))
    add(f, f"PaddleOCR text-direction classifier (MobileNetV3), from the {RAPIDOCR} wheel", [1, 3, 48, 192],
        mean=[0.5, 0.5, 0.5], std=[0.5, 0.5, 0.5])
    if not a.quick:
        entries.extend(tf_models(a.out))
    with open(os.path.join(a.out, "corpus.json"), "w") as o:
        json.dump(entries, o, indent=1)
    print(f"[corpus] {len(entries)} models in {a.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
