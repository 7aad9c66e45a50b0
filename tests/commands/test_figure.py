"""``gradsweep figure RUN_ID`` draws the figure of a run recorded without one, from its
epochs.csv and regime.json, and logs it to the run (real SQLite store, no TensorFlow in
the command's process)."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import TINY_DATA, tiny_config
from mlflow import MlflowClient

from gradsweep import keys
from gradsweep.commands.figure import figure
from gradsweep.config import TrackingConfig
from gradsweep.data.datasets import load
from gradsweep.diagnosis.flow_figure import recorded_layers
from gradsweep.errors import TrackingError
from gradsweep.tracking.recorder import run_recorded
from gradsweep.tracking.store import Tracker

PNG = b"\x89PNG\r\n\x1a\n"


def test_figure_of_a_run_recorded_without_one(tmp_path):
    tracking = TrackingConfig(uri=f"sqlite:///{tmp_path}/mlflow.db", artifacts=str(tmp_path / "artifacts"))
    config = replace(tiny_config(), tracking=replace(tracking, figures=False))
    run_id = run_recorded(config, load(TINY_DATA), 3, Tracker(tracking), "bare", {}).run.id
    client = MlflowClient(tracking.uri)
    assert "gradient_flow.png" not in {a.path for a in client.list_artifacts(run_id)}

    done = subprocess.run(
        [sys.executable, "-m", "gradsweep", "figure", run_id, "--tracking-uri", tracking.uri],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"figure of {run_id}: " in done.stdout and done.stdout.strip().endswith("/gradient_flow.png")
    assert "tensorflow" not in done.stderr.lower()
    assert "gradient_flow.png" in {a.path for a in client.list_artifacts(run_id)}
    drawn = client.download_artifacts(run_id, "gradient_flow.png", str(tmp_path))
    assert Path(drawn).read_bytes()[:8] == PNG
    assert client.get_run(run_id).info.status == "FINISHED"


def test_figure_of_an_unknown_run_names_it(tmp_path):
    tracking = TrackingConfig(uri=f"sqlite:///{tmp_path}/mlflow.db", artifacts=str(tmp_path / "artifacts"))
    Tracker(tracking)
    with pytest.raises(TrackingError, match=r"^run deadbeef: no such run with epochs\.csv and regime\.json"):
        figure("deadbeef", tracking.uri)


def test_recorded_layers_run_input_to_output_past_a_hundred():
    import pandas as pd

    names = [f"dense_{i:02d}" for i in range(101)] + ["output"]
    columns = ["epoch", keys.grad("dense_00", "rel_norm")] + [keys.grad(n, "norm_mean") for n in reversed(names)]
    assert recorded_layers(pd.DataFrame(columns=columns)) == names
