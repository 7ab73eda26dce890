"""Host side: Keras model -> step models -> TFLite/ONNX variants -> a bundle (``bundle.export_bundle``).

Kept empty so that importing it costs nothing: ``import edgernn`` loads it before defining the function
``edgernn.export`` (export then the gate, ``edgernn/__init__.py``), which must shadow this package as an attribute
of ``edgernn``. Reach the modules with ``from edgernn.export import tflite`` (``edgernn.export.tflite`` as an
attribute chain is the function's, not the package's).
"""
