"""A multivariate bundle on the device side (no TensorFlow): rows of F values in, targets x horizon out, through
the predictor (one stream and many), ``edgernn stream`` and the MQTT bridge against a real Mosquitto.

The ``multi`` bundle (``tests/make_bundles.py``): the built-in ``lagged`` table (follower, driver), the follower
predicted 1 and 2 steps ahead."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from edgernn.cli.commands import cli
from edgernn.runtime import StreamingPredictor
from edgernn.runtime.bundle import Bundle
from edgernn.errors import EdgernnError
from edgernn.runtime.manifest_reader import read_manifest
from runtime_env import INT8, needs_spawn

VARIANTS = ("tflite-float32", "tflite-int8", "onnx-float32")


@pytest.fixture(scope="module")
def multi(bundles):
    return bundles["multi"]


@pytest.fixture(scope="module")
def rows(multi):
    values, _ = Bundle.open(multi).reference_data()
    return values[:400]


def _loadable(bundle, variant, **options):
    if variant not in read_manifest(bundle).variants:
        pytest.skip(f"{variant} is not in this bundle")
    try:
        return StreamingPredictor.load(bundle, variant, **options)
    except EdgernnError as exc:  # no interpreter for it here (e.g. a litert-only device and onnx)
        pytest.skip(str(exc))


def _float_variant(multi) -> str:
    """A float32 variant some installed interpreter runs (tflite-float32 first), or a skip."""
    from edgernn.runtime.backends import choose
    from edgernn.runtime.variants import variant

    for name in ("tflite-float32", "onnx-float32"):
        try:
            choose("auto", variant(name))
        except EdgernnError:
            continue
        return name
    pytest.skip("no interpreter here runs a float32 variant")


def test_shapes_and_the_stored_reference(multi, rows):
    """The float32 variant reproduces the float model's outputs stored at export, output for output."""
    predictor = _loadable(multi, "tflite-float32")
    assert predictor.output_shape == (1, 2) and predictor.features == 2
    first = predictor.step(rows[0])
    assert first.shape == (1, 2)
    got = np.stack([first, *(predictor.step(r) for r in rows[1:])]).reshape(len(rows), 2)
    _, stored = Bundle.open(multi).reference_data()
    span = np.nanmax(stored[:400], axis=0) - np.nanmin(stored[:400], axis=0)
    assert np.nanmax(np.abs(got - stored[:400]) / span) <= 1e-5


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_row_path_equals_the_general_path(multi, rows, variant):
    """One stream takes a path in Python floats; it must give what the array path gives, bit for bit."""
    fast = _loadable(multi, variant)
    general = _loadable(multi, variant)
    general._row_fast = False
    for row in rows[:300]:
        np.testing.assert_array_equal(fast.step(row), general.step(row))
    for key, value in fast.state.items():
        np.testing.assert_array_equal(value, general.state[key])
    np.testing.assert_array_equal(fast.stats["out_of_range"], general.stats["out_of_range"])


def test_many_streams_equal_lone_predictors_in_one_invoke(multi, rows):
    variant = "tflite-float32"
    many = _loadable(multi, variant, streams=256)
    calls = 0
    run = many._run

    def counted(inputs):
        nonlocal calls
        calls += 1
        return run(inputs)

    many._run = counted
    offsets = np.arange(256) % 50
    lone = [_loadable(multi, variant) for _ in range(3)]
    for t in range(60):
        batch = rows[t + offsets]
        out = many.step(batch)
        assert out.shape == (256, 1, 2)
        for s in range(3):
            np.testing.assert_allclose(out[s], lone[s].step(batch[s]), rtol=0, atol=1e-5)
    assert calls == 60  # one invoke per step for 256 streams


def test_gaps_hold_and_bad_rows(multi, rows):
    skip = _loadable(multi, "tflite-float32")
    hold = _loadable(multi, "tflite-float32", on_nan="hold")
    for row in rows[:20]:
        skip.step(row), hold.step(row)
    before = skip.state
    assert np.isnan(skip.step([math.nan, 1.0])).all()
    for key, value in skip.state.items():
        np.testing.assert_array_equal(value, before[key])
    assert np.isfinite(hold.step([math.nan, rows[20][1]])).all()  # the follower's last value held
    with pytest.raises(EdgernnError, match="2 number"):
        skip.step([1.0, 2.0, 3.0])
    with pytest.raises(EdgernnError, match="2 number"):
        skip.step(1.0)


