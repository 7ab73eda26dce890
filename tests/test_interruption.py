"""kill -9 during real `edgernn export` and `edgernn train` runs: never a partial file under the final name."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import edgernn
from edgernn.runtime.file_digest import sha256_file
from edgernn.runtime.manifest_reader import read_manifest


def _bundle_is_whole(bundle) -> str:
    """The manifest reads and every file it names has its recorded hash; returns the manifest's creation time."""
    manifest = read_manifest(bundle)
    for entry in manifest.variants.values():
        assert sha256_file(bundle / entry.file) == entry.sha256
    for entry in manifest.files.values():
        assert sha256_file(bundle / entry.file) == entry.sha256
    return manifest.created + manifest.model_sha256


def _run_until(args, marker_lines: int | None, delay: float | None = None):
    """Start the CLI, SIGKILL it after ``marker_lines`` lines of stderr progress (or ``delay`` s)."""
    process = subprocess.Popen([sys.executable, "-m", "edgernn", *args], stderr=subprocess.PIPE,
                               stdout=subprocess.DEVNULL, text=True)
    if delay is not None:
        time.sleep(delay)
    else:
        seen = 0
        while seen < marker_lines and process.stderr.readline():
            seen += 1
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=60)
    process.stderr.close()


def test_kill_9_during_export_keeps_the_old_bundle_whole(sine_model, tmp_path):
    out = tmp_path / "bundle"
    variants = "tflite-float32,tflite-int8,onnx-float32"
    args = ["export", str(sine_model.model_path), "--out", str(out), "--variants", variants, "--no-verify"]
    # the exports that run to the end run in this process (a subprocess would only import TensorFlow again)
    edgernn.export(sine_model.model_path, out, variants=variants, verify=False, quiet=True)
    original = _bundle_is_whole(out)
    # killed: at start-up, after the first progress line, after one variant, after the last variant
    for lines, delay in ((None, 0.3), (1, None), (2, None), (4, None)):
        _run_until([*args, "--force"], lines, delay)
        assert _bundle_is_whole(out) == original  # the old bundle, untouched
    edgernn.export(sine_model.model_path, out, variants=variants, verify=False, quiet=True, force=True)
    assert _bundle_is_whole(out) != original
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]  # stale staging directories cleaned


def test_kill_9_during_train_leaves_no_half_written_model(tmp_path):
    out = tmp_path / "m.keras"
    args = ["train", "--data", "sine", "--units", "8", "--epochs", "200", "--patience", "0", "--out", str(out)]
    _run_until(args, marker_lines=5)  # data, preprocessing, then a few epochs
    assert not out.exists()
    edgernn.train("sine", out, units=8, epochs=2, quiet=True)
    before = out.read_bytes()
    _run_until([*args, "--force"], marker_lines=5)
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.keras"]
