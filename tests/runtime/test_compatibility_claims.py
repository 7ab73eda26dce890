"""The manifest's claims hold on the interpreters installed here: every variant it lists as running on an
interpreter loads and steps there; every pairing it lists as not running is refused as INCOMPATIBLE (never a
crash). CI runs this in each runtime-only environment and under emulated aarch64, on the default-size bundles."""

from __future__ import annotations

import numpy as np
import pytest

from edgernn.runtime import StreamingPredictor
from edgernn.runtime.backends import INTERPRETERS, installed
from edgernn.errors import IncompatibleError
from edgernn.runtime.manifest_reader import read_manifest

CHECKED = list(INTERPRETERS)  # every interpreter a manifest records (the backend table's)


@pytest.mark.parametrize("backend", CHECKED)
def test_every_recorded_pairing_holds(bundles, sine_values, backend):
    if backend not in installed():
        pytest.skip(f"{backend} is not installed here")
    checked = 0
    for name, bundle in sorted(bundles.every().items()):
        manifest = read_manifest(bundle)
        warm_up = manifest.model.raw_window or 1  # a window model answers once its window is full
        values = sine_values[:50] if not manifest.columns.named else np.stack([sine_values[:50]] * manifest.features, 1)
        for variant, entry in manifest.variants.items():
            record = entry.interpreters.get(backend)
            if record is None or record["runs"] is None:
                continue  # exported by an older edgernn, or not checked at export
            if record["runs"]:
                predictor = StreamingPredictor.load(bundle, variant, backend=backend)
                assert np.isfinite(predictor.run(values)[warm_up:]).all(), (name, variant)
            else:
                with pytest.raises(IncompatibleError, match=f"incompatible with {backend}"):
                    StreamingPredictor.load(bundle, variant, backend=backend)
            checked += 1
    if not checked:
        pytest.skip(f"no bundle here records {backend}")
