"""Every shipped config composes (gradsweep/config/compose.py and the conf/ tree), and
unknown keys or wrongly typed values fail at compose time, named."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import compose_config
from hydra.errors import ConfigCompositionException

from gradsweep.config import flatten
from gradsweep.config.compose import config_dir

CONF = Path(config_dir())


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


REQUIRED = {"csv": ["data.path=x.csv", "data.target=y"]}


@pytest.mark.parametrize("group", ["data", "model", "optimizer", "train", "tracking", "regime"])
def test_every_group_option_composes(group):
    for option in _options(group):
        config = compose_config(f"{group}={option}", *REQUIRED.get(option, []))
        if group in ("data", "optimizer"):
            assert getattr(config, group).name == option


@pytest.mark.parametrize("sweep", _options("sweep"))
def test_every_sweep_composes_over_real_keys(sweep):
    config = compose_config(f"+sweep={sweep}")
    assert config.sweep is not None and config.sweep.name == sweep
    keys = flatten(config)
    for name in config.sweep.params():
        assert name in keys, name


@pytest.mark.parametrize("experiment", _options("experiment"))
def test_every_experiment_composes(experiment):
    config = compose_config(f"+experiment={experiment}")
    assert config.data.name == "credit_card" and config.data.oversample == "before_split"
    assert config.train.epochs == 100 and config.train.batch_size == 32


def test_seed_presets_are_the_tutorials_models():
    vanishing = compose_config("+experiment=seed_vanishing")
    assert vanishing.model.hidden_widths == [10] * 10 and vanishing.model.activation == "sigmoid"
    fixed = compose_config("+experiment=seed_vanishing_fixed")
    assert fixed.model.hidden_widths == [128, 256, 128, 64] and fixed.model.dropout == 0.5
    assert fixed.data.scale and fixed.train.early_stopping_patience == 10
    exploding = compose_config("+experiment=seed_exploding")
    assert (
        exploding.model.init,
        exploding.model.init_std,
        exploding.optimizer.name,
        exploding.optimizer.learning_rate,
    ) == ("random_normal", 1.0, "sgd", 1.0)
    assert exploding.model.hidden_widths == [10] * 4 and not exploding.data.scale
    fixed = compose_config("+experiment=seed_exploding_fixed")
    assert fixed.optimizer.clipnorm == 1.0 and fixed.model.hidden_widths == [10] and fixed.data.scale


def test_search_space_is_overridable_from_the_command_line():
    config = compose_config(
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
    assert compose_config("+sweep=smoke").sweep.storage == "sweeps/smoke/optuna.journal"


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
        compose_config(override)
    assert key in str(err.value) + str(err.value.__cause__)


def test_user_sweep_files_in_working_directory(tmp_path, monkeypatch):
    (tmp_path / "conf" / "sweep").mkdir(parents=True)
    (tmp_path / "conf" / "sweep" / "mine.yaml").write_text(
        "# @package _global_\nsweep:\n  name: mine\n  n_trials: 2\n"
        "  space:\n    model:\n      depth: {type: int, low: 1, high: 4}\n"
    )
    monkeypatch.chdir(tmp_path)
    config = compose_config("+sweep=mine")
    assert config.sweep.name == "mine" and "model.depth" in config.sweep.params()