def test_state_saved_and_restored(multi, rows, tmp_path):
    predictor = _loadable(multi, INT8)
    predictor.run(rows[:50])
    predictor.save_state(tmp_path / "s.npz")
    again = _loadable(multi, INT8)
    again.load_state(tmp_path / "s.npz")
    for row in rows[50:80]:
        np.testing.assert_array_equal(again.step(row), predictor.step(row))


@pytest.mark.portable
def test_stream_cli_rows_with_a_header(multi, rows, runner, tmp_path):
    variant = _float_variant(multi)
    names = read_manifest(multi).columns.features
    text = ",".join(names) + "\n" + "\n".join(",".join(f"{v:.6f}" for v in row) for row in rows[:30]) + "\n"
    (tmp_path / "in.csv").write_text(text)
    result = runner.invoke(cli, ["stream", str(multi), str(tmp_path / "in.csv"), "--variant", variant])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 30
    expected = _loadable(multi, variant).run(np.round(rows[:30], 6)).reshape(30, 2)
    got = np.array([[float(v) for v in line.split(",")] for line in lines])
    np.testing.assert_allclose(got, expected, rtol=1e-7, atol=1e-7, equal_nan=True)
    result = runner.invoke(cli, ["stream", str(multi), str(tmp_path / "in.csv"), "--variant", variant,
                                 "--json-lines"])
    assert list(json.loads(result.stdout.splitlines()[-1])) == ["follower+1", "follower+2"]
    (tmp_path / "bad.csv").write_text("time,driver\n1,2\n")
    result = runner.invoke(cli, ["stream", str(multi), str(tmp_path / "bad.csv"), "--variant", variant])
    assert result.exit_code == 2 and "does not name follower (the model reads follower,driver; --columns" in result.output


def test_stream_reads_the_training_csv_by_column_name(multi, rows, runner, tmp_path):
    """The file a model was trained on (a time column, the model's columns in another order, one more) is read by
    the header's names, by default or through --columns; a restart past the header reads on by name."""
    variant = _float_variant(multi)
    names = read_manifest(multi).columns.features
    shuffled = np.round(rows[:30], 6)
    text = f"time,other,{names[1]},{names[0]}\n" + "\n".join(
        f"{i},9,{row[1]:.6f},{row[0]:.6f}" for i, row in enumerate(shuffled)) + "\n"
    (tmp_path / "train.csv").write_text(text)
    expected = _loadable(multi, variant).run(shuffled).reshape(30, 2)
    result = runner.invoke(cli, ["stream", str(multi), str(tmp_path / "train.csv"), "--variant", variant])
    assert result.exit_code == 0, result.output
    got = np.array([[float(v) for v in line.split(",")] for line in result.stdout.splitlines()])
    np.testing.assert_allclose(got, expected, rtol=1e-7, atol=1e-7)
    renamed = text.replace(f",{names[1]},{names[0]}\n", ",y,x\n", 1)
    (tmp_path / "renamed.csv").write_text(renamed)
    state, out = tmp_path / "state.npz", tmp_path / "out.csv"
    head = "\n".join(renamed.splitlines()[:11]) + "\n"  # the header and 10 rows, then a restart for the rest
    (tmp_path / "growing.csv").write_text(head)
    args = ["stream", str(multi), str(tmp_path / "growing.csv"), "--variant", variant, "--columns", "x,y",
            "--state-file", str(state), "--out", str(out)]
    assert runner.invoke(cli, args).exit_code == 0
    (tmp_path / "growing.csv").write_text(renamed)
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    got = np.array([[float(v) for v in line.split(",")] for line in out.read_text().splitlines()])
    np.testing.assert_allclose(got, expected, rtol=1e-7, atol=1e-7)
    for bad, message in ((["--columns", "x"], "--columns names 1 column(s); the model reads 2"),
                         (["--column", "x"], "--column picks one column; this model reads"),
                         (["--columns", "x,zz"], "does not name zz")):
        result = runner.invoke(cli, ["stream", str(multi), str(tmp_path / "renamed.csv"), "--variant", variant, *bad])
        assert result.exit_code == 2 and message in result.output, result.output


