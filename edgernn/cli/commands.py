"""The ``edgernn`` command line: thin click commands over the library.

Exit codes, the same for every command: 0 success, 1 a check failed (verify gate, ``stream --strict``; nothing
else), 2 usage or input error (bad option, bad file, bad bundle, missing optional dependency), 3 an internal
error (a bug). Errors print one ``error: ...`` line (``edgernn.cli.exit_codes`` decides code and text); ``--debug`` or
``EDGERNN_DEBUG=1`` adds the traceback and keeps the exit code. Heavy imports (TensorFlow, interpreters) happen
inside the commands that need them.
"""

from __future__ import annotations

import sys
import traceback

import click

from edgernn.cli import device_commands, stream_commands
from edgernn.cli.common_options import bundle_path, column_list, data_options, print_json, progress, season_periods
from edgernn.cli.exit_codes import classify
from edgernn.cli.signing_commands import check_trust, register, trust_option
from edgernn.cli.option_types import BACKEND_CHOICES, CELL, VARIANTS, FloatRange, choice
from edgernn.runtime.cell_table import DEFAULT_CELL
from edgernn.errors import EXIT_CHECK_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from edgernn.runtime.options import BASELINES, DIFFERENCE_CHOICES, INT8_WEIGHTS, REFERENCES, SCALES
from edgernn.runtime.variants import DEFAULT_VARIANT
from edgernn.training.search import DEFAULT_LR, DEFAULT_UNITS
from edgernn.version import __version__



class _Group(click.Group):
    """One line on stderr and the right exit code for every way a command can end, never a bare traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.exceptions.Abort):
            raise
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(EXIT_INTERRUPTED)
        except Exception as exc:  # noqa: BLE001 - the boundary: classify() maps every kind to a code and a line
            code, message = classify(exc)
            if (ctx.obj or {}).get("debug"):
                traceback.print_exc()
            click.echo(f"error: {message}", err=True)
            ctx.exit(code)

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        """Like click's standalone mode, but usage errors are one line too (``error: ... (see ... --help)``)."""
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.NoArgsIsHelpError as exc:  # no command given: the help, as a usage error
            click.echo(exc.ctx.get_help(), err=True)
            code = EXIT_USAGE
        except click.UsageError as exc:
            where = exc.ctx.command_path if exc.ctx else "edgernn"
            click.echo(f"error: {exc.format_message()} (see {where} --help)", err=True)
            code = EXIT_USAGE
        except click.ClickException as exc:
            click.echo(f"error: {exc.format_message()}", err=True)
            code = exc.exit_code
        except click.exceptions.Abort:
            click.echo("interrupted", err=True)
            code = EXIT_INTERRUPTED
        if not standalone_mode:
            return code
        sys.exit(code if isinstance(code, int) else EXIT_OK)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edgernn")
@click.option("--debug", is_flag=True, envvar="EDGERNN_DEBUG",
              help="Print the traceback with an error (the exit code stays the same).")
