"""The ``edgernn`` command line: thin click commands over the library.

Exit codes, the same for every command: 0 success, 1 a check failed (verify gate, ``stream --strict``; nothing
else), 2 usage or input error (bad option, bad file, bad bundle, missing optional dependency), 3 an internal
error (a bug). Errors print one ``error: ...`` line (``edgernn.cli_errors`` decides code and text); ``--debug`` or
``EDGERNN_DEBUG=1`` adds the traceback and keeps the exit code. Heavy imports (TensorFlow, interpreters) happen
inside the commands that need them.
"""

from __future__ import annotations

import sys
import traceback

import click

from edgernn.cli_errors import classify
from edgernn.cli_signing import check_trust, register, trust_option, trusted_keys
from edgernn.cli_types import BACKEND, BACKENDS_LIST, CELL, VARIANT, VARIANTS, FloatRange, choice
from edgernn.runtime.cell_table import DEFAULT_CELL
from edgernn.runtime.errors import EXIT_CHECK_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from edgernn.runtime.options import BASELINES, DIFFERENCE_CHOICES, INT8_WEIGHTS, ON_NAN, REFERENCES, SCALES
from edgernn.runtime.variants import DEFAULT_VARIANT
from edgernn.search import DEFAULT_LR, DEFAULT_UNITS
from edgernn.stream.order import MAX_WINDOW
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


def _json(data) -> None:
    """Strict JSON on stdout: NaN and infinities become null (never invalid JSON)."""
    from edgernn.runtime.safe_json import dumps

    click.echo(dumps(data, non_finite="null", indent=2))


def _bundle_path(ctx, param, value):
    """A BUNDLE argument: a model file given instead is the most common slip; say what to do."""
    from pathlib import Path

    if value and Path(value).is_file() and Path(value).suffix == ".keras":
        raise click.BadParameter(f"{value} is a model, not a bundle; export it first: "
                                 f"edgernn export {value} --out BUNDLE", ctx=ctx, param=param)
    return value


