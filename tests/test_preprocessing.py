import numpy as np
import pytest

from edgernn.runtime.preprocessing import Preprocessing


def test_encode_decode_round_trip_with_differencing():
    pipeline = Preprocessing(difference=True, scale="standard", offset=0.5, divisor=2.0)
    values = np.array([1.0, 2.0, 4.0, 7.0])
    z = pipeline.transform(values)
    assert z.tolist() == [0.25, 0.75, 1.25]
    assert pipeline.encode(4.0, 2.0) == z[1]
    # decoding the true next difference gives the true next value
    assert pipeline.decode(z[2], values[2]) == values[3]


@pytest.mark.parametrize(
    "data, message",
    [
        ({"scale": "robust"}, "scale must be one of"),
        ({"divisor": 0}, "divisor must be positive"),
        ({"offset": "x"}, "offset must be a finite number"),
        ({"difference": "yes"}, "difference must be true or false"),
        ([], "must be an object"),
    ],
)
def test_from_dict_rejects_malformed(data, message):
    with pytest.raises(ValueError, match=message):
        Preprocessing.from_dict(data)


@pytest.mark.parametrize("difference", [False, True])
def test_scaling_is_relative_to_the_data(difference):
    """A series of 1e-15 values is scaled like the same series in other units (was: a divisor of 1, so the model
    saw inputs of 1e-15); a ramp's constant differences are divided by their own size."""
    from edgernn.data.series import chronological_split
    from edgernn.training.preparation import fit_preprocessing

    t = np.arange(400, dtype=np.float64)
    series = np.sin(t / 7) + 0.01 * t
    split = chronological_split(series.size)
    for unit in (1e-15, 1.0, 1e15):
        z = fit_preprocessing(series * unit, split, difference, "standard").transform(series * unit)
        reference = fit_preprocessing(series, split, difference, "standard").transform(series)
        np.testing.assert_allclose(z, reference, rtol=1e-9, atol=1e-9)
    ramp = fit_preprocessing(3e-12 * t, split, True, "standard")
    assert ramp.divisor == pytest.approx(3e-12) and np.allclose(ramp.transform(3e-12 * t), 0.0)
