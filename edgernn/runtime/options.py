"""The small vocabularies of edgernn's options, standard library only.

They live here, not beside the code that acts on them (which imports numpy), so that the CLI can offer them in
``--help`` without loading numpy; those modules import them from here. The big tables have their own numpy-free
modules: ``variants.py``, ``cell_table.py``, ``backends/__init__.py``.
"""

ON_NAN = ("skip", "hold", "raise")  # StreamingPredictor(on_nan=...): a NaN/inf value skipped, held, or an error
SCALES = ("standard", "minmax", "none")  # Preprocessing.scale
BASELINES = ("auto", "naive", "none")  # train's --baseline: Holt-Winters/persistence where they win, naive, or none
DIFFERENCE_CHOICES = ("auto", "on", "off")  # train's --difference: auto decides from the training data
INT8_WEIGHTS = ("per-channel", "per-tensor")  # tflite-int8's weight scales (manifest converter["int8_weights"])
REFERENCES = ("auto", "keras", "stored")  # verify's float reference: run the .keras model, or the stored outputs
