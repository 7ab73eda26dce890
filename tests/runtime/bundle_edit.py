"""Editing a copy of a real bundle the way an attacker who controls it would: files replaced, hashes updated.

Shared by the bad-bundle cases and the fuzz tests (no TensorFlow needed).
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from edgernn.cli.commands import cli


def copy_bundle(source: Path, target: Path) -> Path:
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target, symlinks=True)
    return target


def manifest_of(bundle: Path) -> dict:
    return json.loads((bundle / "manifest.json").read_text())


def write_manifest(bundle: Path, manifest: dict) -> None:
    (bundle / "manifest.json").write_text(json.dumps(manifest))


def entry_of(manifest: dict, name: str) -> dict:
    """The manifest record of a variant or a file role (both have ``file`` and ``sha256``)."""
    return manifest["variants"][name] if name in manifest["variants"] else manifest["files"][name]


def replace_file(bundle: Path, name: str, content: bytes) -> None:
    """Replace the file of variant or role ``name`` and record its new hash: only its parse is left to test."""
    manifest = manifest_of(bundle)
    entry = entry_of(manifest, name)
    path = bundle / entry["file"]
    if path.is_symlink() or path.exists():
        path.unlink()
    path.write_bytes(content)
    entry["sha256"] = hashlib.sha256(content).hexdigest()
    write_manifest(bundle, manifest)


def npz_bytes(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def npz_arrays(bundle: Path, name: str) -> dict[str, np.ndarray]:
    with np.load(bundle / entry_of(manifest_of(bundle), name)["file"]) as archive:
        return {key: archive[key] for key in archive.files}


def run_cli(args: list[str]):
    """Run the real CLI; returns the click result after checking the contract every outcome must keep:
    exit 0, 1 or 2; no traceback; an exit 2 says why in exactly one ``error:`` line, the last one on stderr.

    No stdin: ``edgernn stream`` reads a real file descriptor, so give it an input file to get past loading."""
    result = CliRunner().invoke(cli, args)
    assert result.exception is None or isinstance(result.exception, SystemExit), (args, repr(result.exception))
    assert result.exit_code in (0, 1, 2), (args, result.exit_code, result.output)
    assert "Traceback" not in result.output and "Aborted" not in result.output, result.output
    if result.exit_code == 2:
        lines = result.stderr.strip().splitlines()
        assert lines and lines[-1].startswith("error: "), result.stderr
        assert sum(line.startswith("error:") for line in lines) == 1, result.stderr
    return result
