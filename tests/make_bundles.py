"""Train tiny models and export the bundles the runtime tests use.

Run by the full environment (``python tests/make_bundles.py DIR``) so that runtime-only environments
(``pip install .[litert]``, ``.[tflite]``, no TensorFlow) can test against real exported bundles.
``python tests/make_bundles.py --committed`` rewrites ``tests/data/bundles`` (the 16-unit sine and the two-column
``multi``, with intervals), so ``pytest tests/runtime`` on a device with nothing else tests real models.
``tests/data/old-bundles`` keeps bundles written by earlier edgernn releases: every later edgernn must still read
them and give the same predictions.

Each bundle is trained and exported through ``built_once`` (the test suite's cache of what it built): with
``EDGERNN_TEST_BUILT=CACHE`` set for both, as CI does, the bundles the suite already made are copied from there,
not trained and exported a second time.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

# name: (train options, variants[, export options]); the small one-column models keep the network alone
# (baseline="none"): these bundles test the runtime on each cell, and a tiny model that loses to persistence would
# otherwise be blended into it (tests/test_training.py tests that)
SPECS = {
    "sine": (dict(data="sine", units=16, epochs=20, lr=0.005), "all"),  # beats persistence: the tests' sine_model
    "lstm": (dict(baseline="none", data="sine", cell="lstm", units=8, layers=2, epochs=20, lr=0.01),
             "tflite-float32,tflite-int8,tflite-int16x8,onnx-float32,onnx-int8"),
    # the same LSTM with per-tensor int8 weights: what tflite-runtime 2.14's aarch64 optimized kernels can run
    "lstm-per-tensor": (dict(baseline="none", data="sine", cell="lstm", units=8, layers=2, epochs=20, lr=0.01),
                        "tflite-float32,tflite-int8", dict(int8_weights="per-tensor")),
    "gru": (dict(baseline="none", data="sine", cell="gru", units=8, epochs=3, lr=0.005),
            "tflite-float32,tflite-int8,tflite-int16x8,onnx-float32,onnx-int8"),
    "window": (dict(baseline="none", data="sine", window=10, units=8, epochs=5, lr=0.005),
               "tflite-float32,tflite-int8,onnx-float32"),
    # a ramp under a sine: trained on first differences, so streams carry their last raw value in the state
    "trend": (dict(baseline="none", data="trend.npy", units=8, epochs=5, lr=0.005), "tflite-float32,tflite-int8"),
    # multivariate: two columns in (the follower repeats the driver 3 steps late), the follower 1 and 2 steps ahead
    "multi": (dict(data="lagged", columns="all", targets=["follower"], horizon=2, units=16, epochs=20, lr=0.005),
              "tflite-float32,tflite-int8,tflite-int16x8,onnx-float32,onnx-int8"),
    # the default size (50 units): what users run, every variant (below 1,024 weights per tensor the converter
    # leaves dynamic-range weights float, so only these show what tflite-runtime and TFLM make of int8 weights)
    "sine50": (dict(baseline="none", data="sine", units=50, epochs=15, lr=0.005), "all"),
    "gru50": (dict(baseline="none", data="sine", cell="gru", units=50, epochs=15, lr=0.005), "all"),
    "lstm50": (dict(baseline="none", data="sine", cell="lstm", units=50, epochs=15, lr=0.005), "all"),
}


TEST_BUNDLES = tuple(name for name in SPECS if not name.endswith("50"))  # what the test suite makes for itself
HOST_VERIFY_STEPS = 4000  # the length of the reference stored in each bundle, so both verdicts see the same data


COMMITTED = Path(__file__).resolve().parent / "data" / "bundles"
COMMITTED_NAMES = ("sine", "multi")  # a device with nothing else tests these: intervals and rows included
# a bundle written before intervals (and before multivariate manifests): every later edgernn must still read it
BEFORE_INTERVALS = Path(__file__).resolve().parent / "data" / "old-bundles" / "sine-before-intervals"


def train_options(name: str, root: Path) -> dict:
    """The ``edgernn.train`` options of bundle ``name`` (a data file it needs is written under ``root``)."""
    options = SPECS[name][0]
    if options["data"].endswith(".npy"):
        options = {**options, "data": str(write_trend(root / options["data"]))}
    return {"seed": 0, **options}


def write_trend(path: Path) -> Path:
    import numpy as np

    if not path.exists():  # written aside and renamed: xdist workers may build bundles of it at once
        t = np.arange(2000)
        aside = path.with_name(f".{path.name}.{os.getpid()}.npy")
        np.save(aside, 0.01 * t + np.sin(2 * np.pi * t / 40) + np.random.default_rng(1).normal(0, 0.05, t.size))
        os.replace(aside, path)
    return path


def export_bundle(name: str, model_path: Path, bundle: Path) -> Path:
    """Export bundle ``name`` from its trained model; the gate writes the host's verdicts (float Keras model) into
    verify.json, for the device-side verify to be compared with."""
    import edgernn

    _, variants, *export_options = SPECS[name]
    edgernn.export(model_path, bundle, variants=variants, quiet=True, verify_steps=HOST_VERIFY_STEPS,
                   **(export_options or [{}])[0])
    return bundle


def built_bundle(cache: Path, name: str) -> Path:
    """Bundle ``name`` trained and exported once in ``cache`` (``built_once``), where the suite's bundles are made."""
    sys.path.insert(0, str(Path(__file__).resolve().parent / "runtime"))
    from built_once import build_once, trained_once

    data = build_once(cache, "bundle-data", lambda directory: None)  # where a data file a bundle needs is written
    model = trained_once(cache, **train_options(name, data))
    return build_once(cache, f"bundle-{name}",
                      lambda directory: export_bundle(name, model.model_path, directory / name)) / name


