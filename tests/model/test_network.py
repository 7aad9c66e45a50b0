"""The network (gradsweep/model/network.py): layer names, the keys every statistic is
recorded under."""

from __future__ import annotations

from conftest import tiny_config as _config

from gradsweep.config import ModelConfig
from gradsweep.data.datasets import load
from gradsweep.model.network import layer_names
from gradsweep.training.loop import train


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
