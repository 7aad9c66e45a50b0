"""The sweeps shipped for maps (conf/sweep/exploding.yaml): what their sampling puts on
the map, run as a user runs them."""

from __future__ import annotations

from collections import Counter

import optuna
import pytest
from conftest import run_gradsweep
from optuna.trial import TrialState

from gradsweep.keys import TrialRecord
from gradsweep.study.storage import make_storage


@pytest.mark.slow
def test_the_exploding_sweep_puts_both_sides_of_each_boundary_on_its_map(tmp_path):
    # As shipped: 40 trials of 100 epochs, the boundary sampler, the median pruner. TPE,
    # spending its trials where training is healthy, gave vanishing 10, exploding 1,
    # healthy 28, diverged 1 here.
    done = run_gradsweep("+sweep=exploding", cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:]
    journal = str(tmp_path / "sweeps" / "exploding" / "optuna.journal")
    study = optuna.load_study(study_name="exploding", storage=make_storage(journal))
    counted = study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))
    regimes = Counter(TrialRecord.read(t.user_attrs).regime for t in counted)
    assert len(counted) == 40 and sum(regimes.values()) == 40, regimes
    sides = {
        "vanishing": regimes["vanishing"],
        "exploding or diverged": regimes["exploding"] + regimes["diverged"],
        "healthy": regimes["healthy"],
    }
    assert all(n >= 0.15 * len(counted) for n in sides.values()), regimes
