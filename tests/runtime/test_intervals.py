"""Intervals and anomaly scores on the device: what export calibrated holds on held-out data, each value is scored
against the prediction made for it, the plain step is unchanged, and the monitor's state survives a restart."""

from __future__ import annotations

import math

import numpy as np
import pytest
from make_bundles import BEFORE_INTERVALS
from runtime_env import FLOAT32, INT8, needs_interpreter

from edgernn.runtime import StreamingPredictor
from edgernn.runtime.bundle import Bundle
from edgernn.errors import BundleError, EdgernnError, StateError
from edgernn.runtime.intervals import (CLEAN_RUN, Checked, OUTLIER_MADS, SCALE_CLIP, SCALE_FLOOR, conformal_half_widths,
                                      scale_decay, scale_ratios, without_outliers)
from edgernn.runtime.manifest_reader import read_manifest


def _with_intervals(bundles, name="sine"):
    bundle = bundles[name]
    if read_manifest(bundle).variants[FLOAT32].intervals is None:
        pytest.skip(f"bundle {name} was exported before intervals")
    return bundle


def test_conformal_half_widths_are_the_finite_sample_quantile():
    residuals = np.arange(1.0, 100.0)  # |r| = 1..99, n = 99
    assert conformal_half_widths(residuals, [0.5, 0.9, 0.99]) == [50.0, 90.0, 99.0]
    assert conformal_half_widths(np.arange(1.0, 10.0), [0.5, 0.95]) == [5.0, None]  # n = 9 is too few for 0.95
    assert conformal_half_widths(np.array([-3.0, np.nan, 1.0, 2.0]), [0.5]) == [2.0]


def test_spikes_are_left_out_of_the_calibration_and_nothing_else():
    rng = np.random.default_rng(0)
    clean = rng.normal(0.0, 0.1, 300)
    spiked = clean.copy()
    spiked[[30, 90, 150, 280]] += [2.0, -2.0, 1.5, 1.0]  # 10 to 20 sigma out
    kept = without_outliers(np.append(spiked, [np.nan, np.inf]))
    np.testing.assert_array_equal(kept, np.delete(spiked, [30, 90, 150, 280]))
    plain, robust = conformal_half_widths(spiked, [0.99])[0], conformal_half_widths(kept, [0.99])[0]
    assert plain > 3 * robust  # 4 spikes in 300 residuals set the plain 0.99 half-width (rank 298 of 300)
    assert 0.2 < robust < 0.35  # the normal sample's own (2.58 sigma)
    assert without_outliers(rng.normal(0.3, 0.1, 100_000)).size == 100_000  # a normal sample keeps all at 6 sigma
    assert without_outliers(np.array([0.0] * 10 + [5.0])).size == 11  # MAD 0: nothing to judge by, all kept
    assert without_outliers(np.array([1.0, 2.0, 3.0, 20.0]), mads=OUTLIER_MADS).size == 3


@pytest.mark.portable
def test_old_bundle_streams_and_refuses_intervals_in_one_line():
    predictor = StreamingPredictor.load(BEFORE_INTERVALS, "tflite-float32", backend="numpy")
    assert math.isfinite(predictor.step(0.5))
    with pytest.raises(EdgernnError, match="export it again") as caught:
        predictor.monitor(0.9)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("variant", [FLOAT32, INT8])
@needs_interpreter
def test_each_value_is_scored_against_the_prediction_made_for_it(bundles, sine_values, variant):
    bundle = _with_intervals(bundles)
    values = sine_values[:400].copy()
    values[[100, 200, 300]] += 3.0
    values[250] = np.nan
    plain = StreamingPredictor.load(bundle, variant).run(values)
    predictor = StreamingPredictor.load(bundle, variant)
    monitor = predictor.monitor(0.9)
    got = monitor.run(values)
    np.testing.assert_array_equal(got["prediction"], plain)  # the monitor never changes a prediction
    residual = values[1:] - plain[:-1]
    # the half-width in force: the calibrated one times the residual scale (1 throughout for fixed intervals),
    # which each scored value moves after its score
    scaling = predictor.intervals.scaling
    ratio = scale_ratios(np.r_[np.nan, residual, np.nan], *scaling) if scaling else np.ones(values.size + 1)
    width = monitor.calibrated * ratio
    predicted = np.isfinite(plain)
    np.testing.assert_allclose((got["high"] - got["low"])[predicted], 2 * width[1:][predicted])
    np.testing.assert_allclose(got["residual"][1:], residual)
    assert math.isnan(got["residual"][0]) and math.isnan(got["score"][0])  # nothing was predicted for the first
    np.testing.assert_allclose(got["score"][1:], np.abs(residual) / width[1:-1])
    outside = (values[1:] < got["low"][:-1]) | (values[1:] > got["high"][:-1])
    np.testing.assert_array_equal(got["anomaly"][1:], outside)
    assert got["anomaly"][[100, 200, 300]].all()  # the spikes
    assert math.isnan(got["score"][250]) and not got["anomaly"][250] and math.isnan(got["score"][251])
    assert monitor.scored == np.isfinite(residual).sum()


