"""The cell table: every recurrent cell edgernn trains, exports and runs, and each one's quirks, as flags.

Standard library only, so that the CLI offers the names without loading numpy. A new cell is one row here plus
its numpy step function in ``edgernn/runtime/cells.py`` (``STEPS``); its Keras layer class must build a step
model from ``cell.from_config`` (as SimpleRNN/GRU/LSTM do). Nothing else keys on a cell's name.
"""

from __future__ import annotations

from dataclasses import dataclass

# the outputs an activation can reach; relu and linear are unbounded (absent here)
ACTIVATION_RANGES = {"tanh": (-1.0, 1.0), "sigmoid": (0.0, 1.0), "hard_sigmoid": (0.0, 1.0)}


@dataclass(frozen=True)
class CellSpec:
    """One recurrent cell: its name in edgernn (CLI, manifest), its Keras layer class, its states and quirks."""

    name: str
    keras_class: str  # the layer class in ``keras.layers`` (its ``cell`` holds the weights)
    state_names: tuple[str, ...]  # per layer, in Keras' order: ("h",) or ("h", "c")
    gates: int  # blocks of ``units`` columns in the kernels
    gated: bool = False  # has gates computed with a ``recurrent_activation`` (checked at export)
    split_bias: bool = False  # ``reset_after=True`` keeps input and recurrent biases apart: ``[2, gates * units]``
    output_gate: bool = False  # ``h = o * act(c)`` with ``o`` in [0, 1]: h's range stretched to include 0

    def bias_shape(self, layer) -> tuple[int, ...]:
        width = self.gates * layer.units
        return (2, width) if self.split_bias and layer.reset_after else (width,)

    def activations(self, layer) -> tuple[str, ...]:
        """The activation names the layer uses (export checks each is supported)."""
        return (layer.activation, layer.recurrent_activation) if self.gated else (layer.activation,)

    def bounded_states(self, layer) -> dict[str, tuple[float, float]]:
        """State name -> the range the cell keeps it in, for states bounded by the layer's activation: ``h`` is
        the activation's output (SimpleRNN), a blend of it with the previous ``h`` (GRU) or it scaled by a gate
        in [0, 1] (LSTM). An LSTM's ``c`` and any state of a relu/linear cell are unbounded."""
        bounds = ACTIVATION_RANGES.get(layer.activation)
        if bounds is None:
            return {}
        if self.output_gate:
            bounds = (min(bounds[0], 0.0), max(bounds[1], 0.0))
        return {"h": bounds}


CELLS = {spec.name: spec for spec in (
    CellSpec("simple_rnn", "SimpleRNN", ("h",), 1),
    CellSpec("gru", "GRU", ("h",), 3, gated=True, split_bias=True),
    CellSpec("lstm", "LSTM", ("h", "c"), 4, gated=True, output_gate=True),
)}
DEFAULT_CELL = "simple_rnn"
