"""The device side: numpy, the standard library and one interpreter; never TensorFlow.

    from edgernn.runtime import StreamingPredictor
    predictor = StreamingPredictor.load("bundle", variant="tflite-int8")
    next_value = predictor.step(reading)
"""

from edgernn.runtime.errors import BackendError, BundleError, EdgernnError, StateError
from edgernn.runtime.predictor import StreamingPredictor

__all__ = ["StreamingPredictor", "EdgernnError", "BundleError", "BackendError", "StateError"]
