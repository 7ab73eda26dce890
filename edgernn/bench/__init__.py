"""``edgernn bench``: the cost of a prediction per variant and backend, against baselines from the same run
(``measure``). No TensorFlow: it is what a device can measure about itself."""
