"""The statistics recorded inside train_step equal an independent GradientTape."""

from __future__ import annotations

from dataclasses import replace

import keras
import numpy as np
import pytest
import tensorflow as tf

from gradsweep.config import Config, DataConfig, ModelConfig, OptimizerConfig, TrainConfig
from gradsweep.data.datasets import Dataset, load
from gradsweep.model.gradstats import apply_and_capture
from gradsweep.model.network import build_model, layer_names
from gradsweep.tracking.recorder import constant_loss, objective_value
from gradsweep.training.loop import train

# 64 training rows and one batch of 64: an epoch is exactly one step on all of them.
DATA = DataConfig(name="moons", n_samples=80)


def _config(**optimizer) -> Config:
    return Config(
        data=DATA,
        model=ModelConfig(activation="tanh", depth=3, width=8),
        optimizer=OptimizerConfig(name="sgd", learning_rate=0.1, **optimizer),
        train=TrainConfig(epochs=1, batch_size=64),
    )


def _independent_gradients(config: Config, data: Dataset, seed: int):
    model = build_model(config.model, data.x_train.shape[1], seed)
    names = layer_names(config.model)
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


def test_layer_names_are_stable_across_trials():
    config = _config()
    data = load(config.data)
    first, second = train(config, data, seed=1), train(config, data, seed=2)
    expected = {
        "grad/dense_00/norm_mean",
        "grad/dense_01/norm_mean",
        "grad/dense_02/norm_mean",
        "grad/output/norm_mean",
    }
    assert expected <= set(first.epochs[0]) and set(first.epochs[0]) == set(second.epochs[0])
    assert layer_names(ModelConfig(widths=[4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4]))[-2:] == ["dense_10", "output"]


def test_trials_in_one_process_do_not_keep_earlier_graphs():
    import gc

    from tensorflow.python.framework.func_graph import FuncGraph

    config = _config()
    data = load(config.data)

    def graphs() -> int:
        gc.collect()
        return sum(isinstance(o, FuncGraph) for o in gc.get_objects())

    def one_kept(width: int) -> Config:  # a new architecture each time, one model kept
        return replace(config, model=replace(config.model, width=width), train=replace(config.train, keep_compiled=1))

    train(one_kept(8), data, seed=1)
    after_one = graphs()
    for width in (9, 10, 11):
        train(one_kept(width), data, seed=width)
    # TensorFlow's gradient registry kept every trial's graphs (+~20 per trial here).
    assert graphs() <= after_one


def test_nan_loss_stops_training_and_keeps_the_trial_as_data():
    config = Config(
        data=DATA,
        model=ModelConfig(activation="linear", depth=4, width=16, init="random_normal", init_std=5.0),
        optimizer=OptimizerConfig(name="sgd", learning_rate=100.0),
        train=TrainConfig(epochs=5),
    )
    data = load(config.data)
    result = train(config, data, seed=0)
    assert result.diverged and result.stop_reason == "diverged"
    assert len(result.epochs) == result.diverged_epoch < 5  # stopped right at the NaN epoch
    assert not np.isfinite(result.epochs[-1]["train/loss"])
    steps = -(-len(data.x_train) // config.train.batch_size)
    assert 0 < result.epochs[-1]["grad/dense_00/nonfinite"] <= steps  # steps with a NaN/inf, not entries
    value = objective_value(result, "val/loss", data)
    assert np.isfinite(value) and value == pytest.approx(constant_loss(data.positive_rate))
    assert objective_value(result, "val/accuracy", data) == pytest.approx(
        max(data.positive_rate, 1 - data.positive_rate)
    )


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


def test_objective_uses_the_restored_best_epoch():
    config = Config(
        data=DATA,
        model=ModelConfig(activation="tanh", depth=2, width=8),
        optimizer=OptimizerConfig(name="sgd", learning_rate=2.0),
        train=TrainConfig(epochs=6, batch_size=16, early_stopping_patience=50),
    )
    result = train(config, load(config.data), seed=0)
    losses = [e["val/loss"] for e in result.epochs]
    assert result.stop_reason == "completed" and len(losses) == 6
    assert result.final["val/loss"] == min(losses)  # Keras restored the best weights at the end
