"""``edgernn export``: a trained Keras model -> a bundle directory a device can run and verify.

Two steps: prepare (the model read once, inspected, the device model and its calibration samples built), then
write (every variant converted into a temporary sibling directory, read back through the runtime's own reader,
renamed into place atomically by ``edgernn.runtime.atomic``). An interrupted export never leaves a partial bundle
under the final name, and a lock keeps two exports apart. The gate after it (verify, ``verify.json``) is
composed above both, in ``edgernn.export`` (the package root's function): export never imports verify.
"""

from __future__ import annotations

import datetime
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgernn.runtime import locking
from edgernn.exporting import calibration, interval_widths, variant
from edgernn.exporting.model_columns import own_model_columns, with_ranges
from edgernn.exporting.inspect import inspect_model
from edgernn.exporting.step_model import device_model_and_samples, write_saved_model
from edgernn.exporting.target import check_target
from edgernn.training.modeling import load_model_bytes, read_model_file
from edgernn.training.reference import float_reference, replay
from edgernn.runtime.atomic import fsync_tree, remove_stale, replace_directory, temp_dir_beside
from edgernn.runtime.bundle import Bundle
from edgernn.errors import BundleError, ExportError
from edgernn.runtime.manifest import FILE_ROLES, CalibrationInfo, FileEntry, Manifest
from edgernn.runtime.file_digest import sha256_file
from edgernn.runtime.manifest_reader import write_manifest
from edgernn.runtime.options import INT8_WEIGHTS
from edgernn.runtime.preprocessing import Preprocessing
from edgernn.runtime.variants import parse_variants, variant as variant_spec
from edgernn.version import __version__

REFERENCE_STEPS = 4000  # a few thousand held-out steps: about 32 KB
MAX_HEADROOM = 10.0


@dataclass
class ExportResult:
    bundle: Path
    manifest: Manifest
    seconds: float
    verify: object = None  # the gate's VerifyResult (``edgernn.export(verify=True)``), or None
    verify_skipped: str | None = None  # why the gate did not run (no held-out data recorded with the model)


@dataclass
class _Prepared:
    model_bytes: bytes
    model: object
    metadata: object
    preprocessing: Preprocessing
    inspected: object
    z: np.ndarray
    raw_calibration: np.ndarray
    device_model: object
    samples: list
    columns: object = None  # the model's Columns (a named model's with calibrated ranges)
    headroom: float = 0.0  # the integer variants' input range widened by this share of its span, each side


def _log(message: str, quiet: bool) -> None:
    if not quiet:
        print(message, file=sys.stderr, flush=True)


