"""The device side: numpy, the standard library and one interpreter; never TensorFlow.

    from edgernn.runtime import StreamingPredictor
    predictor = StreamingPredictor.load("bundle", variant="tflite-int8")
    next_value = predictor.step(reading)

``StreamingPredictor`` is imported on first use, so the CLI can read names and errors from here without paying
for numpy when it only prints help.
"""

from edgernn.errors import BackendError, BundleError, EdgernnError, StateError


def __getattr__(name):
    if name == "StreamingPredictor":
        from edgernn.runtime.predictor import StreamingPredictor

        return StreamingPredictor
    raise AttributeError(f"module 'edgernn.runtime' has no attribute {name!r}")


__all__ = ["StreamingPredictor", "EdgernnError", "BundleError", "BackendError", "StateError"]
