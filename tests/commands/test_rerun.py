"""`gradsweep rerun RUN_ID` (gradsweep/commands/rerun.py): a recorded trial trained again
gives the identical epochs table, and the comparison behind that verdict."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import smoke_sweep
from mlflow import MlflowClient

from gradsweep.commands.rerun import compare


@pytest.fixture(scope="module")
def smoke_to_rerun(tmp_path_factory):
    """A smoke sweep of its own: a rerun adds a run to the store, which the tests reading
    conftest's shared `smoke` sweep do not expect."""
    return smoke_sweep(tmp_path_factory.mktemp("rerun"))


def test_rerun_reproduces_a_trial_exactly(smoke_to_rerun):
    tmp, stores, _ = smoke_to_rerun
    client = MlflowClient(stores["tracking.uri"])
    runs = client.search_runs([client.get_experiment_by_name("gradsweep").experiment_id])
    trial = next(r for r in runs if r.data.tags.get("optuna.trial_number") == "1")
    done = subprocess.run(
        [sys.executable, "-m", "gradsweep", "rerun", trial.info.run_id, "--tracking-uri", stores["tracking.uri"]],
        cwd=tmp,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:]
    assert "identical" in done.stdout + done.stderr


def test_rerun_comparison_treats_equal_infinities_as_equal():
    a = pd.DataFrame({"epoch": [0, 1], "train/loss": [0.7, np.inf], "grad/x": [np.nan, 1.0]})
    assert compare(a, a.copy()) == 0.0
    b = a.copy()
    b.loc[1, "grad/x"] = 1.5
    assert compare(a, b) == pytest.approx(0.5)
    assert compare(a, a.iloc[:1]) == np.inf
