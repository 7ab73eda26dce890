"""``edgernn stream`` (lines in, predictions out) and ``edgernn bridge`` (MQTT topics in, predictions published):
two commands, one set of predictor options (``predictor_options``). Registered on the group by ``register``."""

from __future__ import annotations

import sys

import click

from edgernn.cli.common_options import bundle_path, column_list
from edgernn.cli.option_types import BACKEND_CHOICES, VARIANT, FloatRange, choice
from edgernn.cli.signing_commands import trust_option, trusted_keys
from edgernn.runtime.options import ON_NAN
from edgernn.runtime.variants import DEFAULT_VARIANT
from edgernn.stream.order import MAX_WINDOW


def predictor_options(func):
    """The options of the predictor behind both commands: what runs, its state across restarts, NaNs, intervals
    and anomalies; the same names on ``stream`` and ``bridge`` (details: docs/device.md, docs/intervals.md)."""
    options = [
        click.option("--variant", type=VARIANT, default=DEFAULT_VARIANT, show_default=True, help="Variant to run."),
        click.option("--backend", "backend", type=BACKEND_CHOICES, default="auto", show_default=True,
                     callback=lambda ctx, param, value: ",".join(value),
                     help="Interpreter, or a preference list (c,litert): the first that loads the variant here."),
        click.option("--state-file", type=click.Path(dir_okay=False), default=None,
                     help="Resume from this state and save to it (locked while in use)."),
        click.option("--save-every", type=click.IntRange(min=1), default=100, show_default=True,
                     help="Save the state every N predictions."),
        click.option("--reset-state", is_flag=True, help="Ignore an existing --state-file and start over."),
        click.option("--on-nan", type=choice(ON_NAN), default="skip", show_default=True,
                     help="A NaN/inf value: skip it, hold the last value, or stop."),
        click.option("--interval", type=FloatRange(0, 1, min_open=True, max_open=True), default=None,
                     metavar="LEVEL", help="Also give the interval calibrated at export at this level (e.g. 0.9)."),
        click.option("--adaptive", is_flag=True, help="Track the interval's width online (drifting data)."),
        click.option("--anomalies", is_flag=True,
                     help="Also score each value; report anomalies (level 0.99 unless --interval)."),
        click.option("--keep-anomalies", is_flag=True,
                     help="Feed a flagged value as read (default: clipped to its interval)."),
        trust_option,
    ]
    for option in reversed(options):
        func = option(func)
    return func


