"""Models and bundles built once per test run, shared by every pytest-xdist worker.

Training and exporting dominate the suite's time, and each xdist worker has its own session fixtures: without a
shared place every worker would train the same small models again. The first worker to ask for a thing builds
it under an exclusive lock in a directory all workers of the run see; the others wait on the lock and reuse it.
A marker written after the build says it finished (a worker killed mid-build leaves none, and the next one
builds again in a fresh directory).

``EDGERNN_TEST_BUILT=DIR`` makes that place a directory that outlives the run: CI points the suite and
``tests/make_bundles.py`` at one, so the bundles the suite built are not trained and exported again. Nothing there
is checked against the source: use it for one checkout and one run of CI, and delete it when the code changes.
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import os
import pickle
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Callable
DONE = ".built"


def run_root(tmp_path_factory) -> Path:
    """The directory shared by every worker of this run (the master's basetemp without xdist), or
    ``EDGERNN_TEST_BUILT`` when set."""
    given = os.environ.get("EDGERNN_TEST_BUILT")
    if given:
        root = Path(given).resolve()  # absolute: some tests change the working directory
        root.mkdir(parents=True, exist_ok=True)
        return root
    base = tmp_path_factory.getbasetemp()
    root = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "built-once"
    root.mkdir(exist_ok=True)
    return root


@contextmanager
def _exclusive(lock_file: Path):
    with open(lock_file, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # waits while another worker builds the same thing
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def build_once(root: Path, key: str, build: Callable[[Path], None]) -> Path:
    """``root/key``, made by ``build(directory)`` unless a worker of this run already made it."""
    target = root / key
    with _exclusive(root / f"{key}.lock"):
        if not (target / DONE).exists():
            shutil.rmtree(target, ignore_errors=True)
            target.mkdir()
            build(target)
            (target / DONE).write_text("")
    return target


def _key(prefix: str, options: dict) -> str:
    digest = hashlib.sha256(repr(sorted(options.items())).encode()).hexdigest()[:12]
    return f"{prefix}-{digest}"


def trained_once(root: Path, **options):
    """``edgernn.train(**options)`` once per run across workers (keyed by the options, so fixtures asking for the
    same model share it): the result, its Keras model loaded from the saved file."""
    options = {"seed": 0, **options}

    def build(directory: Path) -> None:
        import edgernn

        result = edgernn.train(out=directory / "model.keras", quiet=True, **options)
        kept = dataclasses.replace(result, model=None, preprocessing=result.preprocessing.to_dict())
        (directory / "result.pickle").write_bytes(pickle.dumps(kept))

    from edgernn.training.modeling import load_model
    from edgernn.runtime.preprocessing import Preprocessing

    kept = pickle.loads((build_once(root, _key("trained", options), build) / "result.pickle").read_bytes())
    model, _ = load_model(kept.model_path)  # the worker's own copy, as train returned it
    return dataclasses.replace(kept, model=model, preprocessing=Preprocessing.from_dict(kept.preprocessing))


def exported_once(root: Path, model_path: Path, **options) -> Path:
    """``edgernn.export(model_path, **options)`` once per run across workers: the bundle's path."""
    options = {"quiet": True, **options}

    def build(directory: Path) -> None:
        import edgernn

        edgernn.export(model_path, directory / "bundle", **options)

    return build_once(root, _key("exported", {"model": str(model_path), **options}), build) / "bundle"
