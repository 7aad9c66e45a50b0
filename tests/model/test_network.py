"""The network (gradsweep/model/network.py): layer names, the keys every statistic is
recorded under."""

from __future__ import annotations

import numpy as np
from conftest import tiny_config as _config

from gradsweep.config import ModelConfig
from gradsweep.data.datasets import load
from gradsweep.model.network import build_model
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
    assert ModelConfig(widths=[4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4]).layer_names[-2:] == ["dense_10", "output"]


def test_norm_and_residual_build_the_blocks_they_name():
    batch = build_model(ModelConfig(depth=3, width=8, norm="batch", residual=True), n_features=5, seed=0)
    names = {layer.name for layer in batch.layers}
    # A projection only where the width changes: features (5) -> 8, then identity skips.
    assert {"bn_00", "bn_02", "skip_00", "add_00", "add_02"} <= names and "skip_01" not in names
    assert batch.get_layer("dense_00").bias is None  # BatchNorm's shift replaces it
    assert batch.stat_layers == ["dense_00", "dense_01", "dense_02", "output"]  # projections are not recorded
    layer = build_model(ModelConfig(depth=2, width=8, norm="layer"), n_features=5, seed=0)
    assert {"ln_00", "ln_01"} <= {layer.name for layer in layer.layers}
    assert layer.get_layer("dense_00").bias is not None
    x = np.random.default_rng(0).normal(size=(16, 5)).astype("float32")
    again = build_model(ModelConfig(depth=3, width=8, norm="batch", residual=True), n_features=5, seed=0)
    assert np.array_equal(np.asarray(batch(x)), np.asarray(again(x)))  # the seed decides every initial value