@needs_interpreter
def test_many_streams_equal_one_stream_each(bundles, sine_values):
    bundle = _with_intervals(bundles)
    columns = np.stack([sine_values[:200], sine_values[300:500] + 0.5, sine_values[600:800]], axis=1)
    columns[40, 1] = np.nan
    columns[90, 2] += 4.0
    together = StreamingPredictor.load(bundle, FLOAT32, streams=3).monitor(0.9, adaptive=True)
    rows = [together.step(row) for row in columns]
    tolerance = 1e-5 * np.ptp(columns[np.isfinite(columns)])  # float32 kernels may sum a batch differently
    for k in range(3):
        alone = StreamingPredictor.load(bundle, FLOAT32).monitor(0.9, adaptive=True).run(columns[:, k])
        for field in ("prediction", "low", "high", "residual"):
            np.testing.assert_allclose([getattr(r, field)[k] for r in rows], alone[field], rtol=0, atol=tolerance)
        score = np.array([r.score[k] for r in rows])
        np.testing.assert_allclose(score, alone["score"], rtol=1e-4, atol=1e-4)
        clear = ~(np.abs(alone["score"] - 1) < 1e-3)  # a score at the edge may fall either side of it
        np.testing.assert_array_equal(np.array([r.anomaly[k] for r in rows])[clear], alone["anomaly"][clear])


@needs_interpreter
def test_coverage_on_the_held_out_test_split(bundles):
    """Export set the half-widths on the validation split; on the test split they cover about their level."""
    bundle = _with_intervals(bundles)
    opened = Bundle.open(bundle)
    test = opened.manifest.files["reference_data"].test
    inputs, _ = opened.reference_data()
    for variant in (FLOAT32, INT8):
        monitor = StreamingPredictor.load(bundle, variant).monitor(0.9)
        anomaly = monitor.run(inputs[: test[1] + 1])["anomaly"][test[0] + 1: test[1] + 1]
        assert abs(1 - anomaly.mean() - 0.9) <= 0.05, (variant, 1 - anomaly.mean())


def test_the_scale_is_an_exponential_mean_of_residual_sizes_clipped_and_floored():
    decay = scale_decay(4)
    assert 0.5 ** 0.25 == pytest.approx(1 - decay)  # half the weight after 4 steps
    ratios = scale_ratios(np.array([2.0, np.nan, 2.0, 1000.0, 0.0]), 4, 2.0)
    expected = [1.0, 1.0, 1.0, 1.0]  # 2.0 is the start's size: the scale stays; NaN is not scored
    expected.append(1.0 + decay * (SCALE_CLIP - 1.0))  # a spike counts as CLIP scales, not 500
    np.testing.assert_allclose(ratios, expected)
    quiet = scale_ratios(np.zeros(2000), 4, 2.0)
    assert quiet[-1] == SCALE_FLOOR and quiet.min() == SCALE_FLOOR  # never narrower than the floor


@needs_interpreter
def test_a_livelier_spell_than_the_validation_one_is_covered_at_its_level(bundles, tmp_path):
    """Beijing's winter after its autumn (issue 30), on the sine: noise twice the residuals' size added to the
    second half. Scaled intervals cover it at about their level; the same half-widths held fixed fall far short."""
    bundle = _with_intervals(bundles)
    if read_manifest(bundle).variants[FLOAT32].intervals.scale is None:
        pytest.skip(f"bundle {bundle.name} has fixed intervals (exported before scaled ones)")
    inputs, _ = Bundle.open(bundle).reference_data()
    values = inputs[:4000].astype(np.float64)
    monitor = StreamingPredictor.load(bundle, FLOAT32).monitor(0.9)
    calm = monitor.run(values[:2000])
    size = np.nanmean(np.abs(calm["residual"]))
    values[2000:] += np.random.default_rng(3).normal(0.0, 2 * size, 2000)
    coverage = {}
    for scaled in (True, False):
        monitor = StreamingPredictor.load(bundle, FLOAT32).monitor(0.9, scaled=scaled)
        coverage[scaled] = 1 - monitor.run(values)["anomaly"][2100:].mean()
    assert abs(coverage[True] - 0.9) <= 0.04 and coverage[False] < 0.75, coverage