@click.pass_context
def cli(ctx, debug):
    """Train a recurrent network, export quantized step models, run them statefully on a device.

    Exit codes: 0 success, 1 a check failed, 2 usage or input error, 3 internal error.
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


register(cli)
stream_commands.register(cli)
device_commands.register(cli)


@cli.command("train", short_help="Train a model on a series and save it as .keras.")
@click.option("--data", "data", default="sine", show_default=True,
              help="counting (0..99), sine (seeded noisy sine), lagged (follower, driver), or a .csv/.npy file.")
@data_options
@click.option("--columns", default=None,
              help="Several input columns: names or 0-based indices, comma-separated, or all (every numeric one; "
                   "the default with --target or --horizon).")
@click.option("--target", "targets", multiple=True,
              help="Input column to predict (repeatable or comma-separated; default: the first input column).")
@click.option("--horizon", type=click.IntRange(1), default=None,
              help="Predict each target's next H values (default 1).")
@click.option("--out", type=click.Path(dir_okay=False), default="model.keras", show_default=True,
              help="Where to save the model (.keras).")
@click.option("--cell", type=CELL, default=DEFAULT_CELL, show_default=True, help="Recurrent cell.")
@click.option("--units", type=click.IntRange(1), default=DEFAULT_UNITS, show_default=True,
              help="Units per recurrent layer.")
@click.option("--layers", type=click.IntRange(1), default=1, show_default=True, help="Stacked recurrent layers.")
@click.option("--window", type=click.IntRange(1), default=None,
              help="Train the classic window model (N values in, next value out) instead of a streaming one.")
@click.option("--epochs", type=click.IntRange(1), default=40, show_default=True, help="At most this many epochs.")
@click.option("--batch-size", type=click.IntRange(1), default=32, show_default=True,
              help="Sequences per training batch.")
@click.option("--lr", type=float, default=DEFAULT_LR, show_default=True, help="Adam learning rate.")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True,
              help="Same seed, same weights on this machine.")
@click.option("--patience", type=click.IntRange(0), default=10, show_default=True,
              help="Early stopping on validation loss (best weights restored); 0 turns it off.")
@click.option("--difference", type=choice(DIFFERENCE_CHOICES), default="auto", show_default=True,
              help="First differencing; auto decides from the training data (trend test).")
@click.option("--scale", type=choice(SCALES), default="standard", show_default=True,
              help="Scaling fitted on the training split: mean/std, training range to [-1, 1], or none.")
@click.option("--season", default="auto", show_default=True, metavar="auto|none|P,...", callback=season_periods,
              help="Seasonal periods (in steps): auto finds them on the training split (autocorrelation, the "
                   "time column's spacing) for the summary's peers; given (e.g. 48,336) they are also offered "
                   "to the model, kept only if they pay on validation; none uses none.")
@click.option("--baseline", type=choice(BASELINES), default="auto", show_default=True,
              help="Under a seasonal target: auto puts Holt-Winters under the network where it beats the season's "
                   "naive forecasts on validation; naive keeps the value one season back. Under a one-column model "
                   "that does not beat persistence on validation, auto and naive blend the network into "
                   "persistence; none keeps the network alone (for c-array firmware).")
@click.option("--budget", type=FloatRange(0, 86400), default=None, metavar="SECONDS",
              help="Also try a few other network sizes and learning rates while the time allows, and keep the "
                   "one with the lowest validation RMSE (0: the given size only; default: 30 s for a series of at "
                   "most 1,000 training rows when a streaming model's --units and --lr are left at their defaults, "
                   "else 0).")
@click.option("--force", is_flag=True, help="Replace an existing --out file (atomically).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
def train_command(data, column, time_column, columns, targets, horizon, out, cell, units, layers, window, epochs,
                  batch_size, lr, seed, patience, difference, scale, season, baseline, budget, force, as_json):
    """Train the classic model family (recurrent layers + Dense(1), adam, mse) on a series.

    The default is a STREAMING model: trained sequence-to-sequence on long chunks, so it learns what the
    device does, one step per sample with the hidden state carried forward forever. A --window model
    (the classic exercise) run statefully over an unbounded stream would see hidden states it was never
    trained on; export runs it as a fixed window instead. Data is split 70/15/15 in time order; the
    summary compares validation and test errors (raw units) with persistence (predicting the last value),
    seasonal naive (the value one period back) and a classical peer (Holt-Winters or exponential smoothing,
    statsmodels), and says which to deploy instead when the model does not beat them on validation.

    Several columns in (--columns), several targets (--target) or several steps ahead (--horizon) train a
    multivariate model: each column differenced (auto: decided per column) and scaled on its own, and each
    target x step compared with persistence at that step.
    """
    from pathlib import Path

    from edgernn.training import comparison
    from edgernn.training.trainer import train

    replacing = force and Path(out).is_file()
    result = train(data, out, column=column, columns=column_list(columns), targets=column_list(",".join(targets)),
                   horizon=horizon, time_column=time_column, cell=cell, units=units, layers=layers, window=window,
                   epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, patience=patience, difference=difference,
                   scale=scale, force=force, quiet=as_json, season=season, baseline=baseline, budget=budget)
    if replacing:
        click.echo(f"replaced {out} (--force)", err=True)
    if as_json:
        print_json(_train_summary(result))
        return
    kind = f"window {window}" if window else "streaming"
    click.echo(f"model: {result.model_path} ({cell}, {layers}x{result.metadata['units']} units, {kind})")
    if not result.columns.univariate:
        _echo_outputs(result.columns, result.metrics)
    else:
        _echo_test_errors(result.metrics)
    for line in comparison.text(result.metrics, result.columns):
        click.echo(line)


def _train_summary(result) -> dict:
    """``train --json``: the metrics, the preprocessing and why (each column's, for a multivariate model), the
    model's path and mode (and columns), and the comparison with the peers (``edgernn.training.peers``)."""
    from edgernn.training import comparison

    summary = {**result.metrics, "preprocessing": result.preprocessing.to_dict(),
               "difference_reason": result.metadata["difference_reason"],
               "model_path": str(result.model_path), "mode": result.metadata["mode"]}
    if result.columns.named:  # a plain univariate model's is its preprocessing
        summary["columns"] = result.columns.to_dict()
        summary["preprocessing"] = {c.name: {"difference": c.difference, "offset": c.offset, "divisor": c.divisor,
                                             **({"season": c.period} if c.period > 1 else {})}
                                    for c in result.columns.inputs}
    summary["comparison"] = comparison.table(result.metrics, result.columns)
    summary["verdicts"] = comparison.verdicts(result.metrics, result.columns)
    return summary


def _echo_test_errors(metrics: dict) -> None:
    """A univariate model's test RMSE and MAE beside persistence's, and the verdict."""
    from edgernn.training import comparison

    click.echo(f"test ({metrics['test_points']} points): RMSE {metrics['test_rmse']:.4g}  MAE {metrics['test_mae']:.4g}")
    click.echo(f"persistence baseline:  RMSE {metrics['persistence_rmse']:.4g}  MAE {metrics['persistence_mae']:.4g}")
    if metrics["persistence_rmse"] > 0:
        verdict = comparison.versus(metrics["test_rmse"], metrics["persistence_rmse"])
        click.echo(f"the model's test RMSE beside persistence's: {verdict}")


def _echo_outputs(columns, metrics: dict) -> None:
    """A multivariate model's summary: its columns, then each output's test RMSE beside persistence's."""
    from edgernn.training import comparison

    click.echo(f"inputs: {', '.join(columns.features)}; outputs: {', '.join(columns.output_names())}")
    for name in columns.output_names():
        rmse, baseline = metrics[f"test_rmse[{name}]"], metrics[f"persistence_rmse[{name}]"]
        verdict = f" ({comparison.versus(rmse, baseline)})" if baseline > 0 else ""
        click.echo(f"test {name} ({metrics[f'test_points[{name}]']} points): RMSE {rmse:.4g}  persistence "
                   f"{baseline:.4g}{verdict}")


@cli.command("export", short_help="Export a .keras model to a bundle of TFLite/ONNX step models.")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--out", required=True, type=click.Path(), help="Bundle directory to create.")
@click.option("--variants", type=VARIANTS, default="all", show_default=True,
              help="Comma-separated variants to export, or all.")
@click.option("--calibration-data", default=None,
              help="Series for calibration: a .csv/.npy, sine or counting (default: the model's training and "
                   "validation splits).")
@click.option("--calibration-steps", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Calibration samples, spread over the whole calibration series (the float model runs over all of "
                   "it, so the states are real and the range is the series' range).")
@click.option("--force", is_flag=True,
              help="Replace an existing bundle (atomically); a directory that is not a bundle is never replaced.")
@click.option("--int8-weights", type=choice(INT8_WEIGHTS), default="per-channel",
              show_default=True,
              help="Scales of tflite-int8's weights. per-tensor runs on tflite-runtime 2.14's optimized aarch64 "
                   "kernels, which crash on per-channel ones (edgernn then falls back to its reference kernels).")
@click.option("--headroom", type=FloatRange(0, 10), default=0.0, show_default=True, metavar="SHARE",
              help="Widen the integer variants' calibrated input range by this share of its span on each side "
                   "(e.g. 0.25), so data a little beyond the training range is not clipped; costs resolution.")
@click.option("--columns", "columns", default=None, metavar="A,B,...",
              help="Your own model with several input features: the columns of --calibration-data feeding it, in "
                   "order (models trained by edgernn carry theirs).")
@click.option("--target", "target", multiple=True,
              help="Your own model with several outputs: what they predict, each target's steps ahead in turn "
                   "(repeatable or comma-separated; default: the first column, for one output).")
@click.option("--targets", default=None, hidden=True, help="The spelling before --target, still read.")
@click.option("--no-verify", is_flag=True, help="Skip the accuracy gate after export.")
@click.option("--sign", "sign_key", type=click.Path(dir_okay=False), default=None, metavar="KEY",
              help="Sign the bundle with this private key once it is written and has passed the gate.")
@click.option("--json", "as_json", is_flag=True, help="Print the result (and the gate's) as JSON on stdout.")
def export_command(model, out, variants, calibration_data, calibration_steps, force, int8_weights, headroom,
                   columns, target, targets, no_verify, sign_key, as_json):
    """Turn a trained Keras recurrent model into the files a device runs one step at a time.

    Streaming models become a one-step model with explicit state inputs/outputs (x, h0, c0... -> y, h0_out,
    ...); window models an unrolled fixed-length model. Full-integer variants are calibrated on real
    (x, state) pairs from the float model. The bundle is written atomically. Exit 1 if a variant fails the
    verify gate.
    """
    from pathlib import Path

    from edgernn import export
    from edgernn.verification import format_table

    if sign_key is not None:  # a key that cannot sign is refused before the export's minutes
        from edgernn.exporting.signer import private_key

        private_key(Path(sign_key))
    targets = ",".join([*target, *([targets] if targets else [])]) or None
    result = export(model, out, variants=variants, calibration_data=calibration_data,
                    calibration_steps=calibration_steps, force=force, int8_weights=int8_weights,
                    verify=not no_verify, quiet=as_json, columns=columns, targets=targets, headroom=headroom)
    if result.verify_skipped:
        click.echo(f"verify skipped: {result.verify_skipped}", err=True)
    if as_json:
        print_json({"bundle": str(result.bundle), "variants": list(result.manifest.variants), "seconds": result.seconds,
               "verify": result.verify.to_dict() if result.verify else None})
    else:
        click.echo(f"bundle: {result.bundle} ({len(result.manifest.variants)} variants, {result.seconds:.1f} s)")
        if result.verify:
            click.echo(format_table(result.verify))
    if result.verify is not None and not result.verify.passed:
        if sign_key is not None:
            click.echo("not signed: a variant failed the gate", err=True)
        sys.exit(EXIT_CHECK_FAILED)
    if sign_key is not None:
        from edgernn.exporting.signer import sign

        signed = sign(result.bundle, sign_key)
        click.echo(f"signed {result.bundle}: key {signed.key[:16]}, version {signed.version}", err=as_json)


@cli.command("verify", short_help="Measure each variant against the float model; a gate with exit codes.")
@click.argument("bundle", type=click.Path(), callback=bundle_path)
@click.option("--data", default=None, help="counting, sine or a .csv/.npy (default: the held-out test split "
              "recorded at training time).")
@data_options
@click.option("--columns", default=None, metavar="A,B,...",
              help="A multivariate model: the --data file's columns feeding its inputs, in order (default: the "
                   "model's own column names).")
@click.option("--steps", type=click.IntRange(min=10), default=10_000, show_default=True,
              help="Steps to run with the state carried (the data is repeated if shorter).")
@click.option("--variants", type=VARIANTS, default="all", show_default=True,
              help="Comma-separated variants to verify, or all (those in the bundle).")
@click.option("--backend", "backends", type=BACKEND_CHOICES, default="auto", show_default=True,
              help="Interpreters to verify on, comma-separated: each variant is gated on each (the first's run is "
                   "also cross-checked on every other installed one).")
@click.option("--max-nrmse", multiple=True, metavar="VARIANT=PCT",
              help="Override a variant's NRMSE threshold (% of range); repeatable.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout (nothing else).")
@click.option("--report", "report_dir", type=click.Path(file_okay=False), default=None,
              help="Write report.json, report.md and PNG plots (plots need matplotlib) into this directory.")
@click.option("--reference", type=choice(REFERENCES), default="auto", show_default=True,
              help="keras: run the float model (needs TensorFlow); stored: the float outputs recorded in the "
                   "bundle at export (for a device); auto: keras where TensorFlow is installed.")
@click.option("--max-clipped", type=FloatRange(min=0), default=1.0, show_default=True,
              help="Fail an integer variant whose input quantization clipped more than this % of steps.")
@trust_option
def verify_command(bundle, data, column, time_column, columns, steps, variants, backends, max_nrmse, as_json,
                   report_dir, reference, max_clipped, trust):
    """Step every variant over a long sequence with its state carried and compare with the float model.

    Reports NRMSE vs float (% of the float output's range), max error, drift (error over the last 10% of
    steps / first 10%) and task RMSE beside the float model's and persistence's. Default gate: float32
    NRMSE <= 0.001% (max error <= 1e-4 of range), float16 <= 0.5, int16x8 <= 1, dynamic, int8 and onnx-int8
    <= 2; drift <= 2. Exit 0 all pass, 1 any fails, 2 usage or unreadable bundle. Progress goes to stderr
    when it is a terminal.
    """
    from edgernn.runtime.signing import describe
    from edgernn.verification import format_table, parse_thresholds, verify

    check_trust(bundle, trust)
    signature = describe(bundle)
    if not as_json:
        click.echo(signature)
    with progress("verify") as update:
        result = verify(bundle, data, column=column, columns=column_list(columns), time_column=time_column,
                        steps=steps, variants=variants, backend=backends,
                        max_nrmse=parse_thresholds(max_nrmse), reference=reference, max_clipped=max_clipped,
                        progress=update)
    if as_json:
        print_json({**result.to_dict(), "signature": signature.split(": ", 1)[1]})
    else:
        click.echo(format_table(result))
    if report_dir:
        from edgernn.verification.report import write_report

        paths, note = write_report(result, report_dir)
        click.echo(f"report: {', '.join(str(p) for p in paths)}", err=as_json)
        if note:
            click.echo(f"note: {note}", err=True)
    if not result.passed:
        sys.exit(EXIT_CHECK_FAILED)


@cli.command("demo", short_help="Run the whole pipeline on built-in data.")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Output directory (must not exist; default: a new ./edgernn-demo[-N]).")
@click.option("--cell", type=CELL, default=DEFAULT_CELL, show_default=True, help="Recurrent cell.")
@click.option("--quick", is_flag=True, help="Fewer epochs: a smoke run in well under a minute.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
def demo_command(out, cell, quick, as_json):
    """Train, export, verify and stream on the built-in sine, then print a table per variant.

    Everything is written under --out. Exit 1 if any variant fails the verify gate.
    """
    from pathlib import Path

    from edgernn.cli.demo import new_demo_dir, run_demo
    from edgernn.errors import ExportError

    target = Path(out) if out else new_demo_dir()
    if target.exists():
        raise ExportError(f"{target} already exists; choose a new --out directory")
    from edgernn.verification import format_table

    summary = run_demo(target, cell=cell, quick=quick)
    metrics = summary["metrics"]
    if as_json:
        print_json({**summary, "out": str(summary["out"]), "model_path": str(summary["model_path"]),
               "bundle": str(summary["bundle"]), "verify": summary["verify"].to_dict()})
    else:
        click.echo(f"model: {summary['model_path']} (trained in {summary['train_seconds']:.0f} s): test RMSE "
                   f"{metrics['test_rmse']:.4f} vs persistence {metrics['persistence_rmse']:.4f}")
        click.echo(format_table(summary["verify"]))
        click.echo(f"stream: {DEFAULT_VARIANT}, {summary['stream_step_us']:.0f} us per step (Python loop included), "
                   f"RMSE vs the true next value {summary['stream_rmse']:.4f}")
        click.echo(f"bundle: {summary['bundle']}  (verify.json inside)")
    if not summary["verify"].passed:
        sys.exit(EXIT_CHECK_FAILED)


def main() -> None:
    """Console-script entry point."""
    cli(obj={}, prog_name="edgernn")


if __name__ == "__main__":
    main()
