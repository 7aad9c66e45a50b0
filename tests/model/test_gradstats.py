"""The statistics recorded inside train_step (gradsweep/model/gradstats.py) equal an
independent GradientTape; captured optimizer steps; the saturation probe."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import TINY_DATA as DATA
from conftest import tiny_config as _config

from gradsweep.config import Config, ModelConfig, TrainConfig
from gradsweep.data.datasets import Dataset, load
from gradsweep.model.gradstats import apply_and_capture
from gradsweep.model.network import build_model
from gradsweep.training.loop import train


def _independent_gradients(config: Config, data: Dataset, seed: int):
    model = build_model(config.model, data.x_train.shape[1], seed)
    names = config.model.layer_names
    kernels = [model.get_layer(n).kernel for n in names]
    with tf.GradientTape() as tape:
        pred = model(data.x_train, training=True)
        loss = tf.reduce_mean(tf.keras.losses.binary_crossentropy(data.y_train.reshape(-1, 1), pred))
    grads = tape.gradient(loss, kernels)
    return names, [np.asarray(g) for g in grads], [np.asarray(k) for k in kernels]


@pytest.mark.parametrize("clipnorm", [None, 1e-3])
def test_recorded_norms_equal_gradient_tape(clipnorm):
    config = _config(clipnorm=clipnorm)
    data = load(config.data)
    assert len(data.x_train) == 64
    names, grads, kernels = _independent_gradients(config, data, seed=3)
    result = train(config, data, seed=3)
    epoch = result.epochs[0]
    for name, g, w in zip(names, grads, kernels):
        norm = np.linalg.norm(g)
        # Before clipping, whatever clipnorm is.
        assert epoch[f"grad/{name}/norm_mean"] == pytest.approx(norm, rel=1e-4)
        assert epoch[f"grad/{name}/norm_max"] == pytest.approx(norm, rel=1e-4)
        assert result.init[f"grad/{name}/norm_mean"] == pytest.approx(norm, rel=1e-4)
        applied = norm if clipnorm is None else min(norm, clipnorm)
        assert epoch[f"grad/{name}/update_ratio"] == pytest.approx(0.1 * applied / np.linalg.norm(w), rel=1e-3)
        assert epoch[f"grad/{name}/rel_norm"] == pytest.approx(norm / np.linalg.norm(w), rel=1e-4)
        assert epoch[f"grad/{name}/zero_frac"] == pytest.approx(np.mean(np.abs(g) <= 1e-12))
        assert epoch[f"grad/{name}/nonfinite"] == 0
    assert epoch["grad/global_norm"] >= max(np.linalg.norm(g) for g in grads)


OPTIMIZERS = {
    "adam": lambda: keras.optimizers.Adam(0.01),
    "adam_clipnorm": lambda: keras.optimizers.Adam(0.01, clipnorm=1e-3),
    "sgd": lambda: keras.optimizers.SGD(0.1),
    "sgd_momentum": lambda: keras.optimizers.SGD(0.1, momentum=0.9),
    "sgd_nesterov": lambda: keras.optimizers.SGD(0.1, momentum=0.9, nesterov=True),
    "rmsprop_momentum": lambda: keras.optimizers.RMSprop(0.01, momentum=0.5),
    "adamw": lambda: keras.optimizers.AdamW(0.01, weight_decay=0.1),  # falls back
}


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_captured_steps_equal_the_kernels_change(optimizer):
    kernels = [keras.Variable(np.random.default_rng(i).normal(size=(4, 3)).astype("float32")) for i in range(2)]
    bias = keras.Variable(np.ones(3, "float32"))
    variables = [kernels[0], bias, kernels[1]]
    opt = OPTIMIZERS[optimizer]()
    opt.build(variables)

    fallbacks = []

    @tf.function
    def step(scale):
        grads = [scale * tf.cast(tf.reshape(tf.range(tf.size(v)), v.shape), tf.float32) for v in variables]
        before = [tf.convert_to_tensor(k) for k in kernels]
        moves = apply_and_capture(opt, grads, variables, kernels, before)
        # The fallback reads the kernel after the update and subtracts; a captured step doesn't.
        fallbacks.extend(m.op.type == "Sub" and m.op.inputs[1] is b for m, b in zip(moves, before))
        return moves, [tf.convert_to_tensor(k) - b for k, b in zip(kernels, before)]

    for scale in (1.0, -0.5, 2.0):  # momentum and Adam's moments carry over
        moves, changes = step(tf.constant(scale))
        for move, change in zip(moves, changes):
            np.testing.assert_allclose(np.abs(move), np.abs(change), rtol=1e-5, atol=1e-7)
    assert fallbacks == [optimizer == "adamw"] * len(kernels)  # traced once
    assert not {"assign", "assign_add", "assign_sub"} & set(vars(opt))  # the class's methods again


def test_saturation_probe_sees_a_saturated_sigmoid_layer():
    base = load(DATA)
    raw = Dataset(base.x_train * 1e4, base.y_train, base.x_val * 1e4, base.y_val, base.features)
    config = Config(
        data=DATA,
        model=ModelConfig(activation="sigmoid", depth=2, width=8, init="random_normal", init_std=1.0),
        train=TrainConfig(epochs=1),
    )
    result = train(config, raw, seed=0)
    assert result.init["act/dense_00/saturation"] > 0.95
    assert result.epochs[0]["grad/dense_00/zero_frac"] > 0.5
    healthy = train(_config(), base, seed=0)
    assert healthy.init["act/dense_00/saturation"] < 0.2
