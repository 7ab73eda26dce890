"""Host side, TensorFlow loaded on first use: the model family (``modeling``, ``model_metadata``), training
(``trainer``: ``edgernn train`` and ``edgernn.predict``), choice by validation (``search``), the baseline under
the network (``season_baseline``) and the classical peers it is held beside (``peers``, ``comparison``)."""
