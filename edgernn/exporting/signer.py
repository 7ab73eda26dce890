"""Signing bundles on the host: an Ed25519 key pair, and ``signature.json`` written beside a bundle's manifest.

The device side only verifies (``edgernn.runtime.signing``); the private key stays on the host, in a file only
its owner can read (a key readable by others is refused: anyone who can read it can sign). What a signature
covers and how it is checked: ``edgernn.runtime.signing``.
"""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

from edgernn.runtime import safe_json
from edgernn.runtime.atomic import write_bytes_atomically
from edgernn.errors import BundleError, EdgernnError
from edgernn.runtime.manifest import MANIFEST_NAME, MAX_MANIFEST_BYTES
from edgernn.runtime.manifest_reader import parse_manifest, read_inside
from edgernn.runtime.signing import (MAX_KEY_BYTES, MAX_VERSION, SIGNATURE_FORMAT, SIGNATURE_NAME, Signed, crypto,
                                     fingerprint, read_signature, signed_payload)

PRIVATE_NAME, PUBLIC_NAME = "edgernn.key", "edgernn.pub"


def keygen(directory: str | os.PathLike) -> tuple[Path, Path]:
    """A new Ed25519 key pair in ``directory``: ``edgernn.key`` (private, mode 0600) and ``edgernn.pub``; an
    existing key is never overwritten. Returns both paths."""
    _, serialization, ed25519 = crypto()
    directory = Path(directory)
    private_path, public_path = directory / PRIVATE_NAME, directory / PUBLIC_NAME
    for path in (private_path, public_path):
        if path.exists() or path.is_symlink():
            raise EdgernnError(f"{path} exists; keygen never replaces a key (move it away first)")
    directory.mkdir(parents=True, exist_ok=True)
    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # never readable by others
    with os.fdopen(fd, "wb") as handle:
        handle.write(private)
    public_path.write_bytes(public)
    return private_path, public_path


def private_key(path: Path):
    """The Ed25519 private key in ``path``, refused when others can read or write the file."""
    _, serialization, ed25519 = crypto()
    try:
        info = path.stat()
    except OSError as exc:
        raise EdgernnError(f"signing key {path}: {exc.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise EdgernnError(f"signing key {path} is not a regular file")
    if info.st_mode & 0o077:
        raise EdgernnError(f"signing key {path} is readable or writable by others (mode {info.st_mode & 0o777:o}): "
                           f"refused; chmod 600 {path}")
    data = path.read_bytes()[: MAX_KEY_BYTES + 1]
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        reason = str(exc).splitlines()[0][:100] if str(exc) else type(exc).__name__
        raise EdgernnError(f"signing key {path} is not an unencrypted PEM private key ({reason})") from None
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise EdgernnError(f"signing key {path} is not an Ed25519 key (edgernn keygen makes one)")
    return key


def sign(bundle: str | os.PathLike, key_path: str | os.PathLike, version: int | None = None) -> Signed:
    """Sign ``bundle``'s manifest as it is now, with ``version`` (default: the previous signature's + 1, else 1);
    ``signature.json`` is replaced atomically. The manifest is checked first: a bundle edgernn would refuse is
    not signed."""
    bundle, key = Path(bundle), private_key(Path(key_path))
    content = read_inside(bundle, MANIFEST_NAME, MAX_MANIFEST_BYTES)
    try:
        parse_manifest(safe_json.loads(content))
    except ValueError as exc:
        raise BundleError(f"{MANIFEST_NAME}: {exc}") from None
    if version is None:
        try:
            previous = read_signature(bundle)
        except BundleError:
            previous = None
        version = previous["version"] + 1 if previous else 1
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= MAX_VERSION:
        raise EdgernnError(f"version must be an integer from 1 to {MAX_VERSION}, got {version!r}")
    name = fingerprint(key.public_key())
    signature = key.sign(signed_payload(content, name, version))
    record = {"format": SIGNATURE_FORMAT, "key": name, "version": version,
              "signature": base64.b64encode(signature).decode("ascii")}
    write_bytes_atomically(bundle / SIGNATURE_NAME, (json.dumps(record, indent=2) + "\n").encode("ascii"))
    return Signed(name, version)
