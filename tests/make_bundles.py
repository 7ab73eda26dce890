"""Train tiny models and export the bundles the runtime tests use.

Run by the full environment (``python tests/make_bundles.py DIR``) so that runtime-only environments
(``pip install .[litert]``, ``.[tflite]``, no TensorFlow) can test against real exported bundles.
"""

from __future__ import annotations

import sys
from pathlib import Path

# name: (train options, variants)
SPECS = {
    "sine": (dict(data="sine", units=16, epochs=20, lr=0.005), "all"),
    "lstm": (dict(data="sine", cell="lstm", units=8, layers=2, epochs=3, lr=0.005),
             "tflite-float32,tflite-int8,tflite-int16x8,onnx-float32"),
    "gru": (dict(data="sine", cell="gru", units=8, epochs=3, lr=0.005),
            "tflite-float32,tflite-int8,onnx-float32"),
    "window": (dict(data="counting", window=10, units=8, epochs=5), "tflite-float32,tflite-int8,onnx-float32"),
}


def make_bundles(root: Path) -> dict[str, Path]:
    import edgernn

    root.mkdir(parents=True, exist_ok=True)
    bundles = {}
    for name, (options, variants) in SPECS.items():
        bundle = root / name
        if not (bundle / "manifest.json").exists():
            model = edgernn.train(out=root / f"{name}.keras", seed=0, quiet=True, **options)
            edgernn.export(model.model_path, bundle, variants=variants, quiet=True)
        bundles[name] = bundle
    return bundles


if __name__ == "__main__":
    for name, path in make_bundles(Path(sys.argv[1])).items():
        print(name, path)
