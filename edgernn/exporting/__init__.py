"""Host side: Keras model -> step models -> TFLite/ONNX variants -> a bundle (``bundle_writer.export_bundle``).

Named ``exporting`` (as ``training`` and ``verification``) so that the function ``edgernn.export`` (export then
the gate, ``edgernn/__init__.py``) and this package are two names: ``import edgernn.exporting.tflite`` works.
"""
