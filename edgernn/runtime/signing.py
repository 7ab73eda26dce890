"""Only what you signed runs: a bundle's Ed25519 signature checked against trusted public keys before it is used.

A bundle's sha256 hashes catch damage, not intent: whoever can write a bundle can rewrite its manifest and its
hashes. ``signature.json`` signs the manifest's exact bytes (which name every file's sha256 and size, each
checked on every read by ``Bundle.read``) together with a monotonic ``version``, so with trust configured
(``--trust PATH`` or ``EDGERNN_TRUST``: a public key file or a directory of ``*.pub`` files) an unsigned, foreign-signed or
tampered bundle is refused before anything but its manifest and signature is read, and a state file saved with a
newer version refuses an older bundle (rollback). The cryptography is the ``cryptography`` package's (the
``sign`` extra), imported only when trust is configured or a bundle is signed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from edgernn.runtime import safe_json
from edgernn.errors import BundleError

SIGNATURE_NAME = "signature.json"
SIGNATURE_FORMAT = 1
TRUST_ENV = "EDGERNN_TRUST"
MAX_SIGNATURE_BYTES = 4096  # a few hundred bytes in practice
MAX_KEY_BYTES = 16384  # a PEM or OpenSSH public key is well under 1 KB
MAX_TRUSTED_KEYS = 256
MAX_VERSION = 2**53  # a JSON integer every reader agrees on
INSTALL = "pip install 'edgernn[sign]'"


@dataclass(frozen=True)
class Signed:
    """What a verified signature says: the signing key's fingerprint and the bundle's version."""

    key: str
    version: int


def crypto():
    try:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError:
        raise BundleError(f"checking bundle signatures needs the cryptography package: {INSTALL}") from None
    return InvalidSignature, serialization, ed25519


def fingerprint(public_key) -> str:
    """The sha256 of a public key's 32 raw bytes, in hex: how a signature names its key."""
    _, serialization, _ = crypto()
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def signed_payload(manifest: bytes, key: str, version: int) -> bytes:
    """The exact bytes a signature covers: the format, the key, the version and the manifest's sha256."""
    return json.dumps({"format": SIGNATURE_FORMAT, "key": key, "manifest_sha256": hashlib.sha256(manifest).hexdigest(),
                       "version": version}, sort_keys=True, separators=(",", ":")).encode("ascii")


def trust_path(option: str | os.PathLike | None) -> Path | None:
    """The trust configured: the ``--trust`` option, else ``EDGERNN_TRUST`` (a systemd unit's Environment=)."""
    chosen = option if option is not None else os.environ.get(TRUST_ENV) or None
    return None if chosen is None else Path(chosen)


def load_trust(path: str | os.PathLike) -> dict[str, object]:
    """Trusted Ed25519 public keys by fingerprint, from a key file (PEM or OpenSSH ``ssh-ed25519``) or a
    directory of them (every regular file in it). Raises BundleError, one line, for anything else."""
    path = Path(path)
    if path.is_dir():  # its *.pub files: keygen's private key may sit beside them
        files = sorted(p for p in path.iterdir() if p.suffix == ".pub" and p.is_file())
        if not files:
            raise BundleError(f"trust directory {path} holds no public key files (*.pub)")
        if len(files) > MAX_TRUSTED_KEYS:
            raise BundleError(f"trust directory {path} holds {len(files)} files; at most {MAX_TRUSTED_KEYS} keys")
    elif path.is_file():
        files = [path]
    else:
        raise BundleError(f"trust: {path} is neither a public key file nor a directory of them")
    keys = {}
    for file in files:
        key = _public_key(file)
        keys[fingerprint(key)] = key
    return keys