@needs_interpreter
def test_adaptive_follows_a_level_shift_the_fixed_width_misses(bundles):
    bundle = _with_intervals(bundles)
    inputs, _ = Bundle.open(bundle).reference_data()
    values = inputs[:3000].astype(np.float64)
    values[1500:] += 0.6  # a level shift the model never saw
    coverage = {}
    for adaptive in (False, True):
        monitor = StreamingPredictor.load(bundle, FLOAT32).monitor(0.9, adaptive=adaptive, scaled=False)
        coverage[adaptive] = 1 - monitor.run(values)["anomaly"][1:].mean()
    assert abs(coverage[True] - 0.9) <= 0.03 < abs(coverage[False] - 0.9), coverage


@needs_interpreter
@pytest.mark.parametrize("clean", [False, True])
def test_monitor_state_survives_a_restart(bundles, sine_values, tmp_path, clean):
    """Saved in the middle of a run of flagged readings (clean: how many in a row were clipped is state too)."""
    bundle = _with_intervals(bundles)
    values = sine_values[:300].copy()
    values[[60, 200]] += 2.0
    values[148:153] += 2.0
    whole = StreamingPredictor.load(bundle, INT8).monitor(0.9, adaptive=True, clean=clean).run(values)
    assert whole["anomaly"][148:150].all()  # saved at 150: two flagged in a row
    first = StreamingPredictor.load(bundle, INT8).monitor(0.9, adaptive=True, clean=clean)
    first.run(values[:150])
    first.save_state(tmp_path / "s.state", extra={"mine": 1})
    second = StreamingPredictor.load(bundle, INT8).monitor(0.9, adaptive=True, clean=clean)
    assert second.load_state(tmp_path / "s.state") == {"mine": 1}
    rest = second.run(values[150:])
    for field in ("prediction", "low", "high", "score", "anomaly"):
        np.testing.assert_array_equal(rest[field], whole[field][150:])
    assert second.scored == 299


@pytest.mark.portable
@pytest.mark.parametrize("record", [{"previous": "x"}, {"previous": [None], "half_width": [-1.0], "scored": [1],
                                                        "covered": [0]},
                                    {"previous": [0.1], "half_width": [0.2], "scored": [1], "covered": [5]},
                                    {"previous": [0.1], "half_width": [0.2], "scale": [0.0], "scored": [1],
                                     "covered": [1]},
                                    {"previous": [0.1], "half_width": [0.2], "scale": ["x"], "scored": [1],
                                     "covered": [1]},
                                    {"previous": [0.1], "half_width": [0.2], "scored": [1], "covered": [1],
                                     "flagged_in_a_row": [2**63]},
                                    {"previous": [0.1], "half_width": [0.2], "scored": [2**63], "covered": [1]}])
@needs_interpreter
def test_a_malformed_monitor_record_is_refused(bundles, record):
    monitor = StreamingPredictor.load(_with_intervals(bundles), FLOAT32).monitor(0.9)
    with pytest.raises(StateError, match="--reset-state"):
        monitor.restore(record)


@pytest.mark.portable
@pytest.mark.parametrize("intervals", [{"levels": [0.9], "half_widths": [-1.0], "residuals": 5},
                                       {"levels": [0.9, 0.8], "half_widths": [1.0, 2.0], "residuals": 5},
                                       {"levels": [1.5], "half_widths": [1.0], "residuals": 5},
                                       {"levels": [0.9], "half_widths": [1.0, 2.0], "residuals": 5},
                                       {"levels": [0.8, 0.9], "half_widths": [2.0, 1.0], "residuals": 5},
                                       {"levels": [0.9], "half_widths": [1.0]}, "wide",
                                       {"levels": [0.9], "half_widths": [1.0], "residuals": 5,
                                        "scale": {"half_life": 0.5, "start": 1.0, "clip": 2, "floor": 0.1}},
                                       {"levels": [0.9], "half_widths": [1.0], "residuals": 5,
                                        "scale": {"half_life": 24, "start": 0, "clip": 2, "floor": 0.1}},
                                       {"levels": [0.9], "half_widths": [1.0], "residuals": 5,
                                        "scale": {"half_life": 24, "start": 1.0, "clip": 2, "floor": 0}},
                                       {"levels": [0.9], "half_widths": [1.0], "residuals": 5,
                                        "scale": {"half_life": 24, "start": 1.0}}])
