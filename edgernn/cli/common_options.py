"""What several commands share: strict JSON output, the BUNDLE argument's check, a progress bar, the series
options (--data/--column/--time-column), comma lists and --season. No numpy at import (``edgernn --help``)."""

from __future__ import annotations

import sys

import click

def print_json(data) -> None:
    """Strict JSON on stdout: NaN and infinities become null (never invalid JSON)."""
    from edgernn.runtime.safe_json import dumps

    click.echo(dumps(data, non_finite="null", indent=2))


def bundle_path(ctx, param, value):
    """A BUNDLE argument: a model file given instead is the most common slip; say what to do."""
    from pathlib import Path

    if value and Path(value).is_file() and Path(value).suffix == ".keras":
        raise click.BadParameter(f"{value} is a model, not a bundle; export it first: "
                                 f"edgernn export {value} --out BUNDLE", ctx=ctx, param=param)
    return value


class progress:
    """A progress bar on stderr while a long command runs, only when stderr is a terminal (click's own bar).

    Used as ``with progress("verify") as update:``; ``progress(done, total, label)`` advances it.
    """

    def __init__(self, label: str):
        self.label, self.bar = label, None

    def __enter__(self):
        return self.update if sys.stderr.isatty() else None

    def update(self, done: int, total: int, item: str) -> None:
        if self.bar is None:
            self.bar = click.progressbar(length=total, label=self.label, file=sys.stderr,
                                         item_show_func=lambda shown: shown)
            self.bar.__enter__()
        self.bar.update(done - self.bar.pos, item)

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.__exit__(*exc)


def season_periods(ctx, param, value):
    """``--season`` text to periods (None: detect, []: none); bad text is a usage error (one line, exit 2)."""
    from edgernn.errors import DataError
    from edgernn.data.seasons import parse_season

    try:
        return parse_season(value)
    except DataError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


def data_options(func):
    """--data/--column/--time-column, shared by every command that reads a series."""
    func = click.option("--time-column", default=None, help="CSV column to sort rows by.")(func)
    func = click.option("--column", default=None, help="CSV column to use (default: the only numeric one).")(func)
    return func



def column_list(text: str | None):
    """``--columns``/``--target`` text: None when not given, ``all``, or the comma-separated names/indices."""
    if not text:
        return None
    return "all" if text.strip() == "all" else [part.strip() for part in text.split(",")]
