"""One training recorded as one MLflow run (gradsweep/tracking/recorder.py), on a real
SQLite store."""

from __future__ import annotations

from dataclasses import replace

import pytest
from conftest import TINY_DATA, tiny_config
from mlflow import MlflowClient

from gradsweep.config import TrackingConfig
from gradsweep.data.datasets import load
from gradsweep.tracking.recorder import run_recorded
from gradsweep.tracking.store import Tracker


@pytest.mark.parametrize("figures", [True, False])
def test_a_run_keeps_its_artifacts_and_the_figure_only_when_asked(tmp_path, figures):
    tracking = TrackingConfig(uri=f"sqlite:///{tmp_path}/mlflow.db", artifacts=str(tmp_path / "artifacts"))
    config = replace(tiny_config(), tracking=replace(tracking, figures=figures))
    recorded = run_recorded(config, load(TINY_DATA), 7, Tracker(tracking), "one", {})
    client = MlflowClient(tracking.uri)
    run = client.get_run(recorded.run.id)
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    expected = {"config.yaml", "epochs.csv", "regime.json"} | ({"gradient_flow.png"} if figures else set())
    assert artifacts == expected
    assert run.info.status == "FINISHED" and run.info.run_name == f"one [{recorded.verdict.regime}]"
    assert run.data.tags["regime"] == recorded.verdict.regime and run.data.params["seed"] == "7"
