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
