"""Click parameter types for edgernn's own vocabularies: case-insensitive, listed in ``--help``, one-line errors.

The names come from the tables that own them (variants, cells, backends), so the CLI never keeps a second list;
those tables import only the standard library, so ``--help`` loads no numpy.
"""

from __future__ import annotations

import math

import click

from edgernn.runtime.backends import BACKENDS
from edgernn.runtime.cell_table import CELLS
from edgernn.runtime.variants import ALL_VARIANTS


def choice(values, **kwargs) -> click.Choice:
    """A case-insensitive choice (click lists the values in ``--help`` and in its error)."""
    return click.Choice(list(values), case_sensitive=False, **kwargs)


class NameList(click.ParamType):
    """A comma-separated list of known names (or ``all``), lower-cased and de-duplicated, in the order given."""

    def __init__(self, names, what: str, allow_all: bool = True):
        self.names, self.what, self.allow_all = tuple(names), what, allow_all
        self.name = f"{what} list"

    def get_metavar(self, param, ctx=None) -> str:
        return ("all|" if self.allow_all else "") + ",".join(self.names)

    def convert(self, value, param, ctx):
        if isinstance(value, list):
            return value
        text = str(value).strip().lower()
        if self.allow_all and text == "all":
            return "all"
        names = [n.strip() for n in text.split(",") if n.strip()]
        unknown = [n for n in names if n not in self.names]
        if unknown or not names:
            self.fail(f"unknown {self.what} {', '.join(map(repr, unknown)) or '(none)'}; choose from "
                      f"{'all, ' if self.allow_all else ''}{', '.join(self.names)}", param, ctx)
        return list(dict.fromkeys(names))


CELL = choice(CELLS)
VARIANT = choice(ALL_VARIANTS)
VARIANTS = NameList(ALL_VARIANTS, "variant")
BACKENDS_LIST = NameList(BACKENDS, "backend", allow_all=False)  # bench: each one measured
BACKEND_CHOICES = NameList(["auto", *BACKENDS], "backend", allow_all=False)  # stream, bridge, verify: a list too


class FloatRange(click.FloatRange):
    """click's FloatRange without NaN: NaN fails every comparison, so it passes every bound (``--reorder-hold nan``
    made the MQTT bridge spin at 100 % CPU and hold readings until exit)."""

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if math.isnan(number):
            self.fail(f"{value!r} is not a number", param, ctx)
        return number