def test_malformed_intervals_in_a_manifest_are_refused(tmp_path, intervals):
    from bundle_edit import copy_bundle, manifest_of, write_manifest

    bundle = copy_bundle(BEFORE_INTERVALS, tmp_path / "b")
    manifest = manifest_of(bundle)
    manifest["variants"]["tflite-float32"]["intervals"] = intervals
    write_manifest(bundle, manifest)
    with pytest.raises(BundleError, match="intervals"):
        read_manifest(bundle)


@needs_interpreter
def test_an_inf_reading_is_not_scored_on_one_stream_or_many(bundles, sine_values):
    bundle = _with_intervals(bundles)
    values = sine_values[:20].copy()
    values[8] = np.inf
    alone = StreamingPredictor.load(bundle, FLOAT32).monitor(0.9).run(values)
    together = StreamingPredictor.load(bundle, FLOAT32, streams=2).monitor(0.9)
    rows = [together.step([v, v]) for v in values]
    assert math.isnan(alone["score"][8]) and not alone["anomaly"][8]
    clear = ~(np.abs(alone["score"] - 1) < 1e-3)  # float32 kernels may sum a batch differently
    assert [bool(r.anomaly[0]) for r, keep in zip(rows, clear) if keep] == list(alone["anomaly"][clear])
    np.testing.assert_allclose([r.score[1] for r in rows], alone["score"], rtol=1e-4, atol=1e-4, equal_nan=True)
    with pytest.raises(EdgernnError, match="expects 1 value"):
        StreamingPredictor.load(bundle, FLOAT32).monitor(0.9).step([0.1, 0.2])


def _checked(bundle, values, clean: bool, streams: int = 1) -> dict[str, np.ndarray]:
    """A 0.99 monitor's fields over ``values`` (the last stream's, every stream fed the same)."""
    monitor = StreamingPredictor.load(bundle, FLOAT32, streams=streams).monitor(0.99, clean=clean)
    rows = [monitor.step(v if streams == 1 else [v] * streams) for v in values]
    return {field: np.array([np.atleast_1d(getattr(r, field))[-1] for r in rows]) for field in Checked._fields}


@needs_interpreter
@pytest.mark.parametrize("streams", [1, 2])
def test_a_clean_monitor_feeds_a_spike_clipped_to_its_interval(bundles, sine_values, streams):
    """The model is fed the interval's nearer edge instead of the spike (its score stays the raw one), so the
    predictions after it are not the model's echo of the spike."""
    bundle = _with_intervals(bundles)
    values = sine_values[:200].copy()
    values[100] += 3.0
    cleaned, kept = _checked(bundle, values, True, streams), _checked(bundle, values, False, streams)
    assert cleaned["anomaly"][100] and cleaned["score"][100] == pytest.approx(kept["score"][100], rel=1e-4)
    edged, in_a_row = values.copy(), 0
    for at in range(1, values.size):  # each flagged reading (the spike, and any other) at its interval's edge
        in_a_row = in_a_row + 1 if cleaned["anomaly"][at] else 0
        if 0 < in_a_row <= CLEAN_RUN:
            edged[at] = cleaned["high" if cleaned["residual"][at] > 0 else "low"][at - 1]
    tolerance = 1e-5 * np.ptp(values)  # float32 kernels may sum a batch differently
    np.testing.assert_allclose(cleaned["prediction"], _checked(bundle, edged, False, streams)["prediction"],
                               rtol=0, atol=tolerance)
    calm = _checked(bundle, sine_values[:200], False, streams)["prediction"][101:120]
    echo = {name: np.abs(run["prediction"][101:120] - calm).max() for name, run in (("cleaned", cleaned),
                                                                                  ("kept", kept))}
    assert echo["cleaned"] < echo["kept"] / 3, echo
    assert cleaned["anomaly"][101:120].sum() < kept["anomaly"][101:120].sum() or not kept["anomaly"][101:120].any()


@needs_interpreter
def test_a_level_shift_is_clipped_only_a_few_readings_then_followed(bundles, sine_values):
    bundle = _with_intervals(bundles)
    values = sine_values[:300].copy()
    values[100:] += 1.5
    cleaned, kept = _checked(bundle, values, True), _checked(bundle, values, False)
    assert cleaned["anomaly"][100: 100 + CLEAN_RUN + 1].all()
    assert cleaned["anomaly"][150:].sum() <= kept["anomaly"][150:].sum() + 2  # both follow the new level
    np.testing.assert_allclose(cleaned["prediction"][200:], kept["prediction"][200:], rtol=0, atol=1e-2)
