"""`python -m gradsweep` as a user runs it (gradsweep/commands/run.py and sweep.py): sweeps
and single runs into real stores, then read back. The tests here resume and extend one
smoke sweep in file order, so it is this module's own: the files that only read conftest's
shared one may run on another worker, before or after these."""

from __future__ import annotations

import math

import optuna
import pandas as pd
import pytest
from conftest import compose_config, run_gradsweep, smoke_sweep
from mlflow import MlflowClient

from gradsweep.diagnosis.regime import REGIMES
from gradsweep.keys import TrialRecord

SMOKE_EPOCHS = 2


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    return smoke_sweep(tmp_path_factory.mktemp("sweep"))


def _args(stores: dict, *extra: str) -> list[str]:
    return [f"{k}={v}" for k, v in stores.items()] + list(extra)


def _runs(stores: dict):
    client = MlflowClient(stores["tracking.uri"])
    experiment = client.get_experiment_by_name("gradsweep")
    return client, client.search_runs([experiment.experiment_id]) if experiment else []


def test_smoke_sweep_records_parent_and_nested_trials(smoke):
    tmp, stores, done = smoke
    study = optuna.load_study(study_name="smoke", storage=stores["sweep.storage"])
    trials = study.get_trials()
    assert len(trials) == 3 and all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    client, runs = _runs(stores)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and len(children) == 3
    parent = parents[0]
    assert study.user_attrs["mlflow_parent_run_id"] == parent.info.run_id
    assert parent.data.tags["data.digest"] and parent.data.tags["versions.tensorflow"]
    assert "best.trial_number" in parent.data.tags
    assert {"best/value", "best/val/loss", "best/val/accuracy"} <= set(parent.data.metrics)
    assert {a.path for a in client.list_artifacts(parent.info.run_id)} >= {"config.yaml", "report"}
    layers = ["dense_00", "dense_01", "output"]
    for run in children:
        assert run.info.status == "FINISHED"
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert run.data.tags["optuna.study"] == "smoke" and run.data.tags["optuna.state"] == "COMPLETE"
        number = int(run.data.tags["optuna.trial_number"])
        assert trials[number].user_attrs["mlflow_run_id"] == run.info.run_id
        assert run.info.run_name.startswith(f"trial-{number:03d} activation=")
        assert run.data.params["model.activation"] == trials[number].params["model.activation"]
        assert run.data.params["data.name"] == "moons" and run.data.params["optimizer.name"] == "adam"
        assert run.data.params["seed"] == str(trials[number].user_attrs["seed"])
        for layer in layers:
            for stat in ("norm_mean", "norm_max", "rel_norm", "update_ratio", "zero_frac", "nonfinite"):
                history = client.get_metric_history(run.info.run_id, f"grad/{layer}/{stat}")
                steps = sorted(m.step for m in history)
                assert steps == list(range(1, SMOKE_EPOCHS + 1)) or (
                    stat == "norm_mean" and steps == list(range(0, SMOKE_EPOCHS + 1))
                ), (layer, stat, steps)
        for metric in ("train/loss", "train/accuracy", "val/loss", "val/accuracy", "grad/global_norm"):
            assert len(client.get_metric_history(run.info.run_id, metric)) == SMOKE_EPOCHS
        assert math.isclose(run.data.metrics["val/loss"], trials[number].value, rel_tol=1e-6)
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert artifacts == {"config.yaml", "epochs.csv", "gradient_flow.png", "regime.json"}
        assert run.data.tags["regime"] in REGIMES and run.data.tags["regime.evidence"]
        assert trials[number].user_attrs["regime"] == run.data.tags["regime"]
        # the outcome is two attributes (two writes to the storage): the regime and the rest
        outcome = set(trials[number].user_attrs) - {"worker", "seed", "mlflow_run_id"}
        assert outcome == {"regime", "record"}, outcome
        record = TrialRecord.read(trials[number].user_attrs)
        assert record.epochs_run == SMOKE_EPOCHS and record.seconds["train"] > 0 and record.evidence
        assert "theory/chi1" in run.data.metrics and run.data.tags["theory.phase"]
    assert "open the UI" in done.stdout and "mlflow ui --backend-store-uri" in done.stdout
    assert "regime map                  sweeps/smoke/report/report.html" in done.stdout
    report = {a.path for a in client.list_artifacts(parent.info.run_id, "report")}
    assert {"report/report.html", "report/trials.csv"} <= report and any("map_" in p for p in report)
    assert not (tmp / "outputs").exists()


def test_same_command_resumes_without_new_trials(smoke):
    tmp, stores, _ = smoke
    again = run_gradsweep("+sweep=smoke", *_args(stores), cwd=tmp)
    assert again.returncode == 0, again.stdout[-3000:]
    assert "nothing to run" in again.stdout
    study = optuna.load_study(study_name="smoke", storage=stores["sweep.storage"])
    assert len(study.get_trials()) == 3
    _, runs = _runs(stores)
    assert len(runs) == 4 and all(r.info.status == "FINISHED" for r in runs)


def test_more_trials_continue_the_same_study_and_parent(smoke):
    tmp, stores, _ = smoke
    more = run_gradsweep("+sweep=smoke", "sweep.n_trials=4", *_args(stores), cwd=tmp)
    assert more.returncode == 0, more.stdout[-3000:]
    study = optuna.load_study(study_name="smoke", storage=stores["sweep.storage"])
    assert len(study.get_trials()) == 4
    _, runs = _runs(stores)
    parents = {r.data.tags.get("mlflow.parentRunId") for r in runs} - {None}
    assert len(parents) == 1 and len(runs) == 5


