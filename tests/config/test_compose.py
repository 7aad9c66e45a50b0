"""Every shipped config composes, and bad keys or values fail at compose time, named."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException

from gradsweep.config import Config, ConfigError, flatten, register, to_config
from gradsweep.config.compose import config_dir

CONF = Path(config_dir())
register()


def _compose(*overrides: str) -> Config:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return to_config(compose("config", overrides=list(overrides)))


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


REQUIRED = {"csv": ["data.path=x.csv", "data.target=y"]}


@pytest.mark.parametrize("group", ["data", "model", "optimizer", "train", "tracking", "regime"])
def test_every_group_option_composes(group):
    for option in _options(group):
        config = _compose(f"{group}={option}", *REQUIRED.get(option, []))
        if group in ("data", "optimizer"):
            assert getattr(config, group).name == option


@pytest.mark.parametrize("sweep", _options("sweep"))
def test_every_sweep_composes_over_real_keys(sweep):
    config = _compose(f"+sweep={sweep}")
    assert config.sweep is not None and config.sweep.name == sweep
    keys = flatten(config)
    for name in config.sweep.params():
        assert name in keys, name


@pytest.mark.parametrize("experiment", _options("experiment"))
def test_every_experiment_composes(experiment):
    config = _compose(f"+experiment={experiment}")
    assert config.data.name == "credit_card" and config.data.oversample == "before_split"
    assert config.train.epochs == 100 and config.train.batch_size == 32


def test_seed_presets_are_the_tutorials_models():
    vanishing = _compose("+experiment=seed_vanishing")
    assert vanishing.model.hidden_widths == [10] * 10 and vanishing.model.activation == "sigmoid"
    fixed = _compose("+experiment=seed_vanishing_fixed")
    assert fixed.model.hidden_widths == [128, 256, 128, 64] and fixed.model.dropout == 0.5
    assert fixed.data.scale and fixed.train.early_stopping_patience == 10
    exploding = _compose("+experiment=seed_exploding")
    assert (
        exploding.model.init,
        exploding.model.init_std,
        exploding.optimizer.name,
        exploding.optimizer.learning_rate,
    ) == ("random_normal", 1.0, "sgd", 1.0)
    assert exploding.model.hidden_widths == [10] * 4 and not exploding.data.scale
    fixed = _compose("+experiment=seed_exploding_fixed")
    assert fixed.optimizer.clipnorm == 1.0 and fixed.model.hidden_widths == [10] and fixed.data.scale


def test_search_space_is_overridable_from_the_command_line():
    config = _compose(
        "+sweep=smoke",
        "sweep.space.model.activation.choices=[sigmoid]",
        "+sweep.space.model.depth={type:int,low:1,high:3}",
        "sweep.n_trials=7",
    )
    params = config.sweep.params()
    assert params["model.activation"].choices == ["sigmoid"]
    assert (params["model.depth"].low, params["model.depth"].high) == (1, 3)
    assert config.sweep.n_trials == 7


def test_default_storage_lives_under_sweeps():
    assert _compose("+sweep=smoke").sweep.storage == "sweeps/smoke/optuna.journal"


@pytest.mark.parametrize(
    "override, key",
    [
        ("model.depht=3", "model.depht"),
        ("model.depth=abc", "model.depth"),
        ("train.epochs=1.5", "train.epochs"),
        ("optimizer=adagrad", "optimizer"),
    ],
)
def test_typos_and_wrong_types_fail_at_compose_time(override, key):
    with pytest.raises(ConfigCompositionException) as err:
        _compose(override)
    assert key in str(err.value) + str(err.value.__cause__)


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
        _compose(*overrides)


def test_user_sweep_files_in_working_directory(tmp_path, monkeypatch):
    (tmp_path / "conf" / "sweep").mkdir(parents=True)
    (tmp_path / "conf" / "sweep" / "mine.yaml").write_text(
        "# @package _global_\nsweep:\n  name: mine\n  n_trials: 2\n"
        "  space:\n    model:\n      depth: {type: int, low: 1, high: 4}\n"
    )
    monkeypatch.chdir(tmp_path)
    config = _compose("+sweep=mine")
    assert config.sweep.name == "mine" and "model.depth" in config.sweep.params()


def test_with_params_revalidates():
    config = _compose("+sweep=smoke")
    assert config.with_params({"model.depth": 5}).model.depth == 5
    with pytest.raises(ConfigError, match="model.depth"):
        config.with_params({"model.depth": -1})


def test_initializer_names_are_keras_names():
    import keras

    from gradsweep.config import INITIALIZERS

    for name in INITIALIZERS:
        assert keras.initializers.get(name) is not None
