"""``edgernn export``: a trained Keras model -> a bundle directory a device can run and verify.

Writing is atomic: everything goes into a temporary sibling directory, which is renamed into place at the end
(with ``force``, swapped with the old bundle in one ``renameat2(RENAME_EXCHANGE)`` where Linux offers it), so an
interrupted export never leaves a partial bundle under the final name.
"""

from __future__ import annotations

import ctypes
import datetime
import errno
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgernn import __version__
from edgernn.runtime.atomic import remove_stale, temp_dir_beside
from edgernn.errors import ExportError
from edgernn import locking
from edgernn.export import calibration, onnx_export, tflite
from edgernn.export.inspect import inspect_model
from edgernn.export.step_model import device_model_and_samples, write_saved_model
from edgernn.modeling import load_model_bytes, read_model_file
from edgernn.runtime import safe_json
from edgernn.runtime.bundle import Bundle
from edgernn.runtime.errors import BundleError
from edgernn.runtime.manifest import (
    FILE_ROLES,
    INT8_WEIGHTS,
    MANIFEST_NAME,
    MAX_MANIFEST_BYTES,
    CalibrationInfo,
    FileEntry,
    Manifest,
    Variant,
    VariantEntry,
    parse_variants,
    read_inside,
    sha256_file,
    write_manifest,
)
from edgernn.runtime.preprocessing import Preprocessing
from edgernn.tf_import import silenced_stderr

REFERENCE_STEPS = 4000  # a few thousand held-out steps: about 32 KB


@dataclass
class ExportResult:
    bundle: Path
    manifest: Manifest
    seconds: float


