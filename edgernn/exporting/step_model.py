"""Keras model -> the models a device runs: a one-step model with explicit state, or an unrolled window model.

Streaming: inputs ``x [batch, F]`` and one state per layer (``h0``, ``c0`` for LSTM, ``h1``...), outputs ``y`` and
the next states (``h0_out``...), built from fresh cells carrying the trained cells' own weights. This is what
converts cleanly to builtin TFLite ops in every quantization mode. Window: the same layers with
``unroll=True`` over a fixed length (a sequence RNN does not convert to builtin ops otherwise).
The models are saved once as a SavedModel with a ``serving_default`` signature whose inputs and outputs carry
those names, so every converter and interpreter sees the same stable names.
"""

from __future__ import annotations

from pathlib import Path

from edgernn.exporting.inspect import InspectedModel
from edgernn.runtime.manifest import SIGNATURE, Mode, state_output
from edgernn.training.tf_import import import_keras, import_tensorflow


def build_step_model(inspected: InspectedModel):
    """The one-step Keras model: ``[x, *states] -> [y, *next_states]`` (names from ``ModelInfo.state_inputs``)."""
    keras = import_keras()
    info = inspected.info
    x = keras.Input((inspected.features,), name="x")  # [batch, features]
    state_inputs = {name: keras.Input((units,), name=name) for name, units in info.state_inputs()}
    z, next_states = x, []
    for i, layer in enumerate(inspected.recurrent_layers):
        config = {**layer.cell.get_config(), "name": f"cell{i}"}  # names must be unique across stacked layers
        cell = type(layer.cell).from_config(config)
        states = [state_inputs[f"{kind}{i}"] for kind in info.layers[i].state_names]
        z, new = cell(z, states if len(states) > 1 else states[0])  # [batch, units]
        cell.set_weights(layer.cell.get_weights())
        next_states.extend(new if isinstance(new, (list, tuple)) else [new])
    head = keras.layers.Dense.from_config(inspected.head.get_config())
    y = head(z)  # [batch, outputs]
    head.set_weights(inspected.head.get_weights())
    outputs = [keras.layers.Identity(name="y")(y)]
    outputs += [keras.layers.Identity(name=state_output(name))(s)
                for (name, _), s in zip(info.state_inputs(), next_states)]
    return keras.Model([x, *state_inputs.values()], outputs, name="edgernn_step")


def build_window_model(inspected: InspectedModel, window: int | None = None):
    """The window model unrolled over a fixed length: ``x [batch, window, F] -> y [batch, K]``."""
    keras = import_keras()
    window = window or inspected.info.window
    x = keras.Input((window, inspected.features), name="x")
    z = x
    for layer in inspected.recurrent_layers:
        config = layer.get_config()
        config.update(unroll=True, name=layer.name)
        clone = type(layer).from_config(config)
        z = clone(z)
        clone.set_weights(layer.get_weights())
    head = keras.layers.Dense.from_config(inspected.head.get_config())
    y = head(z)
    head.set_weights(inspected.head.get_weights())
    return keras.Model(x, keras.layers.Identity(name="y")(y), name="edgernn_window")


def device_model_and_samples(inspected: InspectedModel, z, count: int | None = None) -> tuple[object, list[dict]]:
    """The model a device runs (step or unrolled window) and ``count`` calibration samples spread over model
    inputs ``z`` (default: ``calibration.DEFAULT_STEPS``)."""
    from edgernn.exporting import calibration

    count = count or calibration.DEFAULT_STEPS
    if inspected.info.mode is Mode.STREAMING:
        return build_step_model(inspected), calibration.streaming_samples(inspected.info, inspected.weights, z, count)
    return build_window_model(inspected), calibration.window_samples(inspected.info, z, count)


def input_signature(model) -> list:
    """TensorSpecs named after the model's inputs, with a free batch dimension (streams resize it)."""
    tf = import_tensorflow()
    return [tf.TensorSpec((None, *t.shape[1:]), tf.float32, name=t.name.split(":")[0]) for t in model.inputs]


def write_saved_model(model, directory: Path) -> Path:
    """Save ``model`` as a SavedModel whose ``serving_default`` returns a dict keyed by output names."""
    keras = import_keras()
    names = list(model.output_names)  # the Identity layers' names: y, h0_out, ...
    archive = keras.export.ExportArchive()
    archive.track(model)

    def serve(*inputs):
        outputs = model(list(inputs) if len(inputs) > 1 else inputs[0])
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        return dict(zip(names, outputs))

    archive.add_endpoint(SIGNATURE, serve, input_signature=input_signature(model))
    archive.write_out(str(directory), verbose=False)
    return directory
