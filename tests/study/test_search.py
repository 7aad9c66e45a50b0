"""Search space to Optuna (gradsweep/study/search.py): grids, pruners."""

from __future__ import annotations

import pytest

from gradsweep.config import ConfigError, ParamSpec
from gradsweep.study.search import grid


def test_grid_values_stay_on_the_step():
    values = grid(
        {
            "optimizer.learning_rate": ParamSpec(type="float", low=0.0, high=1.0, step=0.3),
            "model.depth": ParamSpec(type="int", low=2, high=8, step=3),
        }
    )
    assert values["optimizer.learning_rate"] == pytest.approx([0.0, 0.3, 0.6, 0.9])
    assert values["model.depth"] == [2, 5, 8]


def test_pruner_none_ignores_the_options_of_the_sweep_files_pruner():
    import optuna

    from gradsweep.config import SweepConfig
    from gradsweep.study.search import make_pruner

    options = {"n_startup_trials": 8, "n_warmup_steps": 3}
    assert isinstance(make_pruner(SweepConfig(pruner="median", pruner_options=options)), optuna.pruners.MedianPruner)
    assert isinstance(make_pruner(SweepConfig(pruner="none", pruner_options=options)), optuna.pruners.NopPruner)
    with pytest.raises(ConfigError, match="sweep.pruner_options"):
        make_pruner(SweepConfig(pruner="median", pruner_options={"n_warmup": 3}))
