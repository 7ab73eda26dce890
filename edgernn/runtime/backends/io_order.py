"""The positional order of every backend's tensors, in a module of its own so that a backend module never
imports the backend table that imports it by name."""

from __future__ import annotations


def tensor_order(entry) -> tuple[list[str], list[str]]:
    """The positional order of every backend's ``run``: ``[x, *state inputs]`` -> ``[y, *state outputs]``."""
    return ["x", *(i for i, _ in entry.state_pairs)], ["y", *(o for _, o in entry.state_pairs)]
