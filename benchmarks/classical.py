"""Is the trained model worth deploying? Test RMSE one step ahead of edgernn beside persistence, seasonal naive and
a classical peer fitted by statsmodels, on public series, each on edgernn's own 70/15/15 split (issue 30).

    python benchmarks/classical.py [--series NAME ...] [--json benchmarks/classical_results.json]
                                   [--markdown benchmarks/classical.md]

Every forecaster is a function ``(train, validation, test) -> test predictions``: arrays of values (``[n]``) or
rows (``[n, F]``, the target in column 0), the prediction ``k`` made after the value before ``test[k]``. The
classical peers are fitted on train + validation (what edgernn trains and stops early on), then run over the test
split with their parameters fixed and their state updated by each new observation, as a device would: ARIMA
through the results' ``append`` (statsmodels' Kalman filter), Holt-Winters by refitting on all the data with the
fitted smoothing parameters and initial states fixed (``optimized=False``; ``HoltWintersResults`` has no
``append``), checked to reproduce the fit on the part it was fitted on. edgernn is ``edgernn.train`` with its
defaults and ``seed=0``; persistence and seasonal naive need no fit.

Series (all shipped offline: statsmodels' datasets, or files in ``benchmarks/data``):
- ``beijing-temp``: hourly air temperature at Beijing Capital airport, 2014 (``benchmarks/data/beijing_pm25_2014.csv``
  from the UCI "Beijing PM2.5 Data" set, Liang et al. 2015); daily period 24.
- ``co2``: weekly Mauna Loa CO2, 1958-2001 (``benchmarks/data/co2_weekly.csv``: ``statsmodels.datasets.co2``,
  Keeling and Whorf, Scripps); yearly period 52; gaps filled by linear interpolation (as edgernn does).
- ``taylor-demand``: half-hourly electricity demand in England and Wales, 5 June to 27 August 2000, in megawatts
  (``benchmarks/data/taylor_demand.csv``: the ``taylor`` series of R's forecast package, as pmdarima's
  ``load_taylor`` ships it; Taylor 2003, "Short-term electricity demand forecasting using double seasonal
  exponential smoothing"); daily period 48 and weekly period 336.
- ``elnino``: monthly Nino 1+2 sea surface temperature, 1950-2010 (``statsmodels.datasets.elnino``, NOAA ERSST.V3B);
  period 12.
- ``sunspots``: yearly sunspot numbers, 1700-2008 (``statsmodels.datasets.sunspots``, NOAA NGDC); the 11-year cycle.
- ``macro-unemp``: quarterly US unemployment rate, 1959-2009, predicted from 5 columns (unemp, realgdp, realcons,
  infl, tbilrate; ``statsmodels.datasets.macrodata``, FRED and BLS); seasonally adjusted, period 4 for the record.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edgernn.data.series import chronological_split, load_series, load_table  # noqa: E402

DATA = Path(__file__).resolve().parent / "data"


# -- forecasters: (train, validation, test) -> test predictions -------------------------------------------------

def target(values: np.ndarray) -> np.ndarray:
    """The predicted column: the values themselves, or column 0 of rows."""
    return values if values.ndim == 1 else values[:, 0]


def persistence(train, validation, test) -> np.ndarray:
    """The last value carried one step on."""
    return np.concatenate([target(train), target(validation), target(test)])[-test.shape[0] - 1: -1]


def seasonal_naive(period: int):
    """The value one ``period`` back."""
    def forecast(train, validation, test) -> np.ndarray:
        return np.concatenate([target(train), target(validation), target(test)])[-test.shape[0] - period: -period]
    forecast.__name__ = f"seasonal naive ({period})"
    return forecast


def arima(order: tuple[int, int, int], seasonal: tuple[int, int, int, int] = (0, 0, 0, 0)):
    """ARIMA fitted on train + validation (constant unless differenced), then ``append``: the test values filtered
    with the fitted parameters, each prediction one step ahead."""
    def forecast(train, validation, test) -> np.ndarray:
        from statsmodels.tsa.arima.model import ARIMA

        fitted_on = np.concatenate([target(train), target(validation)])
        trend = "c" if order[1] == 0 and seasonal[1] == 0 else "n"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence chatter; the RMSE says how well it did
            result = ARIMA(fitted_on, order=order, seasonal_order=seasonal, trend=trend).fit()
            extended = result.append(target(test))
        return np.asarray(extended.fittedvalues)[fitted_on.size:]
    forecast.__name__ = f"ARIMA{order}" + (f"x{seasonal}" if any(seasonal) else "")
    return forecast


def holt_winters(period: int, trend: bool):
    """Additive Holt-Winters fitted on train + validation, then refitted on all the data with every parameter
    (smoothing and initial states) fixed: statsmodels' own recursion carries the state over the test values."""
    def forecast(train, validation, test) -> np.ndarray:
        from statsmodels.tsa.holtwinters import ExponentialSmoothing

        fitted_on = np.concatenate([target(train), target(validation)])
        shape = dict(trend="add" if trend else None, seasonal="add", seasonal_periods=period)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = ExponentialSmoothing(fitted_on, **shape).fit()
            p = fit.params
            known = dict(initialization_method="known", initial_level=p["initial_level"],
                         initial_trend=p["initial_trend"] if trend else None, initial_seasonal=p["initial_seasons"])
            fixed = dict(smoothing_level=p["smoothing_level"], smoothing_seasonal=p["smoothing_seasonal"],
                         **({"smoothing_trend": p["smoothing_trend"]} if trend else {}))
            whole = np.concatenate([fitted_on, target(test)])
            run = ExponentialSmoothing(whole, **shape, **known).fit(optimized=False, **fixed)
        predictions = np.asarray(run.fittedvalues)
        np.testing.assert_allclose(predictions[: fitted_on.size], fit.fittedvalues, rtol=1e-9, atol=1e-9)
        return predictions[fitted_on.size:]
    forecast.__name__ = f"Holt-Winters ({'trend, ' if trend else ''}season {period})"
    return forecast