def make_bundles(root: Path, names=tuple(SPECS)) -> dict[str, Path]:
    """The bundles in ``root/NAME``, each built in ``EDGERNN_TEST_BUILT`` (else in ``root/.built``) and copied."""
    import os
    import shutil

    root.mkdir(parents=True, exist_ok=True)
    cache = Path(os.environ.get("EDGERNN_TEST_BUILT") or root / ".built").resolve()
    cache.mkdir(parents=True, exist_ok=True)
    bundles = {}
    for name in names:
        bundle = root / name
        if not (bundle / "manifest.json").exists():
            shutil.rmtree(bundle, ignore_errors=True)
            shutil.copytree(built_bundle(cache, name), bundle)
        bundles[name] = bundle
    write_x86_reference(root / "float32-reference.npz", bundles)
    return bundles


def write_x86_reference(target: Path, bundles: dict[str, Path]) -> None:
    """Float32 predictions of every bundle on this machine (litert, onnxruntime), for other machines to match."""
    import numpy as np

    from edgernn.data.series import sine_series
    from edgernn.runtime import StreamingPredictor

    if target.exists():
        return
    values = sine_series()[:1000]
    arrays = {"values": values}
    for name, bundle in bundles.items():
        manifest = json.loads((bundle / "manifest.json").read_text())
        if "columns" in manifest:
            continue  # a multivariate model reads rows, not the sine
        present = manifest["variants"]
        for variant, backend in (("tflite-float32", "litert"), ("onnx-float32", "onnxruntime")):
            if variant not in present:
                continue
            arrays[f"{name}/{variant}"] = StreamingPredictor.load(bundle, variant, backend=backend).run(values)
    np.savez(target, **arrays)


if __name__ == "__main__":
    if sys.argv[1:] == ["--committed"]:
        import shutil

        shutil.rmtree(COMMITTED, ignore_errors=True)
        made = make_bundles(COMMITTED, names=COMMITTED_NAMES)
        shutil.rmtree(COMMITTED / ".built", ignore_errors=True)  # the trained models (each bundle has its own)
    else:
        made = make_bundles(Path(sys.argv[1]))
    for name, path in made.items():
        print(name, path)
