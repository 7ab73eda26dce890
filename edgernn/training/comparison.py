"""The model beside its peers, as train's summary and verify's report show it (figures from ``edgernn.training.peers``,
read back from a model's metrics dict, so a saved model shows the same table it was trained with)."""

from __future__ import annotations

from edgernn.training import peers


def outputs(columns) -> list[str | None]:
    """What is compared: the series (None; a one-column model, seasonal or not, too) or each one-step output of
    a multivariate model."""
    if columns.univariate:
        return [None]
    return [name for name, c in zip(columns.output_names(), columns.outputs) if c.step == 1]


def table(metrics: dict, columns) -> dict:
    """``{output: [{name, val_rmse, test_rmse}, ...]}`` (``value`` for a univariate model); empty when the metrics
    record no peer (a model trained before the peers existed)."""
    if not any(key.startswith("peer_val_rmse[") for key in metrics):
        return {}
    return {output or "value": [{"name": p.name, "val_rmse": p.val_rmse, "test_rmse": p.test_rmse}
                                for p in peers.rows(metrics, output)] for output in outputs(columns)}


def verdicts(metrics: dict, columns) -> list[str]:
    """One line per output the model does not beat its best peer on (validation)."""
    found = (peers.verdict(metrics, output) for output in outputs(columns))
    return [line for line in found if line is not None]


def text(metrics: dict, columns) -> list[str]:
    """train's summary lines: a validation/test table per output, then the verdicts."""
    lines = []
    for output in outputs(columns):
        rows = peers.rows(metrics, output)
        width = max(len(p.name) for p in rows)
        lines.append(f"compared on the same split{f' ({output})' if output else ''}, RMSE in raw units:")
        lines.append(f"  {'':<{width}}  {'validation':>10}  {'test':>10}")
        lines += [f"  {p.name:<{width}}  {p.val_rmse:>10.4g}  {p.test_rmse:>10.4g}" for p in rows]
    return lines + verdicts(metrics, columns)


def versus(rmse: float, baseline: float) -> str:
    """``12% lower`` / ``3% higher`` / ``the same``: an RMSE beside a baseline's, never ``-0% higher``."""
    change = rmse / baseline - 1
    if abs(change) < 0.005:
        return "the same" if rmse == baseline else f"within 0.5% ({'lower' if change < 0 else 'higher'})"
    return f"{-change:.0%} lower" if change < 0 else f"{change:.0%} higher"