def edgernn_default(names: list[str] | None = None):
    """``edgernn.train`` with its defaults and seed 0 on the whole series (its own split is this one), then the
    float model's predictions; ``names`` makes a multivariate model of those columns predicting the first."""
    def forecast(train, validation, test) -> np.ndarray:
        import edgernn

        values = np.concatenate([train, validation, test])
        with tempfile.TemporaryDirectory() as tmp:
            if names is None:
                np.save(Path(tmp) / "series.npy", values)
                result = edgernn.train(str(Path(tmp) / "series.npy"), seed=0, quiet=True)
                predictions = edgernn.predict(result, values)  # a univariate model's: a series
            else:
                path = Path(tmp) / "table.csv"
                np.savetxt(path, values, delimiter=",", header=",".join(names), comments="", fmt="%.10g")
                result = edgernn.train(str(path), columns="all", targets=[names[0]], seed=0, quiet=True)
                predictions = edgernn.predict(result, values)[:, 0]
        forecast.metrics = result.metrics
        return predictions[-test.shape[0] - 1: -1]
    forecast.__name__ = "edgernn (defaults, seed 0)"
    return forecast


# -- series -----------------------------------------------------------------------------------------------------

@dataclass
class Case:
    name: str
    cite: str
    load: object  # () -> values [n] or rows [n, F]
    forecasters: list


def _statsmodels(name: str):
    import statsmodels.api as sm

    return getattr(sm.datasets, name).load_pandas().data