def _public_key(file: Path):
    _, serialization, ed25519 = crypto()
    try:
        with open(file, "rb") as handle:
            data = handle.read(MAX_KEY_BYTES + 1)
    except OSError as exc:
        raise BundleError(f"trust: cannot read {file}: {exc.strerror}") from None
    if len(data) > MAX_KEY_BYTES:
        raise BundleError(f"trust: {file} is larger than {MAX_KEY_BYTES} bytes: not a public key")
    try:
        if data.lstrip().startswith(b"ssh-"):
            key = serialization.load_ssh_public_key(data.strip())
        else:
            key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError, IndexError) as exc:
        if b"PRIVATE KEY" in data:
            raise BundleError(f"trust: {file} is a private key; trust the public key (edgernn.pub)") from None
        reason = str(exc).splitlines()[0][:100] if str(exc) else type(exc).__name__
        raise BundleError(f"trust: {file} is not a PEM or OpenSSH public key ({reason})") from None
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise BundleError(f"trust: {file} holds a {type(key).__name__.lstrip('_')}, not an Ed25519 public key")
    return key


def read_signature(bundle: str | os.PathLike) -> dict | None:
    """``signature.json`` checked for shape (None when the bundle has none); nothing is verified here."""
    path = Path(bundle) / SIGNATURE_NAME
    if not path.exists() and not path.is_symlink():
        return None
    if path.is_symlink() or not path.is_file():
        raise BundleError(f"{SIGNATURE_NAME} is not a regular file")
    with open(path, "rb") as handle:
        content = handle.read(MAX_SIGNATURE_BYTES + 1)
    if len(content) > MAX_SIGNATURE_BYTES:
        raise BundleError(f"{SIGNATURE_NAME} is larger than {MAX_SIGNATURE_BYTES} bytes: not an edgernn signature")
    try:
        data = safe_json.loads(content)
    except ValueError as exc:
        raise BundleError(f"{SIGNATURE_NAME}: {exc}") from None
    if not isinstance(data, dict) or set(data) != {"format", "key", "version", "signature"}:
        raise BundleError(f"{SIGNATURE_NAME} must be an object of format, key, version and signature")
    if data["format"] != SIGNATURE_FORMAT or isinstance(data["format"], bool):
        raise BundleError(f"{SIGNATURE_NAME} has format {data['format']!r}; this edgernn reads {SIGNATURE_FORMAT}")
    key, version, signature = data["key"], data["version"], data["signature"]
    if not isinstance(key, str) or len(key) != 64 or any(c not in "0123456789abcdef" for c in key):
        raise BundleError(f"{SIGNATURE_NAME}: key must be a key's sha256 fingerprint (64 hex digits)")
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= MAX_VERSION:
        raise BundleError(f"{SIGNATURE_NAME}: version must be an integer from 1 to {MAX_VERSION}")
    try:
        raw = base64.b64decode(signature, validate=True) if isinstance(signature, str) else b""
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 64:
        raise BundleError(f"{SIGNATURE_NAME}: signature must be 64 bytes in base64")
    return {"key": key, "version": version, "signature": raw}


def verify(bundle: str | os.PathLike, manifest: bytes, trusted: dict[str, object]) -> Signed:
    """Check that ``manifest`` (the exact bytes about to be parsed) is signed by a trusted key; raises
    BundleError saying what is wrong (unsigned, another key, tampered)."""
    invalid, _, _ = crypto()
    signature = read_signature(bundle)
    if signature is None:
        raise BundleError(f"{bundle} is not signed and trust is configured: sign it (edgernn sign {bundle} --key "
                          "KEY) or load it without --trust/EDGERNN_TRUST")
    key = trusted.get(signature["key"])
    if key is None:
        raise BundleError(f"{bundle} is signed by key {signature['key'][:16]}, which is not trusted here")
    try:
        key.verify(signature["signature"], signed_payload(manifest, signature["key"], signature["version"]))
    except invalid:
        raise BundleError(f"{bundle}: the signature does not match the manifest (tampered, or re-signed "
                          "badly): refused") from None
    return Signed(signature["key"], signature["version"])


def describe(bundle: str | os.PathLike) -> str:
    """One line for ``edgernn verify``: who signed the bundle and its version (not a verification)."""
    try:
        signature = read_signature(bundle)
    except BundleError as exc:
        return f"signature: unreadable ({exc})"
    if signature is None:
        return "signature: unsigned"
    return f"signature: signed by key {signature['key'][:16]}, version {signature['version']}"
