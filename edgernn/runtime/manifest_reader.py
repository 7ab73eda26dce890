"""Reading ``manifest.json`` from untrusted bytes: bounded strict JSON, then every field checked into the records
of ``edgernn.runtime.manifest`` (``read_manifest``, ``parse_manifest``); the one bounded, symlink-refusing read of
a file inside a bundle (``read_inside``), and the manifest's writer. A bundle that passes is safe to use."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from edgernn.errors import BundleError
from edgernn.runtime import safe_json
from edgernn.runtime.backends import INTERPRETERS  # what a variant's "interpreters" record may name
from edgernn.runtime.cells import ACTIVATIONS
from edgernn.runtime.columns import Columns
from edgernn.runtime.manifest import (CELL_NAMES, DTYPES, FILE_ROLES, MANIFEST_NAME, MAX_ARENA_BYTES,
                                      MAX_MANIFEST_BYTES, MAX_REASON_CHARS, MODES, SCALE_KEYS, SCHEMA_VERSION,
                                      CalibrationInfo, FileEntry, Intervals, LayerSpec, Manifest, ModelInfo, Mode,
                                      TensorSpec, VariantEntry, state_output)
from edgernn.runtime.options import INT8_WEIGHTS
from edgernn.runtime.preprocessing import Preprocessing
from edgernn.runtime.variants import ALL_VARIANTS, VARIANTS


def read_inside(bundle: str | os.PathLike, relative: str, max_bytes: int) -> bytes:
    """The bytes of the regular file ``relative`` inside ``bundle``, read once.

    Refuses absolute paths, ``..``, any symlink on the way (inside or out: every component is opened without
    following links), anything but a regular file (a FIFO is never waited on) and files over ``max_bytes``.

    Raises:
        BundleError: one line naming the file and the problem.
    """
    if not isinstance(relative, str) or not relative or "\x00" in relative:
        raise BundleError(f"bad file name in manifest: {relative!r}")
    parts = Path(relative).parts
    if os.path.isabs(relative) or relative.startswith(("/", "\\")) or ".." in parts:
        raise BundleError(f"manifest path {relative!r} points outside the bundle")
    nofollow = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    fds = []
    try:
        try:
            fds.append(os.open(bundle, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)))
            for part in parts[:-1]:
                fds.append(os.open(part, nofollow | getattr(os, "O_DIRECTORY", 0), dir_fd=fds[-1]))
            fd = os.open(parts[-1], nofollow | os.O_NONBLOCK, dir_fd=fds[-1])
        except OSError as exc:
            raise _open_error(bundle, relative, exc) from None
        fds.append(fd)
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise BundleError(f"bundle file {relative} is not a regular file")
        if info.st_size > max_bytes:
            raise BundleError(f"bundle file {relative} is larger than {max_bytes} bytes")
        with os.fdopen(os.dup(fd), "rb") as handle:
            content = handle.read(max_bytes + 1)
        if len(content) > max_bytes:
            raise BundleError(f"bundle file {relative} is larger than {max_bytes} bytes")
        return content
    except OSError as exc:
        raise BundleError(f"cannot read bundle file {relative}: {exc.strerror or exc}") from None
    finally:
        for fd in fds:
            os.close(fd)


def _open_error(bundle, relative: str, exc: OSError) -> BundleError:
    if exc.errno == errno.ELOOP or (exc.errno == errno.ENOTDIR and _has_symlink(bundle, relative)):
        return BundleError(f"manifest path {relative!r} is a symlink; a bundle holds regular files only (a symlink "
                           "can lead outside the bundle)")
    if exc.errno == errno.ENOENT:
        return BundleError(f"bundle file missing: {relative}")
    return BundleError(f"cannot read bundle file {relative}: {exc.strerror or exc}")


def _has_symlink(bundle, relative: str) -> bool:
    path = Path(bundle)
    for part in Path(relative).parts:
        path = path / part
        if path.is_symlink():
            return True
    return False


def write_manifest(manifest: Manifest, bundle: str | os.PathLike) -> Path:
    """Write ``manifest.json`` (strict JSON: a NaN or infinity is refused, never written)."""
    path = Path(bundle) / MANIFEST_NAME
    path.write_text(safe_json.dumps(manifest.to_dict(), indent=2) + "\n")
    return path


def read_manifest(bundle: str | os.PathLike, check=None) -> Manifest:
    """Read and validate ``manifest.json`` (bounded strict JSON, then ``parse_manifest``); ``check(content)``, when
    given, sees the exact bytes first (a signature: ``edgernn.runtime.signing``) and raises to refuse them.

    Raises:
        BundleError: one line for every problem: missing, a symlink, too large, not JSON, nested too deep, a
            number too long, or any field of the wrong type or value.
    """
    bundle = Path(bundle)
    if not bundle.exists():
        raise BundleError(f"bundle not found: {bundle}")
    if not bundle.is_dir():
        raise BundleError(f"not a bundle directory: {bundle}")
    if not (bundle / MANIFEST_NAME).exists() and not (bundle / MANIFEST_NAME).is_symlink():
        raise BundleError(f"{bundle} has no {MANIFEST_NAME}: not an edgernn bundle")
    content = read_inside(bundle, MANIFEST_NAME, MAX_MANIFEST_BYTES)
    if check is not None:
        check(content)
    try:
        data = safe_json.loads(content)
    except ValueError as exc:
        raise BundleError(f"{MANIFEST_NAME}: {exc}") from None
    return parse_manifest(data)


def parse_manifest(data) -> Manifest:
    """A ``Manifest`` from parsed JSON, every field checked; raises BundleError (one line) otherwise."""
    try:
        return _parse(data)
    except BundleError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:  # a check missed: still one line
        raise BundleError(f"{MANIFEST_NAME} is malformed: {type(exc).__name__}: {exc}") from None


def _need(data: dict, key: str, kind, where: str):
    if not isinstance(data, dict):
        raise BundleError(f"{MANIFEST_NAME}: {where} must be an object")
    if key not in data:
        raise BundleError(f"{MANIFEST_NAME}: {where} lacks {key!r}")
    return _typed(data[key], kind, f"{where}.{key}")


def _optional(data: dict, key: str, kind, where: str, default):
    return _typed(data[key], kind, f"{where}.{key}") if key in data else default


def _typed(value, kind, where: str):
    kinds = kind if isinstance(kind, tuple) else (kind,)
    wanted = " or ".join(safe_json.JSON_TYPES[k] for k in kinds)
    if isinstance(value, bool) and bool not in kinds:
        raise BundleError(f"{MANIFEST_NAME}: {where} must be {wanted}, got {value!r}")
    if not isinstance(value, kinds):
        raise BundleError(f"{MANIFEST_NAME}: {where} must be {wanted}, got {safe_json.JSON_TYPES.get(type(value), 'a value')}")
    return value


def _positive(value, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= 1 << 20:
        raise BundleError(f"{MANIFEST_NAME}: {where} must be a positive integer (at most 2**20), got {value!r}")
    return value


def _sha256(value, where: str) -> str:
    if not isinstance(value, str) or len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise BundleError(f"{MANIFEST_NAME}: {where} is not a sha256 hex digest")
    return value


def _choice(value, choices, where: str) -> str:
    if value not in choices:
        raise BundleError(f"{MANIFEST_NAME}: {where} {value!r} is not one of {', '.join(choices)}")
    return value


def _tensor(data: dict, where: str) -> TensorSpec:
    name = _need(data, "name", str, where)
    shape = _need(data, "shape", list, where)
    if not shape or len(shape) > 4:
        raise BundleError(f"{MANIFEST_NAME}: {where}.shape must have 1 to 4 dimensions, got {shape!r}")
    shape = [_positive(d, f"{where}.shape") for d in shape]
    dtype = _choice(_need(data, "dtype", str, where), DTYPES, f"{where}.dtype")
    scale, zero_point = data.get("scale"), data.get("zero_point")
    if dtype.startswith(("int", "uint")):
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 0 < scale < 1e6:
            raise BundleError(f"{MANIFEST_NAME}: {where} is {dtype} but has no valid scale ({scale!r})")
        if isinstance(zero_point, bool) or not isinstance(zero_point, int) or abs(zero_point) > 65535:
            raise BundleError(f"{MANIFEST_NAME}: {where} is {dtype} but has no valid zero_point ({zero_point!r})")
    else:
        scale = zero_point = None  # a float tensor has no quantization, whatever the file says
    return TensorSpec(name, shape, dtype, scale, zero_point)


def _layer(data, where: str) -> LayerSpec:
    cell = _choice(_need(data, "cell", str, where), CELL_NAMES, f"{where}.cell")
    activations = tuple(ACTIVATIONS)
    return LayerSpec(
        cell, _positive(_need(data, "units", int, where), f"{where}.units"),
        _choice(_need(data, "activation", str, where), activations, f"{where}.activation"),
        _choice(_need(data, "recurrent_activation", str, where), activations, f"{where}.recurrent_activation"),
        _optional(data, "reset_after", bool, where, True), _optional(data, "use_bias", bool, where, True))


def _parse(data) -> Manifest:
    if not isinstance(data, dict):
        raise BundleError(f"{MANIFEST_NAME} must hold a JSON object")
    version = _need(data, "schema_version", int, "manifest")
    if version != SCHEMA_VERSION:
        raise BundleError(f"{MANIFEST_NAME} has schema version {version}; this edgernn reads version {SCHEMA_VERSION}")
    model_data = _need(data, "model", dict, "manifest")
    layers = [_layer(layer, f"model.layers[{i}]") for i, layer in enumerate(_need(model_data, "layers", list, "model"))]
    if not layers:
        raise BundleError(f"{MANIFEST_NAME}: model.layers is empty")
    mode = Mode(_choice(_need(model_data, "mode", str, "model"), MODES, "model.mode"))
    window = model_data.get("window")
    raw_window = model_data.get("raw_window")
    if mode is Mode.WINDOW:
        window = _positive(window, "model.window")
        raw_window = _positive(raw_window, "model.raw_window")
    else:
        window = raw_window = None  # a streaming model has no window, whatever the file says
    model = ModelInfo(layers, mode, window, raw_window)
    columns = None
    if data.get("columns") is not None:
        try:
            columns = Columns.from_dict(data["columns"])
        except ValueError as exc:
            raise BundleError(f"{MANIFEST_NAME}: {exc}") from None
        if mode is Mode.WINDOW and columns.lag > 1:
            raise BundleError(f"{MANIFEST_NAME}: a window model cannot difference over a season (columns period)")
    shape = (len(columns.inputs), len(columns.outputs)) if columns else (1, 1)
    variants = {}
    for name, entry in _need(data, "variants", dict, "manifest").items():
        variants[name] = _variant(name, entry, model, shape)
    if not variants:
        raise BundleError(f"{MANIFEST_NAME}: variants is empty: the bundle holds no model to run")
    try:
        preprocessing = Preprocessing.from_dict(_optional(data, "preprocessing", dict, "manifest", {}))
    except ValueError as exc:
        raise BundleError(f"{MANIFEST_NAME}: {exc}") from None
    files = {role: _file(role, entry) for role, entry in _optional(data, "files", dict, "manifest", {}).items()}
    calibration = _optional(data, "calibration", dict, "manifest", {})
    calibration = CalibrationInfo(_optional(calibration, "source", str, "calibration", ""),
                                  _count(_optional(calibration, "steps", int, "calibration", 0), "calibration.steps"),
                                  _count(_optional(calibration, "samples", int, "calibration", 0), "calibration.samples"))
    model_sha256 = _optional(data, "model_sha256", str, "manifest", "")
    return Manifest(model, preprocessing, variants, files, calibration,
                    _range(data.get("input_range"), "input_range"), version,
                    _optional(data, "edgernn_version", str, "manifest", ""),
                    _optional(data, "created", str, "manifest", ""),
                    model_sha256 and _sha256(model_sha256, "model_sha256"), columns)


def _count(value: int, where: str) -> int:
    if value < 0:
        raise BundleError(f"{MANIFEST_NAME}: {where} must not be negative, got {value}")
    return value


def _variant(name, entry, model: ModelInfo, shape: tuple[int, int]) -> VariantEntry:
    where = f"variants[{name!r}]"
    if name not in ALL_VARIANTS:
        raise BundleError(f"{MANIFEST_NAME}: unknown variant {name!r}; known: {', '.join(ALL_VARIANTS)}")
    fmt = _need(entry, "format", str, where)
    if fmt != VARIANTS[name].format:
        raise BundleError(f"{MANIFEST_NAME}: {where}.format is {fmt!r}, expected {VARIANTS[name].format!r}")
    sha = _sha256(_need(entry, "sha256", str, where), f"{where}.sha256")
    inputs = [_tensor(t, f"{where}.inputs[{i}]") for i, t in enumerate(_need(entry, "inputs", list, where))]
    outputs = [_tensor(t, f"{where}.outputs[{i}]") for i, t in enumerate(_need(entry, "outputs", list, where))]
    pairs = _need(entry, "state_pairs", list, where)
    variant = VariantEntry(name, _need(entry, "file", str, where), fmt, sha,
                           _count(_need(entry, "size_bytes", int, where), f"{where}.size_bytes"), inputs, outputs,
                           [list(p) if isinstance(p, list) else p for p in pairs],
                           _converter(_optional(entry, "converter", dict, where, {}), f"{where}.converter"),
                           _optional(entry, "notes", str, where, ""),
                           _range(entry.get("input_limits"), f"{where}.input_limits"),
                           _interpreters(_optional(entry, "interpreters", dict, where, {}), f"{where}.interpreters"),
                           _intervals(_optional(entry, "intervals", (dict, type(None)), where, None), f"{where}.intervals"))
    _check_tensors(variant, model, *shape)
    return variant


def _converter(data: dict, where: str) -> dict:
    """Tool versions and settings: string or integer values; ``int8_weights`` one of ``INT8_WEIGHTS``."""
    for key, value in data.items():
        _typed(value, (str, int), f"{where}[{key!r}]")
    if "int8_weights" in data:
        _choice(data["int8_weights"], INT8_WEIGHTS, f"{where}.int8_weights")
    return data


def _interpreters(data: dict, where: str) -> dict[str, dict]:
    """Interpreter -> ``{"runs": bool or null, "reason": str[, "arena_bytes": int]}``."""
    found = {}
    for name, record in data.items():
        at = f"{where}[{name!r}]"
        _choice(name, INTERPRETERS, f"{where} key")
        runs = _need(record, "runs", (bool, type(None)), at)
        arena = _optional(record, "arena_bytes", int, at, None)
        reason = _optional(record, "reason", str, at, "")
        if len(reason) > MAX_REASON_CHARS or not reason.isprintable():
            raise BundleError(f"{MANIFEST_NAME}: {at}.reason must be one printable line of at most "
                              f"{MAX_REASON_CHARS} characters")
        found[name] = {"runs": runs, "reason": reason}
        if arena is not None:
            if not 0 < arena <= MAX_ARENA_BYTES:
                raise BundleError(f"{MANIFEST_NAME}: {at}.arena_bytes must be between 1 and {MAX_ARENA_BYTES}, "
                                  f"got {arena}")
            found[name]["arena_bytes"] = arena
    return found


def _intervals(data: dict | None, where: str) -> Intervals | None:
    """Levels strictly increasing in (0, 1); one half-width per level, null or finite >= 0, non-decreasing."""
    if data is None:
        return None
    levels = _need(data, "levels", list, where)
    widths = _need(data, "half_widths", list, where)
    if (not levels or len(levels) > 100 or len(widths) != len(levels)
            or not all(safe_json.finite_number(v) and 0 < v < 1 for v in levels)
            or any(a >= b for a, b in zip(levels, levels[1:]))):
        raise BundleError(f"{MANIFEST_NAME}: {where} needs levels increasing within (0, 1), one half-width each")
    known = [w for w in widths if w is not None]
    if (not all(safe_json.finite_number(w) and w >= 0 for w in known)
            or any(a > b for a, b in zip(known, known[1:]))):
        raise BundleError(f"{MANIFEST_NAME}: {where}.half_widths must be null or finite, >= 0 and non-decreasing")
    return Intervals([float(v) for v in levels], [None if w is None else float(w) for w in widths],
                     _count(_need(data, "residuals", int, where), f"{where}.residuals"),
                     _optional(data, "source", str, where, ""),
                     _scale(_optional(data, "scale", (dict, type(None)), where, None), f"{where}.scale"))


def _scale(data: dict | None, where: str) -> dict | None:
    """A half-life of 1 to 1e6 steps, a start above 0, a clip of 1 to 100 and a floor in (0, 1], all finite."""
    if data is None:
        return None
    half_life, start, clip, floor = (_need(data, key, (int, float), where) for key in SCALE_KEYS)
    if not (all(safe_json.finite_number(v) for v in (half_life, start, clip, floor)) and 1 <= half_life <= 1e6
            and 0 < start < 1e300 and 1 <= clip <= 100 and 0 < floor <= 1):
        raise BundleError(f"{MANIFEST_NAME}: {where} needs a half_life of 1 to 1e6 steps, a start above 0, a clip "
                          "of 1 to 100 and a floor in (0, 1]")
    return {"half_life": float(half_life), "start": float(start), "clip": float(clip), "floor": float(floor)}


def _file(role, entry) -> FileEntry:
    where = f"files[{role!r}]"
    if role not in FILE_ROLES:
        raise BundleError(f"{MANIFEST_NAME}: unknown file role {role!r}; known: {', '.join(FILE_ROLES)}")
    steps = _optional(entry, "steps", int, where, None)
    test = _optional(entry, "test", list, where, None)
    if test is not None and not (len(test) == 2 and all(type(v) is int for v in test)
                                 and 0 <= test[0] <= test[1] <= (steps or 0)):
        raise BundleError(f"{MANIFEST_NAME}: {where}.test must be [start, stop] within its steps, got {test!r}")
    return FileEntry(_need(entry, "file", str, where), _sha256(_need(entry, "sha256", str, where), f"{where}.sha256"),
                     None if steps is None else _count(steps, f"{where}.steps"),
                     _optional(entry, "source", str, where, None), test)


def _range(value, where: str) -> list[float] | None:
    """An optional ``[low, high]`` pair of finite numbers, low <= high."""
    if value is None:
        return None
    if (not isinstance(value, list) or len(value) != 2
            or not all(safe_json.finite_number(v) for v in value)
            or value[0] > value[1]):
        raise BundleError(f"{MANIFEST_NAME}: {where} must be [low, high] finite numbers, got {value!r}")
    return [float(value[0]), float(value[1])]


def _check_tensors(entry: VariantEntry, model: ModelInfo, features: int = 1, outputs: int = 1) -> None:
    """The tensors a variant declares must be the ones its model info and columns imply, with consistent shapes."""
    where = f"{MANIFEST_NAME}: variants[{entry.name!r}]"
    expected_in = {"x": [1, model.window, features] if model.mode is Mode.WINDOW else [1, features]}
    expected_in.update({name: [1, units] for name, units in model.state_inputs()})
    expected_out = {"y": [1, outputs]}
    expected_out.update({state_output(name): [1, units] for name, units in model.state_inputs()})
    for kind, tensors, expected in (("inputs", entry.inputs, expected_in), ("outputs", entry.outputs, expected_out)):
        got = {t.name: t.shape for t in tensors}
        if got != expected or len(tensors) != len(expected):
            raise BundleError(f"{where}.{kind} are {got}, but the model implies {expected}")
    wanted = model.state_pairs()
    pairs = [tuple(p) for p in entry.state_pairs if isinstance(p, list) and all(isinstance(n, str) for n in p)]
    if len(pairs) != len(entry.state_pairs) or sorted(pairs) != sorted(map(tuple, wanted)):
        raise BundleError(f"{where}.state_pairs must pair each state input with its output: {wanted}")
