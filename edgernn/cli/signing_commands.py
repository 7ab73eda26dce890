"""The signing commands (``keygen``, ``sign``) and the ``--trust`` option every command that loads a bundle takes.

Kept out of ``cli.py`` so that the main command table stays readable; registered there with ``register``.
"""

from __future__ import annotations

import json

import click

from edgernn.runtime.signing import TRUST_ENV

TRUST_HELP = (f"Run the bundle only if it is signed by this public key (a file, or a directory of them; default "
              f"${TRUST_ENV}); see docs/signing.md.")


def trust_option(func):
    """``--trust PATH`` (or ``EDGERNN_TRUST``): the keys a bundle must be signed by."""
    return click.option("--trust", type=click.Path(), envvar=TRUST_ENV, default=None, metavar="PUBKEY|DIR",
                        help=TRUST_HELP)(func)


def trusted_keys(trust):
    """The trusted keys (``signing.load_trust``), or None when no trust is configured."""
    if trust is None:
        return None
    from edgernn.runtime.signing import load_trust

    return load_trust(trust)


def check_trust(bundle, trust) -> None:
    """Refuse ``bundle`` (one line, exit 2) unless its manifest is signed by a trusted key; nothing without
    trust. For commands that open the bundle many times (verify, bench, c-array)."""
    keys = trusted_keys(trust)
    if keys is not None:
        from edgernn.runtime.bundle import Bundle

        Bundle.open(bundle, keys)


@click.command("keygen", short_help="Make an Ed25519 key pair for signing bundles.")
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Directory for edgernn.key (private, mode 0600) and edgernn.pub.")
@click.option("--json", "as_json", is_flag=True, help="Print the key files and the fingerprint as JSON on stdout.")
def keygen_command(out, as_json):
    """Write a new key pair: edgernn.key stays on the host that signs; edgernn.pub goes to each device
    (--trust, or EDGERNN_TRUST). An existing key is never replaced."""
    from edgernn.runtime.signing import load_trust
    from edgernn.exporting.signer import keygen

    private, public = keygen(out)
    (name,) = load_trust(public)
    if as_json:
        click.echo(json.dumps({"private_key": str(private), "public_key": str(public), "fingerprint": name}))
        return
    click.echo(f"private key: {private} (keep it on this host)\npublic key: {public} (fingerprint {name[:16]})")


@click.command("sign", short_help="Sign a bundle's manifest with a private key.")
@click.argument("bundle", type=click.Path(file_okay=False))
@click.option("--key", "key_path", required=True, type=click.Path(dir_okay=False),
              help="The private key (edgernn keygen); refused if others can read it.")
@click.option("--version", "version", type=click.IntRange(1, 2**53), default=None,
              help="The bundle's version (default: the previous signature's + 1, else 1); a device refuses a "
                   "bundle older than the one its state was saved with.")
@click.option("--json", "as_json", is_flag=True, help="Print the bundle, key and version as JSON on stdout.")
def sign_command(bundle, key_path, version, as_json):
    """Write signature.json: an Ed25519 signature over the manifest (every file's sha256 and size) and the
    version. Re-run after any change to the bundle."""
    from edgernn.exporting.signer import sign

    signed = sign(bundle, key_path, version)
    if as_json:
        click.echo(json.dumps({"bundle": str(bundle), "key": signed.key, "version": signed.version}))
        return
    click.echo(f"signed {bundle}: key {signed.key[:16]}, version {signed.version}")


def register(cli) -> None:
    cli.add_command(keygen_command)
    cli.add_command(sign_command)
