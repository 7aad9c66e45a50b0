"""The network (gradsweep/model/network.py): layer names, the keys every statistic is
recorded under."""

from __future__ import annotations

from gradsweep.config import Config, DataConfig, ModelConfig, OptimizerConfig, TrainConfig
from gradsweep.data.datasets import load
from gradsweep.model.network import layer_names
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
