"""Host side: Keras model to step models to TFLite/ONNX variants and the bundle."""
