"""Hypothesis helpers for fuzzing edgernn's JSON readers (manifests, state meta, ``.keras`` metadata).

Used by ``tests/runtime/test_fuzz.py`` and the host-side ``tests/test_untrusted_models.py``.
"""

from __future__ import annotations

import copy

from hypothesis import strategies as st

from edgernn.runtime import EdgernnError

ODD_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30),
    st.sampled_from(["../../etc/passwd", "/etc/passwd", "", "\x00", "tflite-int8", "x" * 5000, "h0_out", "swish",
                     "weights.npz", "manifest.json", "0" * 64, "relu", "window", "streaming"]),
    st.lists(st.integers(min_value=-5, max_value=10**9), max_size=5),
    st.lists(st.one_of(st.text(max_size=3), st.lists(st.integers(), max_size=2), st.none()), min_size=1, max_size=4),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)
# raw JSON text an attacker can write and json.dumps cannot: nesting and numbers past every parser limit
RAW_JSON = st.sampled_from(["[" * 100_000 + "]" * 100_000, "{\"a\":" * 5000 + "1" + "}" * 5000, "7" * 5000,
                            "1e999", "-1e999", "NaN", "Infinity", "1" * 40 + ".5", "\"\\ud800\"", "[1,]", ""])


def paths(node, prefix=(), max_index: int = 3):
    """Key paths in a JSON tree (list items past ``max_index`` left out: long series are one kind of path)."""
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from paths(value, prefix + (key,), max_index)
    elif isinstance(node, list):
        for index, value in enumerate(node[: max_index + 1]):
            yield from paths(value, prefix + (index,), max_index)


def mutate_tree(data, tree):
    """1 to 3 edits of a JSON tree: a key dropped, or a value replaced by an odd one."""
    tree = copy.deepcopy(tree)
    candidates = [p for p in paths(tree) if p]
    for _ in range(data.draw(st.integers(min_value=1, max_value=3))):
        path = data.draw(st.sampled_from(candidates))
        parent = tree
        try:
            for key in path[:-1]:
                parent = parent[key]
            if data.draw(st.booleans()) and isinstance(parent, dict):
                parent.pop(path[-1], None)
            else:
                parent[path[-1]] = data.draw(ODD_VALUES)
        except (KeyError, IndexError, TypeError):
            pass  # an earlier mutation removed or replaced this path's parent
    return tree


def mutate_text(data, text: str) -> str:
    """Raw-text damage: a value swapped for RAW_JSON, a cut, or a character changed."""
    how = data.draw(st.sampled_from(["raw value", "cut", "character"]))
    at = data.draw(st.integers(min_value=0, max_value=max(0, len(text) - 1)))
    if how == "raw value":
        colon = text.find(":", at)
        end = min([i for i in (text.find(",", colon), text.find("}", colon)) if i > 0] or [len(text)])
        return text[: colon + 1] + data.draw(RAW_JSON) + text[end:] if colon > 0 else data.draw(RAW_JSON)
    if how == "cut":
        return text[:at]
    return text[:at] + chr(data.draw(st.integers(min_value=0, max_value=0x2FF))) + text[at + 1 :]


def ends_cleanly(call) -> str:
    """Run ``call``; an EdgernnError must be one non-empty line, anything else fails the test. Returns the
    outcome: ``ok`` or the error type."""
    try:
        call()
    except EdgernnError as exc:
        assert str(exc) and "\n" not in str(exc), repr(str(exc))
        kind = type(exc).__name__
    else:
        kind = "ok"
    return kind


def budgets(default: int, long: int) -> list:
    """``pytest.mark.parametrize("examples", budgets(...))`` values: the default run's example count (a fifth
    under qemu emulation, ``EDGERNN_EMULATED=1``, where each example is ~10x slower), and the long run's under
    ``-m slow``."""
    import os

    import pytest

    if os.environ.get("EDGERNN_EMULATED") == "1":
        default = max(10, default // 5)
    return [pytest.param(default, id=f"{default}-examples"),
            pytest.param(long, id=f"{long}-examples", marks=pytest.mark.slow)]


def fuzz(examples: int, case) -> None:
    """Run ``case(data)`` on ``examples`` Hypothesis examples seeded by the test's id (the same every run, another
    stream per test and budget), and print how they ended (``case`` returns the outcome: ``ok``, an error type,
    an exit code; see them with ``pytest -rP``)."""
    import os
    import zlib
    from collections import Counter

    from hypothesis import HealthCheck, given, seed, settings

    outcomes = Counter()
    test_id = os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" ", 1)[0]

    @seed(zlib.crc32(test_id.encode()))
    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    @given(data=st.data())
    def run(data):
        outcomes[case(data)] += 1

    run()
    print(f"fuzz outcomes ({sum(outcomes.values())} runs, shrinking and replays included): {dict(outcomes)}")