class _progress:
    """A progress bar on stderr while a long command runs, only when stderr is a terminal (click's own bar).

    Used as ``with _progress("verify") as progress:``; ``progress(done, total, label)`` advances it.
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


def _season(ctx, param, value):
    """``--season`` text to periods (None: detect, []: none); bad text is a usage error (one line, exit 2)."""
    from edgernn.runtime.errors import DataError
    from edgernn.seasons import parse_season

    try:
        return parse_season(value)
    except DataError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


def data_options(func):
    """--data/--column/--time-column, shared by every command that reads a series."""
    func = click.option("--time-column", default=None, help="CSV column to sort rows by.")(func)
    func = click.option("--column", default=None, help="CSV column to use (default: the only numeric one).")(func)
    return func


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
@click.option("--season", default="auto", show_default=True, metavar="auto|none|P,...", callback=_season,
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

    from edgernn import comparison
    from edgernn.training import train

    replacing = force and Path(out).is_file()
    result = train(data, out, column=column, columns=_column_list(columns), targets=_column_list(",".join(targets)),
                   horizon=horizon, time_column=time_column, cell=cell, units=units, layers=layers, window=window,
                   epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, patience=patience, difference=difference,
                   scale=scale, force=force, quiet=as_json, season=season, baseline=baseline, budget=budget)
    if replacing:
        click.echo(f"replaced {out} (--force)", err=True)
    if as_json:
        _json(_train_summary(result))
        return
    kind = f"window {window}" if window else "streaming"
    click.echo(f"model: {result.model_path} ({cell}, {layers}x{result.metadata['units']} units, {kind})")
    if result.columns is not None and not result.columns.univariate:
        _echo_outputs(result.columns, result.metrics)
    else:
        _echo_test_errors(result.metrics)
    for line in comparison.text(result.metrics, result.columns):
        click.echo(line)


def _train_summary(result) -> dict:
    """``train --json``: the metrics, the preprocessing and why (each column's, for a multivariate model), the
    model's path and mode (and columns), and the comparison with the peers (``edgernn.peers``)."""
    from edgernn import comparison

    summary = {**result.metrics, "preprocessing": result.preprocessing.to_dict(),
               "difference_reason": result.metadata["difference_reason"],
               "model_path": str(result.model_path), "mode": result.metadata["mode"]}
    if result.columns is not None:
        summary["columns"] = result.columns.to_dict()
        summary["preprocessing"] = {c.name: {"difference": c.difference, "offset": c.offset, "divisor": c.divisor,
                                             **({"season": c.period} if c.period > 1 else {})}
                                    for c in result.columns.inputs}
    summary["comparison"] = comparison.table(result.metrics, result.columns)
    summary["verdicts"] = comparison.verdicts(result.metrics, result.columns)
    return summary


def _echo_test_errors(metrics: dict) -> None:
    """A univariate model's test RMSE and MAE beside persistence's, and the verdict."""
    from edgernn import comparison

    click.echo(f"test ({metrics['test_points']} points): RMSE {metrics['test_rmse']:.4g}  MAE {metrics['test_mae']:.4g}")
    click.echo(f"persistence baseline:  RMSE {metrics['persistence_rmse']:.4g}  MAE {metrics['persistence_mae']:.4g}")
    if metrics["persistence_rmse"] > 0:
        verdict = comparison.versus(metrics["test_rmse"], metrics["persistence_rmse"])
        click.echo(f"the model's test RMSE beside persistence's: {verdict}")


def _column_list(text: str | None):
    """``--columns``/``--target`` text: None when not given, ``all``, or the comma-separated names/indices."""
    if not text:
        return None
    return "all" if text.strip() == "all" else [part.strip() for part in text.split(",")]


def _echo_outputs(columns, metrics: dict) -> None:
    """A multivariate model's summary: its columns, then each output's test RMSE beside persistence's."""
    from edgernn import comparison

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

    from edgernn.pipeline import export
    from edgernn.verification import format_table

    if sign_key is not None:  # a key that cannot sign is refused before the export's minutes
        from edgernn.signing import private_key

        private_key(Path(sign_key))
    targets = ",".join([*target, *([targets] if targets else [])]) or None
    result = export(model, out, variants=variants, calibration_data=calibration_data,
                    calibration_steps=calibration_steps, force=force, int8_weights=int8_weights,
                    verify=not no_verify, quiet=as_json, columns=columns, targets=targets, headroom=headroom)
    if result.verify_skipped:
        click.echo(f"verify skipped: {result.verify_skipped}", err=True)
    if as_json:
        _json({"bundle": str(result.bundle), "variants": list(result.manifest.variants), "seconds": result.seconds,
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
        from edgernn.signing import sign

        signed = sign(result.bundle, sign_key)
        click.echo(f"signed {result.bundle}: key {signed.key[:16]}, version {signed.version}", err=as_json)


def mqtt_options(func):
    """The MQTT bridge's options on ``stream`` (``edgernn.stream.bridge``), named as mosquitto_sub names them."""
    options = [
        click.option("--mqtt", "mqtt_url", metavar="URL", default=None,
                     help="Bridge an MQTT broker instead of lines: mqtt://[user[:pass]@]host[:port] or mqtts://... "
                          "(TLS). Every topic is its own stream. Needs pip install 'edgernn[mqtt]'."),
        click.option("--subscribe", "-t", multiple=True, metavar="FILTER",
                     help="(--mqtt) Topic filter to read, e.g. 'sensors/+/temperature'; repeatable."),
        click.option("--publish", default="predictions/{topic}", show_default=True, metavar="TEMPLATE",
                     help="(--mqtt) Where each prediction goes; {topic} is the reading's topic."),
        click.option("--field", default="value", show_default=True,
                     help="(--mqtt) The value's key in a JSON payload (a plain number needs none)."),
        click.option("--time-field", default="ts", show_default=True,
                     help="(--mqtt) The reading's time or sequence number in a JSON payload (a number or ISO 8601): "
                          "echoed in the prediction, and how a redelivered reading is recognised."),
        click.option("--qos", type=click.IntRange(0, 1), default=1, show_default=True,
                     help="(--mqtt) QoS of the subscriptions and the predictions."),
        click.option("--retain/--no-retain", default=True, show_default=True,
                     help="(--mqtt) Publish predictions retained: the broker keeps each topic's last one (for new "
                          "subscribers), and a restart after kill -9 reads them back so none is published twice."),
        click.option("--client-id", "-i", default=None,
                     help="(--mqtt) Stable client id (the broker keeps its session while the bridge is down). "
                          "Default: edgernn-HOST-<digest of the state file path>."),
        click.option("--username", "-u", default=None, help="(--mqtt) Broker user name."),
        click.option("--password", "-P", default=None, help="(--mqtt) Broker password (visible in ps: prefer "
                                                             "--password-file)."),
        click.option("--password-file", type=click.Path(dir_okay=False, exists=True), default=None,
                     help="(--mqtt) Read the broker password from the first line of this file."),
        click.option("--cafile", type=click.Path(dir_okay=False, exists=True), default=None,
                     help="(--mqtt mqtts://) CA certificates to verify the broker with (default: the system's)."),
        click.option("--cert", "certfile", type=click.Path(dir_okay=False, exists=True), default=None,
                     help="(--mqtt mqtts://) Client certificate (PEM)."),
        click.option("--key", "keyfile", type=click.Path(dir_okay=False, exists=True), default=None,
                     help="(--mqtt mqtts://) Client certificate's private key (PEM)."),
        click.option("--insecure", is_flag=True, help="(--mqtt mqtts://) Do not check the broker's host name."),
        click.option("--max-topics", type=click.IntRange(1, 65536), default=1024, show_default=True,
                     help="(--mqtt) At most this many topics (streams); readings of further topics are skipped."),
        click.option("--reorder-window", type=click.IntRange(0, MAX_WINDOW), default=16, show_default=True, metavar="N",
                     help="(--mqtt) Readings with a time are put back in time order per topic: one may arrive "
                          "after up to N newer ones of its topic (a reconnecting publisher sends its newest "
                          "first) and is still stepped in its place. Counted in readings, not seconds: a "
                          "reconnect burst is so many readings at any rate. 0: stepped as they come."),
        click.option("--reorder-hold", type=FloatRange(0, 3600), default=2.0, show_default=True,
                     metavar="SECONDS", help="(--mqtt) How long a reading waits at most for older ones before it "
                     "is stepped, counted while connected and afresh after a reconnection; cover the "
                     "publishers' reconnect delay. A regularly sampled topic's next reading never waits."),
        click.option("--max-ahead", type=FloatRange(0, min_open=True), default=86400.0, show_default=True,
                     metavar="SECONDS", help="(--mqtt) A reading whose time is more than this beyond both its "
                     "topic's last one and the wall clock is refused (to the --late-topic)."),
        click.option("--late-topic", default="{publish}/late", show_default=True, metavar="TEMPLATE",
                     help="(--mqtt) Where a late reading (older than its topic's window) or one too far ahead "
                          "goes, not stepped; {publish} is the prediction topic, {topic} the reading's."),
        click.option("--summary-every", type=FloatRange(0), default=60.0, show_default=True,
                     metavar="SECONDS", help="(--mqtt) Print the counts (predicted, duplicates, late, bad...) "
                                             "this often on stderr when they change; 0: only at exit."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


_LINE_ONLY = {"input_file": "INPUT_FILE", "output_file": "--out", "follow": "--follow", "strict": "--strict",
              "anomaly_log": "--anomaly-log", "json_lines": "--json-lines"}


def _stream_mqtt(bundle, line_options: dict, common: dict, mqtt: dict) -> int:
    """``stream --mqtt``: the line-only options refused, the rest handed to the bridge."""
    from pathlib import Path

    from edgernn.stream.bridge import BridgeConfig, BrokerOptions, run

    given = [name for key, name in _LINE_ONLY.items() if line_options[key]]
    if given:
        raise click.UsageError(f"{', '.join(given)} cannot be used with --mqtt (the broker is the input and output)")
    url = mqtt.pop("mqtt_url")
    config = BridgeConfig(publish=mqtt.pop("publish"), field=mqtt.pop("field"), time_field=mqtt.pop("time_field"),
                          on_nan=common["on_nan"], save_every=common["save_every"],
                          state_file=Path(common["state_file"]) if common["state_file"] else None,
                          interval=line_options["interval"], adaptive=line_options["adaptive"],
                          anomalies=line_options["anomalies"], keep_anomalies=line_options["keep_anomalies"],
                          reorder_window=mqtt.pop("reorder_window"),
                          reorder_hold=mqtt.pop("reorder_hold"), max_ahead=mqtt.pop("max_ahead"),
                          late_topic=mqtt.pop("late_topic"), summary_every=mqtt.pop("summary_every"))
    max_topics = mqtt.pop("max_topics")
    broker = BrokerOptions(url=url, subscribe=list(mqtt.pop("subscribe")), **mqtt)
    return run(bundle, broker, config, variant=common["variant"], backend=common["backend"],
               reset_state=common["reset_state"], max_topics=max_topics, trust=common["trust"])


@cli.command("stream", short_help="Predict the next value for each value on stdin, a file or MQTT topics.")
@click.argument("bundle", type=click.Path(), callback=_bundle_path)
@click.argument("input_file", required=False, default=None)
@click.option("--variant", type=VARIANT, default=DEFAULT_VARIANT, show_default=True, help="Variant to run.")
@click.option("--backend", type=BACKEND, default="auto", show_default=True,
              help="Interpreter; auto picks the first installed one that runs the variant.")
@click.option("--state-file", type=click.Path(dir_okay=False), default=None,
              help="Resume from this state if it exists; save to it every --save-every steps and at exit. "
                   "Locked while in use.")
@click.option("--save-every", type=click.IntRange(min=1), default=100, show_default=True,
              help="Save the state every N predictions (1: every prediction is backed by a saved state).")
@click.option("--reset-state", is_flag=True, help="Ignore an existing --state-file and start over (only an edgernn "
              "state is ever replaced).")
@click.option("--on-nan", type=choice(ON_NAN), default="skip", show_default=True,
              help="A NaN/inf value: skip it (prints nan, state untouched), hold the last value, or stop.")
@click.option("--strict", is_flag=True, help="Stop with exit 1 at the first non-numeric line.")
@click.option("--out", "--output", "output_file", type=click.Path(dir_okay=False), default=None,
              help="Append predictions to this file instead of stdout; with --state-file, exactly once "
                   "across kill -9 and restart.")
@click.option("--follow", is_flag=True,
              help="Do not stop at the end: wait for lines appended to INPUT_FILE and follow it across log "
                   "rotation (like tail -F); a FIFO is kept open for the next writer.")
@click.option("--interval", type=FloatRange(0, 1, min_open=True, max_open=True), default=None,
              metavar="LEVEL", help="Print prediction,low,high: the interval calibrated at export at this level "
              "(e.g. 0.9; the bundle's levels are in its manifest).")
@click.option("--adaptive", is_flag=True,
              help="Track the interval's width online to hold its coverage when the data drifts.")
@click.option("--anomalies", is_flag=True,
              help="Also print score,anomaly for each value (score > 1: outside the interval predicted for it) and "
                   "report each anomaly on stderr (level 0.99 unless --interval).")
@click.option("--keep-anomalies", is_flag=True,
              help="With --anomalies, feed a flagged value to the model as read (default: clipped to its interval, "
                   "so a spike does not echo in the predictions after it; 4 or more in a row are fed as read).")
@click.option("--anomaly-log", type=click.Path(dir_okay=False), default=None,
              help="Append anomaly reports to this file instead of stderr (exactly once, like --out).")
@click.option("--json-lines", is_flag=True,
              help="Write one JSON object per line naming each output ({\"prediction\": ...} for one).")
@trust_option
@mqtt_options
def stream_command(bundle, input_file, variant, backend, state_file, save_every, reset_state, on_nan, strict,
                   output_file, follow, interval, adaptive, anomalies, keep_anomalies, anomaly_log, json_lines, trust,
                   **mqtt):
    """Run a bundle statefully: one value per input line, one prediction per output line, flushed.

    Reads INPUT_FILE (a file or a FIFO) or stdin. A non-numeric or non-UTF-8 line is reported on stderr with its
    line number and skipped (--strict: exit 1). A multivariate model reads one row of comma-separated numbers
    per line (a first line naming its columns is checked and skipped) and writes one CSV row of its outputs.

    \b
    What a restart with --state-file resumes:
    - the hidden state, only for the same model file and quantization;
    - the input position, only in the same regular file (device, inode and a fingerprint of what was read);
      a FIFO, a pipe or a replaced or rotated file is never skipped: it is read from where it stands;
    - with --out FILE, that same file, cut back to what the state vouches for: exactly once across kill -9;
      lines others appended after the state's are never cut (exit 2, saying what to do).
    From a FIFO or pipe, lines are taken one at a time: a kill loses at most the line in hand.
    SIGTERM finishes the line in hand, saves and exits 0; so does a reader closing stdout (| head).

    With --mqtt URL, a bridge instead: readings from the --subscribe topics (a number, or JSON with --field and
    --time-field), each topic its own stream, one JSON prediction per reading to --publish; with --state-file
    every topic resumes after a restart, and a redelivered reading is not predicted twice. See README.
    """
    keys = trusted_keys(trust)
    if mqtt["mqtt_url"] is not None:
        code = _stream_mqtt(bundle, dict(input_file=input_file, output_file=output_file, follow=follow,
                                         strict=strict, interval=interval, adaptive=adaptive, anomalies=anomalies,
                                         keep_anomalies=keep_anomalies, anomaly_log=anomaly_log,
                                         json_lines=json_lines),
                            dict(variant=variant, backend=backend, state_file=state_file, save_every=save_every,
                                 reset_state=reset_state, on_nan=on_nan, trust=keys), mqtt)
        if code:
            sys.exit(code)
        return
    given = [f"--{name.replace('_', '-')}" for name, value in mqtt.items()
             if value not in ((), None, False) and click.get_current_context().get_parameter_source(name).name
             != "DEFAULT"]
    if given:
        raise click.UsageError(f"{', '.join(given)} {'needs' if len(given) == 1 else 'need'} --mqtt URL")
    from edgernn.stream.service import run

    code = run(bundle, input_file, variant=variant, backend=backend, state_file=state_file, save_every=save_every,
               reset_state=reset_state, on_nan=on_nan, strict=strict, output_file=output_file, follow=follow,
               interval=interval, adaptive=adaptive, anomalies=anomalies, anomaly_log=anomaly_log,
               json_lines=json_lines, trust=keys, keep_anomalies=keep_anomalies)
    if code:
        sys.exit(code)


@cli.command("verify", short_help="Measure each variant against the float model; a gate with exit codes.")
@click.argument("bundle", type=click.Path(), callback=_bundle_path)
@click.option("--data", default=None, help="counting, sine or a .csv/.npy (default: the held-out test split "
              "recorded at training time).")
@click.option("--column", default=None, help="CSV column to use.")
@click.option("--steps", type=click.IntRange(min=10), default=10_000, show_default=True,
              help="Steps to run with the state carried (the data is repeated if shorter).")
@click.option("--variants", type=VARIANTS, default="all", show_default=True,
              help="Comma-separated variants to verify, or all (those in the bundle).")
@click.option("--backend", type=BACKEND, default="auto", show_default=True,
              help="Interpreter to verify on (each variant also runs on every other installed one).")
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
def verify_command(bundle, data, column, steps, variants, backend, max_nrmse, as_json, report_dir, reference,
                   max_clipped, trust):
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
    with _progress("verify") as progress:
        result = verify(bundle, data, column=column, steps=steps, variants=variants, backend=backend,
                        max_nrmse=parse_thresholds(max_nrmse), reference=reference, max_clipped=max_clipped,
                        progress=progress)
    if as_json:
        _json({**result.to_dict(), "signature": signature.split(": ", 1)[1]})
    else:
        click.echo(format_table(result))
    if report_dir:
        from edgernn.report import write_report

        paths, note = write_report(result, report_dir)
        click.echo(f"report: {', '.join(str(p) for p in paths)}", err=as_json)
        if note:
            click.echo(f"note: {note}", err=True)
    if not result.passed:
        sys.exit(EXIT_CHECK_FAILED)


@cli.command("bench", short_help="Latency, throughput and footprint per variant and backend.")
@click.argument("bundle", type=click.Path(), callback=_bundle_path)
@click.option("--variants", type=VARIANTS, default="all", show_default=True,
              help="Comma-separated variants to measure, or all (those in the bundle).")
@click.option("--backend", "backends", type=BACKENDS_LIST, default=None,
              help="Comma-separated backends to measure (default: every installed one).")
@click.option("--steps", type=click.IntRange(min=10), default=2000, show_default=True,
              help="Timed steps per variant and backend (after a warm-up).")
@click.option("--streams", type=click.IntRange(min=1), default=256, show_default=True,
              help="Streams for the one-predictor vs separate-predictors comparison.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
@trust_option
def bench_command(bundle, variants, backends, steps, streams, as_json, trust):
    """Measure the cost of a prediction on this machine, as ratios against baselines from the same run.

    Per variant x backend: step latency through StreamingPredictor (median, p99 after warm-up), throughput
    and file size. Baselines: the raw interpreter floor (the same .tflite driven by hand), N streams in one
    predictor vs N predictors. Process: import time of edgernn.runtime, peak RSS of a runtime-only process.
    No TensorFlow is imported.
    """
    from edgernn.bench import bench, format_table

    check_trust(bundle, trust)
    result = bench(bundle, variants=variants, backends=backends, steps=steps, streams=streams)
    if as_json:
        _json(result.to_dict())
    else:
        click.echo(format_table(result))


@cli.command("c-array", short_help="Write a .tflite variant as C source for TensorFlow Lite Micro firmware.")
@click.argument("bundle", type=click.Path(), callback=_bundle_path)
@click.option("--variant", type=VARIANT, default=DEFAULT_VARIANT, show_default=True, help="Variant to write.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Directory for the C files.")
@click.option("--name", default="edgernn_model", show_default=True,
              help="C name of the array (and file stem): a C identifier of at most 64 characters.")
@click.option("--force", is_flag=True, help="Replace NAME.h, NAME.cc and NAME_example.cc if they exist in --out.")
@click.option("--json", "as_json", is_flag=True, help="Print the files written as JSON on stdout.")
@trust_option
def c_array_command(bundle, variant, out, name, force, as_json, trust):
    """Write NAME.h, NAME.cc (the model bytes, 16-byte aligned) and NAME_example.cc (a TFLM step loop).

    The header holds the tensor arena size TFLM needs (measured here with tflite-micro, else as measured at
    export), each tensor's position and quantization (read from the model file), and the preprocessing to
    encode raw readings. Variants TFLM cannot run (float16, dynamic, ONNX, window models) are refused (exit 2).
    The three files are written together or not at all; --out must not be inside a bundle.
    """
    from edgernn.c_array import write

    check_trust(bundle, trust)
    written = write(bundle, variant, out, name, force=force)
    if as_json:
        _json({"variant": variant, "files": [str(path) for path in written]})
        return
    for path in written:
        click.echo(str(path))


@cli.command("c-step", short_help="Write the step as plain C for firmware: no interpreter, no arena.")
@click.argument("bundle", type=click.Path(), callback=_bundle_path)
@click.option("--variant", type=VARIANT, default=DEFAULT_VARIANT, show_default=True,
              help="Variant to write: tflite-int8 (integer arithmetic only), tflite-float32 or onnx-float32.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Directory for the C files.")
@click.option("--name", default="rnn", show_default=True,
              help="Prefix of the C names (NAME_predict, NAME_state) and file stem: a C identifier.")
@click.option("--force", is_flag=True, help="Replace NAME.h and NAME.c if they exist in --out.")
@click.option("--json", "as_json", is_flag=True, help="Print the files and the footprint as JSON on stdout.")
@trust_option
def c_step_command(bundle, variant, out, name, force, as_json, trust):
    """Write NAME.h and NAME.c: NAME_predict(&state, reading) returns the next value's prediction in raw units,
    the bundle's scaling, differencing and baseline included, state in a struct you own, weights const.

    Prints flash and RAM (compiled here with -Os: text + data; the state + static data + every stack frame)
    beside the arena TensorFlow Lite Micro needs for the same variant. Several values in or out, a season and
    window models are refused (exit 2). The files are written together or not at all.
    """
    from edgernn.firmware.step import state_bytes, write
    from edgernn.runtime.bundle import Bundle

    check_trust(bundle, trust)
    written, measured = write(bundle, variant, out, name, force=force, measure=True)
    opened = Bundle.open(bundle)
    total = sum(units for _, units in opened.manifest.model.state_inputs())
    state = state_bytes(1 if variant == "tflite-int8" else 4, total)
    ram = state + measured["static_ram_bytes"] + (measured["stack_bytes"] or 0)
    arena = (opened.variant(variant).interpreters.get("tflm") or {}).get("arena_bytes")
    result = {"variant": variant, "files": [str(path) for path in written], **measured, "state_bytes": state,
              "ram_bytes": ram, "tflm_arena_bytes": arena}
    if as_json:
        _json(result)
        return
    for path in written:
        click.echo(str(path))
    stack = "unknown" if measured["stack_bytes"] is None else f"{measured['stack_bytes']:,}"
    versus = f"; TFLM's arena for {variant}: {arena:,} B ({ram / arena:.2f}x)" if arena else ""
    click.echo(f"flash {measured['flash_bytes']:,} B, RAM {ram:,} B (state {state:,} + static "
               f"{measured['static_ram_bytes']:,} + stack {stack}), {measured['compiler']} -Os{versus}")


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

    from edgernn.demo import new_demo_dir, run_demo
    from edgernn.runtime.errors import ExportError

    target = Path(out) if out else new_demo_dir()
    if target.exists():
        raise ExportError(f"{target} already exists; choose a new --out directory")
    from edgernn.verification import format_table

    summary = run_demo(target, cell=cell, quick=quick)
    metrics = summary["metrics"]
    if as_json:
        _json({**summary, "out": str(summary["out"]), "model_path": str(summary["model_path"]),
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