def export_bundle(
    model_path: str | os.PathLike,
    out: str | os.PathLike,
    *,
    variants=None,
    calibration_data=None,
    calibration_steps: int = calibration.DEFAULT_STEPS,
    force: bool = False,
    int8_weights: str = "per-channel",
    quiet: bool = False,
    columns=None,
    targets=None,
    headroom: float = 0.0,
) -> ExportResult:
    """Export ``model_path`` (``.keras``) to the bundle directory ``out`` (no gate: ``edgernn.export`` adds it).

    Args:
        variants: ``"all"``/None or names from ``edgernn.runtime.variants.ALL_VARIANTS`` (list or comma text).
        calibration_data: None (the training and validation splits stored with the model), ``sine``, ``counting``, a
            ``.csv``/``.npy`` path, or an array of raw values.
        calibration_steps: how many calibration samples to take, spread over the whole calibration series.
        force: replace an existing ``out`` (atomically); only an edgernn bundle is ever replaced.
        int8_weights: ``per-channel`` (the converter's default) or ``per-tensor`` scales for tflite-int8's
            weights; per-tensor runs on tflite-runtime 2.14's optimized aarch64 kernels (see ``tflite.configure``).
        headroom: widen the full-integer variants' calibrated input range by this share of its span on each
            side (e.g. 0.25), for data a little outside the training range; costs input resolution.
        columns, targets: for a model edgernn did not train that takes several features or has several outputs:
            the columns of ``calibration_data`` feeding it, in order, and what its outputs predict (names, a list
            or comma text; see ``edgernn.exporting.model_columns.own_model_columns``).

    Raises:
        ExportError, ModelError, BundleError: one line each.
    """
    started = time.perf_counter()
    out = Path(out)
    names = parse_variants(variants)
    if int8_weights not in INT8_WEIGHTS:
        raise ExportError(f"int8_weights must be one of {', '.join(INT8_WEIGHTS)}, got {int8_weights!r}")
    if not (isinstance(headroom, (int, float)) and 0 <= headroom <= MAX_HEADROOM):
        raise ExportError(f"headroom must be a share of the calibrated span from 0 to {MAX_HEADROOM:g}, got {headroom!r}")
    check_target(out, force)
    try:
        lock = locking.acquire(out, "bundle")
    except OSError as exc:  # the parent refuses even a lock file (e.g. /proc), whatever os.access said
        raise ExportError(f"cannot write to {out.parent}: {exc.strerror or exc}") from None
    try:
        check_target(out, force)  # again under the lock: another export may have finished meanwhile
        prepared = _prepare(model_path, calibration_data, calibration_steps, columns, targets, headroom)
        _log(f"exporting {Path(model_path).name}: {prepared.inspected.info.mode.value} "
             f"{'+'.join(l.cell for l in prepared.inspected.info.layers)} "
             f"({', '.join(str(l.units) for l in prepared.inspected.info.layers)} units), {len(names)} variants, "
             f"calibration on {len(prepared.samples)} real samples", quiet)
        manifest = _write(prepared, out, names, calibration_data, force, int8_weights, quiet)
    finally:
        locking.release(out, lock)
    return ExportResult(out, manifest, time.perf_counter() - started)


def _prepare(model_path, calibration_data, calibration_steps: int, names=None, targets=None,
             headroom: float = 0.0) -> _Prepared:
    """Read the model once (these bytes are the ones stored), inspect it, build the device model and samples."""
    model_bytes = read_model_file(model_path)
    model, metadata = load_model_bytes(model_bytes, Path(model_path).name)
    preprocessing = metadata.preprocessing if metadata else Preprocessing()
    if metadata is not None and (names is not None or targets is not None):
        raise ExportError("--columns/--targets describe a model edgernn did not train; this one carries its "
                          "columns (drop them)")
    inspected = inspect_model(model, window_hint=None, lag=metadata.columns.lag if metadata else 0)
    if metadata is not None:
        columns = metadata.columns
    else:
        columns = own_model_columns(inspected.features, inspected.outputs, names, targets)
    if (len(columns.inputs), len(columns.outputs)) != (inspected.features, inspected.outputs):
        raise ExportError(f"the model takes {inspected.features} feature(s) and has {inspected.outputs} output(s), "
                          f"but its columns describe {len(columns.inputs)} and {len(columns.outputs)}")
    fallback = metadata.fitting_values if metadata else None
    z, raw = calibration.calibration_inputs(calibration_data, columns, calibration_steps, fallback)
    if columns.named:  # the calibrated input ranges, written with the columns (a plain manifest has input_range)
        columns = with_ranges(columns, z)
    device_model, samples = device_model_and_samples(inspected, z, calibration_steps)
    samples = calibration.with_headroom(samples, z, headroom)
    return _Prepared(model_bytes, model, metadata, preprocessing, inspected, z, raw, device_model, samples, columns,
                     headroom)