def _log(message: str, quiet: bool) -> None:
    if not quiet:
        print(message, file=sys.stderr, flush=True)


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in ("tensorflow", "keras", "tf2onnx", "onnx", "onnxruntime"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            pass
    return found


def export(
    model_path: str | os.PathLike,
    out: str | os.PathLike,
    *,
    variants=None,
    calibration_data=None,
    calibration_steps: int = calibration.DEFAULT_STEPS,
    force: bool = False,
    int8_weights: str = "per-channel",
    quiet: bool = False,
) -> ExportResult:
    """Export ``model_path`` (``.keras``) to the bundle directory ``out``.

    Args:
        variants: ``"all"``/None or names from ``edgernn.runtime.manifest.ALL_VARIANTS`` (list or comma text).
        calibration_data: None (the training data stored with the model), ``sine``, ``counting``, a
            ``.csv``/``.npy`` path, or an array of raw values.
        calibration_steps: how many calibration steps to run the float model over.
        force: replace an existing ``out`` (atomically).
        int8_weights: ``per-channel`` (the converter's default) or ``per-tensor`` scales for tflite-int8's
            weights; per-tensor runs on tflite-runtime 2.14's optimized aarch64 kernels (see ``tflite.configure``).

    Raises:
        ExportError, ModelError, BundleError: one line each.
    """
    started = time.perf_counter()
    out = Path(out)
    names = parse_variants(variants)
    if int8_weights not in INT8_WEIGHTS:
        raise ExportError(f"int8_weights must be one of {', '.join(INT8_WEIGHTS)}, got {int8_weights!r}")
    check_target(out, force)
    try:
        lock = locking.acquire(out, "bundle")
    except OSError as exc:  # the parent refuses even a lock file (e.g. /proc), whatever os.access said
        raise ExportError(f"cannot write to {out.parent}: {exc.strerror or exc}") from None
    try:
        check_target(out, force)  # again under the lock: another export may have finished meanwhile
        return _export(model_path, out, names, calibration_data, calibration_steps, force, int8_weights, quiet,
                       started)
    finally:
        locking.release(out, lock)


def check_target(out: Path, force: bool) -> None:
    """``out`` must be a new directory in a writable parent, or (with ``force``) an edgernn bundle to replace.

    Raises:
        ExportError: anything else: ``.``/``/`` or an ancestor of the working directory, a file, a symlink, a
            directory that is not a bundle (``--force`` never deletes a user's directory).
    """
    resolved = out.resolve()
    if out.name in ("", ".", "..") or resolved == resolved.parent or resolved in (Path.cwd(), *Path.cwd().parents):
        raise ExportError(f"--out {out} is not a place for a new bundle: name a directory to create")
    if out.is_symlink():
        raise ExportError(f"--out {out} is a symlink; give the directory it points to")
    if out.exists():
        if not force:
            raise ExportError(f"{out} already exists; use --force to replace it")
        if not out.is_dir():
            raise ExportError(f"{out} exists and is not a directory; --force replaces only an edgernn bundle")
        if not is_bundle(out):
            raise ExportError(f"{out} is not an edgernn bundle (no readable manifest.json); --force replaces only "
                              "a bundle, never another directory: remove it yourself or choose another --out")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise ExportError(f"output directory's parent {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise ExportError(f"cannot write to {parent}: permission denied")


def is_bundle(directory: Path) -> bool:
    """Whether ``directory`` holds a manifest that parses as an edgernn manifest (any schema version).

    Read like any bundle file (no symlink, no FIFO, bounded), so ``--force`` never waits on or follows one."""
    try:
        data = safe_json.loads(read_inside(directory, MANIFEST_NAME, MAX_MANIFEST_BYTES))
    except ValueError:  # BundleError included
        return False
    return isinstance(data, dict) and isinstance(data.get("schema_version"), int) and isinstance(
        data.get("variants"), dict)


def _export(model_path, out: Path, names, calibration_data, calibration_steps, force, int8_weights, quiet,
            started) -> ExportResult:
    model_bytes = read_model_file(model_path)
    model, metadata = load_model_bytes(model_bytes, Path(model_path).name)
    preprocessing = metadata.preprocessing if metadata else Preprocessing()
    inspected = inspect_model(model, window_hint=None, lag=preprocessing.lag)
    info = inspected.info
    fallback = metadata.train_values if metadata else None
    z, raw_calibration = calibration.calibration_inputs(calibration_data, preprocessing, calibration_steps, fallback)
    device_model, samples = device_model_and_samples(inspected, z)
    _log(f"exporting {Path(model_path).name}: {info.mode} {'+'.join(l.cell for l in info.layers)} "
         f"({', '.join(str(l.units) for l in info.layers)} units), {len(names)} variants, "
         f"calibration on {len(samples)} real samples", quiet)

    remove_stale(out)
    try:
        staging = temp_dir_beside(out)
    except OSError as exc:
        raise ExportError(f"cannot write to {out.parent}: {exc.strerror or exc}") from None
    try:
        (staging / FILE_ROLES["reference"]).write_bytes(model_bytes)  # the very bytes loaded above
        np.savez(staging / FILE_ROLES["weights"], **inspected.weights)
        np.savez(staging / FILE_ROLES["calibration"], inputs=z)
        entries = {}
        with tempfile.TemporaryDirectory() as scratch:
            saved_model = write_saved_model(device_model, Path(scratch) / "saved_model")
            onnx_float = None
            for name in names:
                variant = Variant(name)
                t0 = time.perf_counter()
                notes = ""
                if variant.format == "tflite":
                    with silenced_stderr():
                        content = tflite.convert(saved_model, variant, samples, int8_weights)
                        inputs, outputs = tflite.tensor_specs(content)
                    converter = {k: v for k, v in _versions().items() if k in ("tensorflow", "keras")}
                    if variant is Variant.TFLITE_INT8:
                        converter["int8_weights"] = int8_weights
                        if info.state_inputs():
                            content, inputs, outputs, notes = _best_state_calibration(
                                saved_model, samples, info, inspected.weights, z, (content, inputs, outputs),
                                int8_weights)
                else:
                    with silenced_stderr():
                        onnx_float = onnx_float or onnx_export.to_onnx(device_model)
                        content = onnx_float if variant is Variant.ONNX_FLOAT32 else onnx_export.quantize_int8(onnx_float)
                    onnx_export.check_self_contained(content, name)
                    inputs, outputs = onnx_export.tensor_specs(content)
                    converter = {**{k: v for k, v in _versions().items() if k != "keras"}, "opset": onnx_export.OPSET}
                    if variant is Variant.ONNX_INT8:
                        converter["quantization"] = "onnxruntime dynamic (uint8 weights, U8U8)"
                path = staging / variant.file_name
                path.write_bytes(content)
                entries[name] = VariantEntry(
                    name, variant.file_name, variant.format, sha256_file(path), len(content), inputs, outputs,
                    info.state_pairs(), converter, notes,
                    _input_limits(next(t for t in inputs if t.name == "x")))
                _log(f"  {name:<16}{len(content) / 1024:7.1f} KB {time.perf_counter() - t0:6.1f} s", quiet)
        manifest = Manifest(
            model=info,
            preprocessing=preprocessing,
            variants=entries,
            files={role: FileEntry(FILE_ROLES[role], sha256_file(staging / FILE_ROLES[role]))
                   for role in ("reference", "weights", "calibration")},
            calibration=CalibrationInfo(_describe(calibration_data), int(z.size), len(samples)),
            input_range=[float(z.min()), float(z.max())],
            edgernn_version=__version__,
            created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            model_sha256=sha256_file(staging / FILE_ROLES["reference"]),
        )
        manifest.files["reference_data"] = _write_reference(staging, model, metadata, raw_calibration)
        write_manifest(manifest, staging)
        _check_readable(staging)
        _fsync_tree(staging)
        _move_into_place(staging, out, force)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return ExportResult(out, manifest, time.perf_counter() - started)


def _best_state_calibration(saved_model, samples, info, weights, z, real, int8_weights):
    """Build int8 with state inputs calibrated over the activation's full range too; keep the better one."""
    from edgernn.export import state_ranges
    from edgernn.runtime.backends import choose

    full_content = None
    with silenced_stderr():
        full_content = tflite.convert(saved_model, Variant.TFLITE_INT8, state_ranges.full_range_samples(samples, info),
                                      int8_weights)
        full = (full_content, *tflite.tensor_specs(full_content))
    backend_class = choose("auto", "tflite", False)
    evaluation = state_ranges.evaluation_inputs(z)
    errors = []
    for content, inputs, outputs in (real, full):
        entry = VariantEntry("tflite-int8", "", "tflite", "", len(content), inputs, outputs, info.state_pairs())
        errors.append(state_ranges.stream_nrmse(backend_class(content, entry, 1), entry, info, weights, evaluation))
    keep = 0 if errors[0] <= errors[1] else 1
    label = ("real states", "full activation range")
    notes = (f"state inputs calibrated on {label[keep]}: NRMSE vs float over {evaluation.size} steps "
             f"{errors[0]:.3f}% (real states) vs {errors[1]:.3f}% (full activation range)")
    return (*(real, full)[keep], notes)


def _input_limits(spec) -> list[float] | None:
    """What an integer input tensor can represent, in model-input units (None for float inputs)."""
    if spec.scale is None:
        return None
    info = np.iinfo(np.dtype(spec.dtype))
    return [spec.scale * (int(info.min) - spec.zero_point), spec.scale * (int(info.max) - spec.zero_point)]


def _write_reference(staging: Path, model, metadata, raw_calibration: np.ndarray) -> FileEntry:
    """Record held-out inputs and the float model's outputs on them, so a device can verify without TF."""
    from edgernn.verification import float_reference, repeat_to

    held_out = metadata.test_values if metadata else None
    source = "the held-out test split" if held_out is not None else "the calibration data"
    raw = held_out if held_out is not None else np.asarray(raw_calibration, dtype=np.float64)
    values = repeat_to(raw, REFERENCE_STEPS).astype(np.float32)  # what a device feeds: float32 values
    outputs = float_reference(model, metadata, values.astype(np.float64))
    file = FILE_ROLES["reference_data"]
    np.savez(staging / file, inputs=values, outputs=outputs.astype(np.float32))
    return FileEntry(file, sha256_file(staging / file), int(values.size), source)


def _check_readable(staging: Path) -> None:
    """Read the staged bundle back the way verify and a device do (the manifest through its one parser, every
    file through the one hash-checked reader, every ``.npz`` checked), so export never leaves a bundle they refuse."""
    try:
        bundle = Bundle.open(staging)
        for name in [*bundle.manifest.variants, *bundle.manifest.files]:
            bundle.read(name)
        bundle.weights(), bundle.reference_data(), bundle.calibration_inputs()
    except BundleError as exc:
        raise ExportError(f"the bundle written does not read back: {exc}") from None


def _describe(source) -> str:
    if source is None:
        return "training data"
    if isinstance(source, np.ndarray):
        return "array"
    return str(source)


def _fsync_tree(directory: Path) -> None:
    for path in directory.iterdir():
        with open(path, "rb") as handle:
            os.fsync(handle.fileno())
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _renameat2(a: Path, b: Path, flags: int) -> int | None:
    """Linux renameat2: 0 on success, an errno on failure, None where the system lacks it."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None
    at_fdcwd = -100
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), flags) == 0:
        return 0
    code = ctypes.get_errno()
    return None if code in (errno.ENOSYS, errno.EINVAL) else code


def _move_into_place(staging: Path, out: Path, force: bool) -> None:
    """Rename the staged bundle to ``out``: never over anything without ``force`` (RENAME_NOREPLACE), and with
    it as one swap with the old bundle (RENAME_EXCHANGE)."""
    rename_noreplace, rename_exchange = 1, 2
    if not out.exists() or not force:
        code = _renameat2(staging, out, rename_noreplace)
        if code is None:  # no renameat2 here: a plain rename, after the checks made under the lock
            if out.exists():
                code = errno.EEXIST
            else:
                os.rename(staging, out)
                return
        if code == errno.EEXIST:
            raise ExportError(f"{out} appeared while exporting; not replaced (use --force to replace a bundle)")
        if code:
            raise OSError(code, os.strerror(code), str(out))
        return
    if _renameat2(staging, out, rename_exchange) == 0:  # staging now holds the old bundle
        shutil.rmtree(staging, ignore_errors=True)
        return
    old = out.with_name(f".{out.name}.old-{os.getpid()}")
    os.rename(out, old)
    os.rename(staging, out)
    shutil.rmtree(old, ignore_errors=True)