def _via_edgernn(values: np.ndarray, names: list[str] | None = None) -> np.ndarray:
    """The values as edgernn reads them from a file (gaps filled the same way)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data.csv"
        np.savetxt(path, values if names else values[:, None], delimiter=",", header=",".join(names or ["value"]),
                   comments="", fmt="%.10g")
        return load_table(str(path), "all").values if names else load_series(str(path)).values


MACRO = ["unemp", "realgdp", "realcons", "infl", "tbilrate"]
CASES = [
    Case("beijing-temp", "hourly temperature, Beijing airport 2014 (UCI Beijing PM2.5, Liang et al. 2015)",
         lambda: load_series(str(DATA / "beijing_pm25_2014.csv"), column="temp", time_column="time").values,
         [persistence, seasonal_naive(24), holt_winters(24, trend=False), arima((2, 0, 1))]),
    Case("co2", "weekly Mauna Loa CO2 1958-2001 (statsmodels co2; Keeling and Whorf, Scripps)",
         lambda: load_series(str(DATA / "co2_weekly.csv"), column="co2", time_column="date").values,
         [persistence, seasonal_naive(52), holt_winters(52, trend=True)]),
    Case("taylor-demand", "half-hourly electricity demand, England and Wales 2000 (Taylor 2003; R forecast, pmdarima)",
         lambda: load_series(str(DATA / "taylor_demand.csv"), column="demand").values,
         [persistence, seasonal_naive(336), seasonal_naive(48), holt_winters(336, trend=False),
          holt_winters(48, trend=False)]),
    Case("elnino", "monthly Nino 1+2 SST 1950-2010 (statsmodels elnino; NOAA ERSST.V3B)",
         lambda: _via_edgernn(_statsmodels("elnino").iloc[:, 1:].to_numpy(dtype=np.float64).reshape(-1)),
         [persistence, seasonal_naive(12), holt_winters(12, trend=False), arima((1, 0, 0), (0, 1, 1, 12))]),
    Case("sunspots", "yearly sunspot numbers 1700-2008 (statsmodels sunspots; NOAA NGDC)",
         lambda: _via_edgernn(_statsmodels("sunspots")["SUNACTIVITY"].to_numpy(dtype=np.float64)),
         [persistence, seasonal_naive(11), arima((9, 0, 0)), arima((6, 0, 2))]),
    Case("macro-unemp", "quarterly US unemployment 1959-2009 from 5 columns (statsmodels macrodata; FRED, BLS)",
         lambda: _via_edgernn(_statsmodels("macrodata")[MACRO].to_numpy(dtype=np.float64), MACRO),
         [persistence, seasonal_naive(4), arima((2, 1, 0)), arima((1, 1, 1))]),
]
EDGERNN = {"macro-unemp": MACRO}  # multivariate cases: the columns edgernn reads


def rmse(predictions: np.ndarray, truth: np.ndarray) -> float:
    return float(np.sqrt(np.mean((predictions - truth) ** 2)))


def run_case(case: Case) -> dict:
    """Every forecaster of ``case`` on edgernn's split: test RMSE, MAE and seconds each."""
    values = case.load()
    split = chronological_split(values.shape[0])
    parts = values[: split.train_end], values[split.train_end: split.val_end], values[split.val_end:]
    truth = target(parts[2])
    rows = []
    for forecaster in [edgernn_default(EDGERNN.get(case.name)), *case.forecasters]:
        started = time.perf_counter()
        predictions = forecaster(*parts)
        seconds = time.perf_counter() - started
        row = {"forecaster": forecaster.__name__, "test_rmse": rmse(predictions, truth),
               "test_mae": float(np.mean(np.abs(predictions - truth))), "seconds": round(seconds, 2)}
        if hasattr(forecaster, "metrics"):  # edgernn's own figure, for the record: the same targets
            row["train_summary_test_rmse"] = forecaster.metrics["test_rmse"]
        rows.append(row)
        print(f"  {case.name}: {row['forecaster']}: RMSE {row['test_rmse']:.4g} ({seconds:.1f} s)", file=sys.stderr)
    return {"series": case.name, "source": case.cite, "points": int(values.shape[0]),
            "split": {"train": split.train_end, "validation": split.val_end - split.train_end,
                      "test": split.length - split.val_end}, "results": rows}


def markdown(results: list[dict]) -> str:
    lines = ["| series (train/val/test) | forecaster | test RMSE | vs persistence | seconds |", "|---|---|---|---|---|"]
    for case in results:
        base = next(r["test_rmse"] for r in case["results"] if r["forecaster"] == "persistence")
        best = min(r["test_rmse"] for r in case["results"])
        s = case["split"]
        for i, row in enumerate(case["results"]):
            label = f"{case['series']} ({s['train']}/{s['validation']}/{s['test']})" if i == 0 else ""
            mark = "**" if row["test_rmse"] == best else ""
            ratio = row["test_rmse"] / base if base > 0 else math.nan
            lines.append(f"| {label} | {row['forecaster']} | {mark}{row['test_rmse']:.4g}{mark} | {ratio:.2f} | "
                         f"{row['seconds']:.1f} |")
    return "\n".join(lines)


def report(results: list[dict], seconds: float) -> str:
    """benchmarks/classical.md: what was run, the table, where each series comes from."""
    what, how = __doc__.split("\n\n")[0], __doc__.split("\n\n")[2]
    sources = "\n".join(f"- {c['series']}: {c['source']}" for c in results)
    return (f"# edgernn beside classical forecasters\n\n{what}\n\n{how}\n\n"
            f"`python benchmarks/classical.py --json benchmarks/classical_results.json --markdown "
            f"benchmarks/classical.md`, {seconds:.0f} s in all on a shared 2-core x86_64 machine:\n\n"
            f"{markdown(results)}\n\nBold: the lowest test RMSE; vs persistence: its RMSE over persistence's. "
            f"Series:\n{sources}\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", nargs="*", choices=[c.name for c in CASES], help="default: all")
    parser.add_argument("--json", type=Path, help="write the results here (benchmarks/classical_results.json)")
    parser.add_argument("--markdown", type=Path, help="write the table here (benchmarks/classical.md)")
    args = parser.parse_args(argv)
    chosen = [c for c in CASES if not args.series or c.name in args.series]
    started = time.perf_counter()
    results = [run_case(case) for case in chosen]
    table = markdown(results)
    print(table)
    if args.json:
        args.json.write_text(json.dumps({"results": results, "seconds": round(time.perf_counter() - started, 1)},
                                        indent=1) + "\n")
    if args.markdown:
        args.markdown.write_text(report(results, time.perf_counter() - started))
    return 0


if __name__ == "__main__":
    sys.exit(main())
