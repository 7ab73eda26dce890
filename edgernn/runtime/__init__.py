"""The device side: numpy, the standard library and one interpreter; never TensorFlow."""