def _write(prepared: _Prepared, out: Path, names, calibration_data, force: bool, int8_weights: str,
           quiet: bool) -> Manifest:
    """Every file into a staging sibling, read back, renamed into place; returns the manifest written."""
    remove_stale(out)
    try:
        staging = temp_dir_beside(out)
    except OSError as exc:
        raise ExportError(f"cannot write to {out.parent}: {exc.strerror or exc}") from None
    try:
        (staging / FILE_ROLES["reference"]).write_bytes(prepared.model_bytes)  # the very bytes loaded
        np.savez(staging / FILE_ROLES["weights"], **prepared.inspected.weights)
        np.savez(staging / FILE_ROLES["calibration"], inputs=prepared.z)
        entries = _convert_all(prepared, staging, names, int8_weights, quiet)
        z = prepared.z
        manifest = Manifest(
            model=prepared.inspected.info,
            preprocessing=prepared.preprocessing,
            variants=entries,
            files={role: FileEntry(FILE_ROLES[role], sha256_file(staging / FILE_ROLES[role]))
                   for role in ("reference", "weights", "calibration")},
            calibration=CalibrationInfo(_describe(calibration_data), int(z.shape[0]), len(prepared.samples)),
            input_range=[float(z.min()), float(z.max())],
            edgernn_version=__version__,
            created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            model_sha256=sha256_file(staging / FILE_ROLES["reference"]),
            columns=prepared.columns,
        )
        manifest.files["reference_data"] = _write_reference(staging, prepared)
        write_manifest(manifest, staging)
        _check_readable(staging)
        _set_intervals(staging, manifest, prepared, calibration_data, quiet)
        fsync_tree(staging)
        try:
            replace_directory(staging, out, force)
        except FileExistsError:
            raise ExportError(f"{out} appeared while exporting; not replaced (use --force to replace a "
                              "bundle)") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest


def _convert_all(prepared: _Prepared, staging: Path, names, int8_weights: str, quiet: bool) -> dict:
    """Each variant's file into ``staging``; returns their manifest entries."""
    entries = {}
    with tempfile.TemporaryDirectory() as scratch:
        source = variant.Source(prepared.inspected, prepared.device_model,
                                write_saved_model(prepared.device_model, Path(scratch) / "saved_model"),
                                prepared.samples, prepared.z, int8_weights, headroom=prepared.headroom)
        for name in names:
            started = time.perf_counter()
            spec = variant_spec(name)
            content, entries[name] = variant.convert(spec, source)
            (staging / spec.file_name).write_bytes(content)
            _log(f"  {name:<16}{len(content) / 1024:7.1f} KB {time.perf_counter() - started:6.1f} s", quiet)
    return entries


def _write_reference(staging: Path, prepared: _Prepared) -> FileEntry:
    """Record held-out inputs and the float model's outputs on them, so a device can verify without TF."""
    held_out = prepared.metadata.test_values if prepared.metadata else None
    source = "the held-out test split" if held_out is not None else "the calibration data"
    raw = held_out if held_out is not None else np.asarray(prepared.raw_calibration, dtype=np.float64)
    columns = prepared.columns
    replayed, how = replay(raw, REFERENCE_STEPS, [c.difference for c in columns.inputs], columns.lag)
    source += f", {how}" if how else ""
    values = replayed.astype(np.float32)  # what a device feeds: float32 values
    outputs = float_reference(prepared.model, values.astype(np.float64), columns,
                              prepared.inspected.info.raw_window)
    file = FILE_ROLES["reference_data"]
    np.savez(staging / file, inputs=values, outputs=outputs.astype(np.float32))
    test = None
    if held_out is not None:  # prediction k targets value k + 1: the first pass's test targets, never the context
        test = [max(0, prepared.metadata.data.test_context - 1), min(held_out.shape[0], values.shape[0]) - 1]
    return FileEntry(file, sha256_file(staging / file), int(values.shape[0]), source, test)


def _set_intervals(staging: Path, manifest: Manifest, prepared: _Prepared, calibration_data, quiet: bool) -> None:
    """Each variant run on the held-out data, its interval half-widths into the manifest (rewritten, read back)."""
    if not prepared.columns.univariate:
        _log("  no intervals: a multivariate model's intervals are not calibrated yet", quiet)
        return
    data = interval_widths.held_out(prepared.metadata, calibration_data, prepared.raw_calibration)
    if data is None:
        _log("  no intervals: the model records no validation split (give --calibration-data held out from "
             "training)", quiet)
        return
    for note in interval_widths.calibrate(staging, manifest, data):
        _log(f"  {note}", quiet)
    write_manifest(manifest, staging)
    _check_readable(staging)


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
        return "training and validation data"
    if isinstance(source, np.ndarray):
        return "array"
    return str(source)
