"""The training loop (gradsweep/training/loop.py): trials in one process, divergence, the
restored best epoch and the objective read from it."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from conftest import TINY_DATA as DATA
from conftest import compose_config
from conftest import tiny_config as _config

from gradsweep.config import Config, ModelConfig, OptimizerConfig, TrainConfig
from gradsweep.data.datasets import load
from gradsweep.tracking.recorder import constant_loss, objective_value
from gradsweep.training.loop import train


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


def test_weights_gone_inf_stop_training_though_the_loss_stays_finite():
    # A ReLU net 32 deep at sigma_w^2 = 3 (the phase sweep's chaotic corner): its first
    # steps send kernels to +-inf; the dead net outputs a constant and its epoch-2 loss
    # would be ln 2, as if it had recovered.
    config = compose_config("+sweep=phase").with_params(
        {"model.activation": "relu", "model.depth": 32, "model.init_std": 0.1531}
    )
    result = train(config, load(config.data), seed=5)
    assert (result.stop_reason, result.diverged_epoch, len(result.epochs)) == ("diverged", 1, 1)
    assert np.isfinite(result.epochs[0]["train/loss"])  # the loss alone would not have said so


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