def test_changed_space_is_refused(smoke):
    tmp, stores, _ = smoke
    changed = run_gradsweep("+sweep=smoke", "sweep.space.model.activation.choices=[sigmoid]", *_args(stores), cwd=tmp)
    assert changed.returncode == 2
    assert "different search space" in changed.stdout and "Traceback" not in changed.stdout


def test_diverging_trials_stay_complete_with_finite_values(tmp_path, stores):
    done = run_gradsweep(
        "+sweep=smoke",
        "sweep.name=nan",
        "sweep.n_trials=2",
        "model.activation=linear",
        "model.init=random_normal",
        "model.init_std=5",
        "model.depth=4",
        "optimizer=sgd",
        "~sweep.space.model",
        "sweep.space.optimizer.learning_rate.low=50",
        "sweep.space.optimizer.learning_rate.high=100",
        "train.epochs=4",
        *_args(stores),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout[-3000:]
    trials = optuna.load_study(study_name="nan", storage=stores["sweep.storage"]).get_trials()
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 2
    assert all(math.isfinite(t.value) and TrialRecord.read(t.user_attrs).diverged for t in trials)
    _, runs = _runs(stores)
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert all(r.data.tags["diverged"] == "true" and r.data.tags["stop_reason"] == "diverged" for r in children)
    assert all(r.data.tags["regime"] == "diverged" for r in children)
    assert all(t.user_attrs["regime"] == "diverged" for t in trials)
    assert "regimes                     diverged 2" in done.stdout


def test_single_run_without_sweep(tmp_path, stores):
    del stores["sweep.storage"]
    done = run_gradsweep("data=moons", "data.n_samples=100", "train.epochs=2", *_args(stores), cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:]
    client, runs = _runs(stores)
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    assert runs[0].data.tags["gradsweep.kind"] == "single" and runs[0].data.params["train.seed"] == "0"
    assert runs[0].data.tags["regime"] in REGIMES and f"regime: {runs[0].data.tags['regime']}" in done.stdout
    table = pd.read_csv(client.download_artifacts(runs[0].info.run_id, "epochs.csv", str(tmp_path)))
    assert list(table["epoch"]) == [0, 1, 2]
    assert list((tmp_path / "sweeps").iterdir())  # Hydra's run folder, not ./outputs
    assert not (tmp_path / "outputs").exists()


def test_sigterm_leaves_no_running_run(tmp_path, stores):
    import signal
    import subprocess
    import sys
    import time

    args = ["+sweep=smoke", "sweep.name=term", "train.epochs=400", "data.n_samples=2000", *_args(stores)]
    _runs(stores)  # creates the MLflow schema now: two processes creating it at once collide
    process = subprocess.Popen(
        [sys.executable, "-m", "gradsweep", *args],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.time() + 120
        while time.time() < deadline and process.poll() is None:
            _, runs = _runs(stores)
            if any("mlflow.parentRunId" in r.data.tags for r in runs):
                break
            time.sleep(1)
        time.sleep(2)  # well inside the first trial's 400 epochs
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130, output[-2000:]
    _, runs = _runs(stores)
    assert len(runs) == 2 and {r.info.status for r in runs} == {"KILLED"}
    assert [r.data.tags["optuna.state"] for r in runs if "optuna.trial_number" in r.data.tags] == ["FAIL"]
    trials = optuna.load_study(study_name="term", storage=stores["sweep.storage"]).get_trials()
    assert [t.state for t in trials] == [optuna.trial.TrialState.FAIL]


@pytest.mark.slow
def test_mlflow_ui_serves_the_sweep(smoke):
    import json
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    tmp, stores, _ = smoke
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "ui",
            "--backend-store-uri",
            stores["tracking.uri"],
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        cwd=tmp,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(90):
            try:
                urllib.request.urlopen(f"{base}/health", timeout=2)
                break
            except OSError:
                time.sleep(1)
        _, runs = _runs(stores)
        request = urllib.request.Request(
            f"{base}/api/2.0/mlflow/runs/search",
            method="POST",
            headers={"Content-Type": "application/json"},
            data=json.dumps({"experiment_ids": [runs[0].info.experiment_id]}).encode(),
        )
        served = json.load(urllib.request.urlopen(request, timeout=10))["runs"]
        assert len(served) == len(runs)
        trial = next(r for r in runs if "mlflow.parentRunId" in r.data.tags)
        png = urllib.request.urlopen(
            f"{base}/get-artifact?path=gradient_flow.png&run_uuid={trial.info.run_id}", timeout=10
        ).read()
        assert png[:4] == b"\x89PNG"
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_swept_data_keys_reach_each_trial_and_objective_changes_are_refused(tmp_path, monkeypatch, stores):
    from gradsweep.commands.sweep import run_sweep
    from gradsweep.config import ConfigError

    monkeypatch.chdir(tmp_path)
    overrides = [
        "+sweep=smoke",
        "sweep.name=scaled",
        "sweep.sampler=grid",
        "sweep.sampler_options={}",
        "sweep.n_trials=2",
        "~sweep.space.optimizer",
        "sweep.space.model.activation.choices=[tanh]",
        "+sweep.space.data.scale={type:categorical,choices:[false,true]}",
        "train.epochs=1",
        *_args(stores),
    ]
    config = compose_config(*overrides)
    maximise = compose_config(*overrides, "sweep.objective.direction=maximize")
    run_sweep(config)
    _, runs = _runs(stores)
    trials = [r for r in runs if "optuna.trial_number" in r.data.tags]
    assert sorted(r.data.params["data.scale"] for r in trials) == ["False", "True"]
    assert len({r.data.tags["data.digest"] for r in trials}) == 2  # each trial trained on its own data
    with pytest.raises(ConfigError, match="different search space, objective"):
        run_sweep(maximise)