@needs_spawn
def test_mqtt_rows_per_topic_equal_lone_predictors(multi, rows, tmp_path):
    from mqtt_broker import BridgeProcess, Client, Mosquitto, require_mqtt

    paho = require_mqtt()
    _loadable(multi, "tflite-float32")
    names = read_manifest(multi).columns.features
    broker = Mosquitto(tmp_path / "broker").start()
    bridge = None
    try:
        out = Client(paho, broker.port, "predictions/#")
        bridge = BridgeProcess(multi, broker.url, "--state-file", str(tmp_path / "state.npz"),
                               variant="tflite-float32")
        bridge.wait_for("subscribed to sensors/#")
        publisher = Client(paho, broker.port)
        series = {f"sensors/{k}": rows[10 * k: 10 * k + 25] for k in range(5)}
        for t in range(25):
            for topic, table in series.items():
                if t % 2:  # an object naming the columns, or an array in the model's order
                    publisher.publish(topic, {"ts": t, **dict(zip(names, map(float, table[t])))})
                else:
                    publisher.publish(topic, [float(v) for v in table[t]] if t % 4 else
                                      {"ts": t, names[0]: float(table[t][0]), names[1]: float(table[t][1])})
        publisher.publish("sensors/0", {"ts": 99, names[0]: 1.0})  # a column missing: logged, skipped
        assert out.wait_for(5 * 25), f"{out.count()} predictions:\n{bridge.text()}"
        for topic, table in series.items():
            expected = _loadable(multi, "tflite-float32").run(table).reshape(25, 2)
            got = [m["prediction"] for m in out.received[f"predictions/{topic}"]]
            assert len(got) == 25
            for g, e in zip(got, expected):
                if np.isnan(e).all():
                    assert g == {"follower+1": None, "follower+2": None}
                else:
                    assert [g["follower+1"], g["follower+2"]] == pytest.approx(e.tolist(), abs=1e-6)
        publisher.close()
        out.close()
    finally:
        if bridge is not None:
            bridge.stop()
        broker.stop()
    assert "lacks driver" in bridge.text()


@pytest.mark.portable
def test_rows_that_are_not_numbers_are_refused_in_one_line(multi):
    predictor = _loadable(multi, "tflite-float32")
    for bad in ("00", b"\x00\x00", np.array(["0.1", "0.3"]), [[0.1], [0.2, 0.3]], {"a": 1.0}, [1 + 1j, 0.3],
                np.zeros((1, 1, 2)), np.array([0.1, None])):
        with pytest.raises(EdgernnError, match="step expects 2 number"):
            predictor.step(bad)
    assert predictor.steps == 0


@pytest.mark.portable
def test_stream_rows_gaps_bom_and_separators(multi, rows, runner, tmp_path):
    variant = _float_variant(multi)
    names = read_manifest(multi).columns.features
    body = "\n".join(",".join(f"{v:.6f}" for v in row) for row in rows[:10])
    gap = f"{rows[10][0]:.6f},\n"  # the second column missing: held with --on-nan hold
    (tmp_path / "in.csv").write_text("\ufeff" + ",".join(f'"{n}"' for n in names) + "\n" + body + "\n" + gap,
                                     encoding="utf-8")
    result = runner.invoke(cli, ["stream", str(multi), str(tmp_path / "in.csv"), "--variant", variant,
                                 "--on-nan", "hold", "--json-lines"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 11 and None not in lines[-1].values()
    result = runner.invoke(cli, ["stream", str(multi), str(tmp_path / "in.csv"), "--variant", variant])
    assert result.stdout.splitlines()[-1] == "nan,nan"  # skipped without --on-nan hold
    (tmp_path / "semi.csv").write_text("0.1;0.3\n" + body + "\n")
    result = runner.invoke(cli, ["stream", str(multi), str(tmp_path / "semi.csv"), "--variant", variant])
    assert result.exit_code == 0 and "line 1: '0.1;0.3' is not a row of 2 numbers; skipped" in result.output


def test_the_row_path_rounds_half_steps_as_the_general_path(multi):
    """Rows whose first input lands a few ulps from a half step of tflite-int8's input: the row path's integer
    input equals the array path's (round(z / scale + zero_point), half to even)."""
    from test_quantization import near_half_steps

    fast = _loadable(multi, "tflite-int8")
    general = _loadable(multi, "tflite-int8")
    general._row_fast = False
    spec, first, second = fast._x_spec, *fast.manifest.columns.inputs
    middle = second.offset  # the second input at 0.0
    tested = 0
    for z in near_half_steps(spec.scale, spec.zero_point):
        value = float(z) * first.divisor + first.offset
        z = (value - first.offset) / first.divisor  # what both paths compute from the raw value
        if not first.range[0] + spec.scale < z < first.range[1] - spec.scale:
            continue  # the guard sends it to the general path anyway
        fast.reset(), general.reset()
        np.testing.assert_array_equal(fast.step([value, middle]), general.step([value, middle]))
        np.testing.assert_array_equal(fast._x, general._x)
        tested += round(z / spec.scale + spec.zero_point) != round(z / spec.scale) + spec.zero_point
    assert tested  # some rows were ones where the two roundings differ
