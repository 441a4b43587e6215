#!/usr/bin/env python3
"""TensorFlow-converter members of the teacher corpus (run by tools/corpus.py in its own venv,
$DNAS_HOME/tf-venv: tensorflow-cpu and tf2onnx from PyPI, kept apart from the project's torch venv).

Keras applications with seeded weights and random BatchNorm statistics (no download: weights=None),
logits out (classifier_activation=None), converted by tf2onnx (`from_keras`): NHWC inputs as
TensorFlow has them, some with a dynamic batch and some with the fixed batch 1 of a typical
deployment export. Keras's ImageNet models take pixels in [-1, 1] (MobileNets) or [0, 255]
(EfficientNet, with its own Rescaling/Normalization layers inside), hence the mean/std per entry.

  corpus_tf.py OUT   writes OUT/tf_*.onnx and prints the corpus entries as JSON on stdout
Idempotent: existing files are kept.
"""
import json, os, sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np
import onnx
import tensorflow as tf
import tf2onnx

# (file, keras application, its arguments, opset, batch (None = dynamic), mean, std)
MODELS = [
    ("tf_mobilenet_v2_op11.onnx", "MobileNetV2", {"alpha": 0.5}, 11, None, [0.5] * 3, [0.5] * 3),
    ("tf_mobilenet_v2_op13_b1.onnx", "MobileNetV2", {"alpha": 0.5}, 13, 1, [0.5] * 3, [0.5] * 3),
    ("tf_mobilenet_v3_small_op17.onnx", "MobileNetV3Small", {"minimalistic": False}, 17, None, [0.0] * 3, [1 / 255] * 3),
    ("tf_efficientnet_b0_op13_b1.onnx", "EfficientNetB0", {}, 13, 1, [0.0] * 3, [1 / 255] * 3),
    ("tf_densenet121_op15.onnx", "DenseNet121", {}, 15, None, [0.5] * 3, [0.5] * 3),
]


def seeded(name, kwargs):
    tf.keras.utils.set_random_seed(0)
    m = getattr(tf.keras.applications, name)(input_shape=(224, 224, 3), weights=None, classifier_activation=None, **kwargs)
    rng = np.random.default_rng(1)
    for layer in m.layers:
        if isinstance(layer, tf.keras.layers.BatchNormalization):
            g, b, mean, var = layer.get_weights()
            layer.set_weights([
                rng.uniform(0.5, 1.5, g.shape).astype(np.float32),
                rng.normal(0, 0.1, b.shape).astype(np.float32),
                rng.normal(0, 0.1, mean.shape).astype(np.float32),
                rng.uniform(0.75, 1.25, var.shape).astype(np.float32),
            ])
    return m


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    entries = []
    for file, app, kwargs, opset, batch, mean, std in MODELS:
        path = os.path.join(out, file)
        if not os.path.exists(path):
            print(f"[corpus] {file} (keras {app} {kwargs}, tf2onnx opset {opset})", file=sys.stderr)
            m = seeded(app, kwargs)
            spec = (tf.TensorSpec((batch, 224, 224, 3), tf.float32, name="input"),)
            tmp = path + ".tmp"
            # from_keras freezes every variable (from_function leaves the Normalization layer's
            # mean and variance as extra graph inputs).
            tf2onnx.convert.from_keras(m, input_signature=spec, opset=opset, output_path=tmp)
            os.replace(tmp, path)
        mo = onnx.load(path, load_external_data=False)
        entries.append({
            "file": file,
            "producer": f"{mo.producer_name} {mo.producer_version}".replace(" None", "").strip(),
            "opset": next(o.version for o in mo.opset_import if o.domain in ("", "ai.onnx")),
            "how": f"keras.applications.{app} {kwargs} (TensorFlow {tf.__version__}), tf2onnx {tf2onnx.__version__}, "
                   + ("fixed batch 1" if batch else "dynamic batch") + ", NHWC",
            "input_shape": [batch or 1, 224, 224, 3],
            "mean": mean,
            "std": std,
        })
    json.dump(entries, sys.stdout)


if __name__ == "__main__":
    main()
