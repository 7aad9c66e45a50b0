"""The typed schema (gradsweep/config/schema.py): bad values fail naming their key,
whether composed by Hydra, changed by a trial or built by hand."""

from __future__ import annotations

import pytest
from conftest import compose_config

from gradsweep.config import ConfigError, ParamSpec


@pytest.mark.parametrize(
    "overrides, key",
    [
        (["model.depth=0"], "model.depth"),
        (["model.width=0"], "model.width"),
        (["model.activation=swishy"], "model.activation"),
        (["model.init=kaiming"], "model.init"),
        (["model.init_std=-1"], "model.init_std"),
        (["optimizer.learning_rate=-0.1"], "optimizer.learning_rate"),
        (["data=credit_card", "data.dir=null"], "data.dir"),
        (["+sweep=smoke", "sweep.space.optimizer.learning_rate.low=0"], "sweep.space.optimizer.learning_rate.low"),
        (["+sweep=smoke", "+sweep.space.model.depth={type:int,low:5,high:2}"], "sweep.space.model.depth"),
        (["+sweep=smoke", "+sweep.space.model.depht={type:int,low:1,high:2}"], "sweep.space.model.depht"),
        (["+sweep=smoke", "+sweep.space.model.activation.typo=1"], "sweep.space.model.activation.typo"),
        (["+sweep=smoke", "sweep.sampler=annealing"], "sweep.sampler"),
    ],
)
def test_bad_values_name_their_key(overrides, key):
    with pytest.raises(ConfigError, match=rf"^{key}:"):
        compose_config(*overrides)


def test_int_dimension_needs_a_whole_step():
    with pytest.raises(ConfigError, match="sweep.space.model.depth.step"):
        ParamSpec.build({"type": "int", "low": 1, "high": 4, "step": 0.5}, "sweep.space.model.depth")


def test_with_params_revalidates():
    config = compose_config("+sweep=smoke")
    assert config.with_params({"model.depth": 5}).model.depth == 5
    with pytest.raises(ConfigError, match="model.depth"):
        config.with_params({"model.depth": -1})


def test_initializer_names_are_keras_names():
    import keras

    from gradsweep.config import INITIALIZERS

    for name in INITIALIZERS:
        assert keras.initializers.get(name) is not None
