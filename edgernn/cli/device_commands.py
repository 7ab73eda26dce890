"""The device-side commands beside the stream: ``bench`` (what a step costs here), ``c-array`` (a .tflite variant
for TensorFlow Lite Micro) and ``c-step`` (the step as plain C). Registered on the group by ``register``."""

from __future__ import annotations

import click

from edgernn.cli.common_options import bundle_path, print_json
from edgernn.cli.option_types import BACKENDS_LIST, VARIANT, VARIANTS
from edgernn.cli.signing_commands import check_trust, trust_option
from edgernn.runtime.variants import DEFAULT_VARIANT


@click.command("bench", short_help="Latency, throughput and footprint per variant and backend.")
@click.argument("bundle", type=click.Path(), callback=bundle_path)
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
    from edgernn.bench.measure import bench, format_table

    check_trust(bundle, trust)
    result = bench(bundle, variants=variants, backends=backends, steps=steps, streams=streams)
    if as_json:
        print_json(result.to_dict())
    else:
        click.echo(format_table(result))


@click.command("c-array", short_help="Write a .tflite variant as C source for TensorFlow Lite Micro firmware.")
@click.argument("bundle", type=click.Path(), callback=bundle_path)
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
    from edgernn.firmware.c_array import write

    check_trust(bundle, trust)
    written = write(bundle, variant, out, name, force=force)
    if as_json:
        print_json({"variant": variant, "files": [str(path) for path in written]})
        return
    for path in written:
        click.echo(str(path))


@click.command("c-step", short_help="Write the step as plain C for firmware: no interpreter, no arena.")
@click.argument("bundle", type=click.Path(), callback=bundle_path)
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
    from edgernn.firmware.step import write

    check_trust(bundle, trust)
    written, measured = write(bundle, variant, out, name, force=force, measure=True)
    result = {"variant": variant, "files": [str(path) for path in written], **measured}
    ram, state, arena = measured["ram_bytes"], measured["state_bytes"], measured["tflm_arena_bytes"]
    if as_json:
        print_json(result)
        return
    for path in written:
        click.echo(str(path))
    stack = "unknown" if measured["stack_bytes"] is None else f"{measured['stack_bytes']:,}"
    versus = f"; TFLM's arena for {variant}: {arena:,} B ({ram / arena:.2f}x)" if arena else ""
    click.echo(f"flash {measured['flash_bytes']:,} B, RAM {ram:,} B (state {state:,} + static "
               f"{measured['static_ram_bytes']:,} + stack {stack}), {measured['compiler']} -Os{versus}")


def register(cli) -> None:
    cli.add_command(bench_command)
    cli.add_command(c_array_command)
    cli.add_command(c_step_command)
