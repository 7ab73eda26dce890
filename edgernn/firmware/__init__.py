"""Firmware: what a microcontroller project compiles. ``step`` writes a bundle's step as interpreter-free C
(``edgernn c-step``); ``edgernn.firmware.c_array`` writes a .tflite variant for TensorFlow Lite Micro (``edgernn c-array``)."""