def mqtt_options(func):
    """The bridge's broker and topic options (``edgernn.stream.bridge``), named as mosquitto_sub names them."""
    options = [
        click.option("--subscribe", "-t", multiple=True, metavar="FILTER",
                     help="Topic filter to read, e.g. 'sensors/+/temperature'; repeatable."),
        click.option("--publish", default="predictions/{topic}", show_default=True, metavar="TEMPLATE",
                     help="Where each prediction goes; {topic} is the reading's topic."),
        click.option("--field", default="value", show_default=True,
                     help="The value's key in a JSON payload (a plain number needs none)."),
        click.option("--time-field", default="ts", show_default=True,
                     help="The reading's time or sequence number in a JSON payload (a number or ISO 8601): "
                          "echoed in the prediction, and how a redelivered reading is recognised."),
        click.option("--qos", type=click.IntRange(0, 1), default=1, show_default=True,
                     help="QoS of the subscriptions and the predictions."),
        click.option("--retain/--no-retain", default=True, show_default=True,
                     help="Publish predictions retained: the broker keeps each topic's last one (for new "
                          "subscribers), and a restart after kill -9 reads them back so none is published twice."),
        click.option("--client-id", "-i", default=None,
                     help="Stable client id (the broker keeps its session while the bridge is down). "
                          "Default: edgernn-HOST-<digest of the state file path>."),
        click.option("--username", "-u", default=None, help="Broker user name."),
        click.option("--password", "-P", default=None, help="Broker password (visible in ps: prefer "
                                                             "--password-file)."),
        click.option("--password-file", type=click.Path(dir_okay=False, exists=True), default=None,
                     help="Read the broker password from the first line of this file."),
        click.option("--cafile", type=click.Path(dir_okay=False, exists=True), default=None,
                     help="(mqtts://) CA certificates to verify the broker with (default: the system's)."),
        click.option("--cert", "certfile", type=click.Path(dir_okay=False, exists=True), default=None,
                     help="(mqtts://) Client certificate (PEM)."),
        click.option("--key", "keyfile", type=click.Path(dir_okay=False, exists=True), default=None,
                     help="(mqtts://) Client certificate's private key (PEM)."),
        click.option("--insecure", is_flag=True, help="(mqtts://) Do not check the broker's host name."),
        click.option("--max-topics", type=click.IntRange(1, 65536), default=1024, show_default=True,
                     help="At most this many topics (streams); readings of further topics are skipped."),
        click.option("--reorder-window", type=click.IntRange(0, MAX_WINDOW), default=16, show_default=True, metavar="N",
                     help="Readings with a time are put back in time order per topic: one may arrive "
                          "after up to N newer ones of its topic (a reconnecting publisher sends its newest "
                          "first) and is still stepped in its place. Counted in readings, not seconds: a "
                          "reconnect burst is so many readings at any rate. 0: stepped as they come."),
        click.option("--reorder-hold", type=FloatRange(0, 3600), default=2.0, show_default=True,
                     metavar="SECONDS", help="How long a reading waits at most for older ones before it "
                     "is stepped, counted while connected and afresh after a reconnection; cover the "
                     "publishers' reconnect delay. A regularly sampled topic's next reading never waits."),
        click.option("--max-ahead", type=FloatRange(0, min_open=True), default=86400.0, show_default=True,
                     metavar="SECONDS", help="A reading whose time is more than this beyond both its "
                     "topic's last one and the wall clock is refused (to the --late-topic)."),
        click.option("--late-topic", default="{publish}/late", show_default=True, metavar="TEMPLATE",
                     help="Where a late reading (older than its topic's window) or one too far ahead "
                          "goes, not stepped; {publish} is the prediction topic, {topic} the reading's."),
        click.option("--summary-every", type=FloatRange(0), default=60.0, show_default=True,
                     metavar="SECONDS", help="Print the counts (predicted, duplicates, late, bad...) "
                                             "this often on stderr when they change; 0: only at exit."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@click.command("stream", short_help="Predict the next value for each line of stdin, a file or a FIFO.")
@click.argument("bundle", type=click.Path(), callback=bundle_path)
@click.argument("input_file", required=False, default=None)
@predictor_options
@click.option("--column", default=None, metavar="NAME", help="A CSV with a header: the column a one-value model reads.")
@click.option("--columns", default=None, metavar="A,B,...",
              help="A CSV with a header: the columns feeding a multivariate model, in order.")
@click.option("--time-column", default=None, metavar="NAME",
              help="A CSV with a header: each row's time (a number or ISO 8601); a row not after the last is skipped.")
@click.option("--strict", is_flag=True, help="Stop with exit 1 at the first non-numeric line.")
@click.option("--out", "--output", "output_file", type=click.Path(dir_okay=False), default=None,
              help="Append predictions to this file (exactly once with --state-file).")
@click.option("--follow", is_flag=True, help="Follow INPUT_FILE like tail -F (rotation; a FIFO's next writer).")
@click.option("--anomaly-log", type=click.Path(dir_okay=False), default=None,
              help="Append anomaly reports to this file (exactly once).")
@click.option("--json-lines", is_flag=True, help="One JSON object per line, naming each output.")
@click.option("--mqtt", "moved_mqtt", default=None, hidden=True, help="Moved: edgernn bridge.")
def stream_command(bundle, input_file, variant, backend, state_file, save_every, reset_state, on_nan, interval,
                   adaptive, anomalies, keep_anomalies, trust, column, columns, time_column, strict, output_file,
                   follow, anomaly_log, json_lines, moved_mqtt):
    """Run a bundle statefully: one value per input line, one prediction per output line.

    Reads INPUT_FILE (a file or a FIFO) or stdin; a bad line is reported and skipped. A multivariate model
    reads a row of numbers per line; a CSV with a header is read by column name. With --state-file a restart
    resumes the state, the place in the same file and --out exactly once (docs/device.md). MQTT: edgernn bridge.
    """
    if moved_mqtt is not None:
        raise click.UsageError("the MQTT bridge is its own command: edgernn bridge BUNDLE URL -t FILTER ...")
    from edgernn.stream.service import run

    code = run(bundle, input_file, variant=variant, backend=backend, state_file=state_file, save_every=save_every,
               reset_state=reset_state, on_nan=on_nan, strict=strict, output_file=output_file, follow=follow,
               interval=interval, adaptive=adaptive, anomalies=anomalies, anomaly_log=anomaly_log,
               json_lines=json_lines, trust=trusted_keys(trust), keep_anomalies=keep_anomalies,
               column=column, columns=column_list(columns), time_column=time_column)
    if code:
        sys.exit(code)


@click.command("bridge", short_help="Predict each reading of MQTT topics; publish one prediction per reading.")
@click.argument("bundle", type=click.Path(), callback=bundle_path)
@click.argument("url")
@predictor_options
@mqtt_options
def bridge_command(bundle, url, variant, backend, state_file, save_every, reset_state, on_nan, interval, adaptive,
                   anomalies, keep_anomalies, trust, **mqtt):
    """Bridge the MQTT broker at URL (mqtt://[user[:pass]@]host[:port] or mqtts://... for TLS): readings from
    the --subscribe topics (a number, or JSON with --field and --time-field), each topic its own stream, one
    JSON prediction per reading to --publish. With --state-file every topic resumes after a restart, and a
    redelivered reading is not predicted twice. Needs pip install 'edgernn[mqtt]'. See docs/mqtt.md.
    """
    from pathlib import Path

    from edgernn.stream.bridge import BridgeConfig, BrokerOptions, run

    config = BridgeConfig(publish=mqtt.pop("publish"), field=mqtt.pop("field"), time_field=mqtt.pop("time_field"),
                          on_nan=on_nan, save_every=save_every,
                          state_file=Path(state_file) if state_file else None,
                          interval=interval, adaptive=adaptive, anomalies=anomalies, keep_anomalies=keep_anomalies,
                          reorder_window=mqtt.pop("reorder_window"), reorder_hold=mqtt.pop("reorder_hold"),
                          max_ahead=mqtt.pop("max_ahead"), late_topic=mqtt.pop("late_topic"),
                          summary_every=mqtt.pop("summary_every"))
    max_topics = mqtt.pop("max_topics")
    broker = BrokerOptions(url=url, subscribe=list(mqtt.pop("subscribe")), **mqtt)
    code = run(bundle, broker, config, variant=variant, backend=backend, reset_state=reset_state,
               max_topics=max_topics, trust=trusted_keys(trust))
    if code:
        sys.exit(code)


def register(cli) -> None:
    cli.add_command(stream_command)
    cli.add_command(bridge_command)
