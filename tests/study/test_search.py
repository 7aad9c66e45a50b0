"""Search space to Optuna, rerun comparison, the regime map's handling of odd values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gradsweep.commands.rerun import compare
from gradsweep.config import ConfigError, ParamSpec
from gradsweep.report.regime_map import _axis_values, remedies
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


def test_int_dimension_needs_a_whole_step():
    with pytest.raises(ConfigError, match="sweep.space.model.depth.step"):
        ParamSpec.build({"type": "int", "low": 1, "high": 4, "step": 0.5}, "sweep.space.model.depth")


def test_rerun_comparison_treats_equal_infinities_as_equal():
    a = pd.DataFrame({"epoch": [0, 1], "train/loss": [0.7, np.inf], "grad/x": [np.nan, 1.0]})
    assert compare(a, a.copy()) == 0.0
    b = a.copy()
    b.loc[1, "grad/x"] = 1.5
    assert compare(a, b) == pytest.approx(0.5)
    assert compare(a, a.iloc[:1]) == np.inf


def test_none_is_a_category_of_its_own_on_maps():
    spec = ParamSpec(type="categorical", choices=[None, 1.0])
    table = pd.DataFrame({"optimizer.clipnorm": [None, 1.0, np.nan], "regime": ["vanishing", "healthy", "healthy"]})
    positions, labels = _axis_values(table, "optimizer.clipnorm", spec)
    assert labels == ["None", "1.0"] and list(positions) == [0, 1, 0]
    # The one unhealthy trial without clipping; its only neighbour with clipping is healthy.
    assert remedies(table, {"optimizer.clipnorm": spec}) == [
        "optimizer.clipnorm=set: the nearest trial with it is healthy for 1 of 1 unhealthy trials without it"
    ]


def test_pruner_none_ignores_the_options_of_the_sweep_files_pruner():
    import optuna

    from gradsweep.config import SweepConfig
    from gradsweep.study.search import make_pruner

    options = {"n_startup_trials": 8, "n_warmup_steps": 3}
    assert isinstance(make_pruner(SweepConfig(pruner="median", pruner_options=options)), optuna.pruners.MedianPruner)
    assert isinstance(make_pruner(SweepConfig(pruner="none", pruner_options=options)), optuna.pruners.NopPruner)
    with pytest.raises(ConfigError, match="sweep.pruner_options"):
        make_pruner(SweepConfig(pruner="median", pruner_options={"n_warmup": 3}))
