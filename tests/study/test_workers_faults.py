"""Several workers on one study (gradsweep/study: parent, worker, recovery, storage), and
the faults they must survive: a worker killed with SIGKILL mid-trial, the whole sweep killed
and run again, servers restarted or gone. Real processes, real stores."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from conftest import run_gradsweep
from mlflow import MlflowClient
from optuna.trial import TrialState

# Trials of a few seconds each, so a kill lands inside one.
EPOCHS = 30
SWEEP = ["+sweep=smoke", f"train.epochs={EPOCHS}", "data.n_samples=1500"]


def _start(args: list[str], cwd: Path, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "gradsweep", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        env={**os.environ, **(env or {})},
    )


def _finish(process: subprocess.Popen, timeout: float = 600) -> str:
    try:
        output, _ = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    return output


def _wait_for_trial_in_progress(
    study_name: str, storage_url: str, process: subprocess.Popen, timeout: float = 180
) -> optuna.trial.FrozenTrial:
    """A RUNNING trial that has reported at least two epochs (so it is mid-training)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert process.poll() is None, process.communicate()[0][-3000:]
        try:
            trials = optuna.load_study(study_name=study_name, storage=_storage(storage_url)).get_trials(
                states=(TrialState.RUNNING,)
            )
        except (KeyError, FileNotFoundError):  # the study is not created yet
            trials = []
        ready = [t for t in trials if len(t.intermediate_values) >= 2 and "worker" in t.user_attrs]
        if ready:
            return ready[0]
        time.sleep(0.3)
    raise AssertionError("no trial reached its second epoch in time")


def _storage(url: str):
    if "://" in url:
        return url
    return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(url))


def check_exactly_once(study: optuna.Study, client: MlflowClient, n_trials: int, lost: list[int]) -> None:
    """Exactly ``n_trials`` counted, each lost trial run again once with its parameters and
    seed, no trial run twice to completion, no MLflow run left RUNNING."""
    trials = study.get_trials()
    counted = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(counted) == n_trials, [(t.number, t.state.name) for t in trials]
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    runs_of = {(tuple(sorted(t.params.items())), t.user_attrs["seed"]) for t in counted}
    assert len(runs_of) == len(counted), "a trial ran twice to completion"
    by_number = {t.number: t for t in trials}
    for number in lost:
        dead = by_number[number]
        assert dead.state == TrialState.FAIL
        retries = [t for t in counted if t.user_attrs.get("retry_of") == number]
        assert len(retries) == 1, f"trial {number} was re-run {len(retries)} times"
        assert retries[0].params == dead.params and retries[0].user_attrs["seed"] == dead.user_attrs["seed"]
    experiment = client.get_experiment_by_name("gradsweep")
    runs = client.search_runs([experiment.experiment_id], filter_string=f"tags.`optuna.study` = '{study.study_name}'")
    assert not [r.info.run_id for r in runs if r.info.status == "RUNNING"]
    finished = [r for r in runs if r.data.tags.get("gradsweep.kind") == "trial" and r.info.status == "FINISHED"]
    assert len(finished) == n_trials
    # A trial killed mid-training has a run to end; one killed as it started may have none yet.
    ended = [by_number[n].user_attrs["mlflow_run_id"] for n in lost if "mlflow_run_id" in by_number[n].user_attrs]
    assert ended or not lost, "no lost trial had an MLflow run: the kill came before any training"
    for run_id in ended:
        run = client.get_run(run_id)
        assert run.info.status in ("FAILED", "KILLED") and run.data.tags["optuna.state"] == "FAIL"


def kill_a_worker_mid_trial(
    args: list[str], cwd: Path, storage_url: str, tracking_uri: str, n_trials: int, name: str, env: dict | None = None
) -> str:
    """Runs the sweep, SIGKILLs the worker of a trial in progress, checks the outcome."""
    process = _start([*args, f"sweep.name={name}", f"sweep.n_trials={n_trials}"], cwd, env)
    try:
        victim = _wait_for_trial_in_progress(name, storage_url, process)
        pid = int(victim.user_attrs["worker"].rsplit(":", 2)[1])
        os.kill(pid, signal.SIGKILL)
        output, _ = process.communicate(timeout=600)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 0, output[-3000:]
    study = optuna.load_study(study_name=name, storage=_storage(storage_url))
    check_exactly_once(study, MlflowClient(tracking_uri), n_trials, lost=[victim.number])
    return output


@pytest.mark.slow
def test_two_local_workers_survive_a_sigkill_on_the_default_storage(tmp_path):
    tracking = f"sqlite:///{tmp_path}/m.db"
    MlflowClient(tracking).search_experiments()  # the schema, before processes race to create it
    args = [*SWEEP, "sweep.n_workers=2", f"tracking.uri={tracking}", f"tracking.artifacts={tmp_path}/artifacts"]
    output = kill_a_worker_mid_trial(
        args, tmp_path, str(tmp_path / "sweeps" / "killed" / "optuna.journal"), tracking, n_trials=4, name="killed"
    )
    assert "stopped with signal 9" in output
    assert "failed attempts" in output and "trials (complete + pruned)  4 (" in output


@pytest.mark.slow
def test_killed_sweep_run_again_ends_at_exactly_n_trials(tmp_path):
    tracking = f"sqlite:///{tmp_path}/m.db"
    args = [
        *SWEEP,
        "sweep.name=again",
        "sweep.n_trials=4",
        "sweep.n_workers=2",
        f"tracking.uri={tracking}",
        f"tracking.artifacts={tmp_path}/artifacts",
    ]
    journal_path = str(tmp_path / "sweeps" / "again" / "optuna.journal")
    MlflowClient(tracking).search_experiments()
    process = _start(args, tmp_path)
    try:
        _wait_for_trial_in_progress("again", journal_path, process)
        os.killpg(process.pid, signal.SIGKILL)  # the parent and both workers, no clean-up at all
        process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    journal = _storage(journal_path)
    before = optuna.load_study(study_name="again", storage=journal).get_trials()
    lost = [t.number for t in before if t.state == TrialState.RUNNING]
    assert lost and len([t for t in before if t.state == TrialState.COMPLETE]) < 4

    done = run_gradsweep(*args, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:]
    study = optuna.load_study(study_name="again", storage=journal)
    check_exactly_once(study, MlflowClient(tracking), 4, lost)
    parents = MlflowClient(tracking).search_runs(
        [MlflowClient(tracking).get_experiment_by_name("gradsweep").experiment_id],
        filter_string="tags.`gradsweep.kind` = 'sweep'",
    )
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"


@pytest.mark.slow
def test_sigterm_stops_every_worker_after_its_epoch(tmp_path):
    tracking = f"sqlite:///{tmp_path}/m.db"
    MlflowClient(tracking).search_experiments()
    args = [
        "+sweep=smoke",
        "sweep.name=term",
        "sweep.n_workers=2",
        "train.epochs=400",
        "data.n_samples=1500",
        f"tracking.uri={tracking}",
        f"tracking.artifacts={tmp_path}/artifacts",
    ]
    process = _start(args, tmp_path)
    _wait_for_trial_in_progress("term", str(tmp_path / "sweeps" / "term" / "optuna.journal"), process)
    process.send_signal(signal.SIGTERM)
    started = time.monotonic()
    output = _finish(process, timeout=90)
    assert process.returncode == 130, output[-3000:]
    assert time.monotonic() - started < 60
    trials = optuna.load_study(
        study_name="term", storage=_storage(str(tmp_path / "sweeps/term/optuna.journal"))
    ).get_trials()
    assert trials and all(t.state == TrialState.FAIL and "interrupted" in t.user_attrs for t in trials)
    client = MlflowClient(tracking)
    runs = client.search_runs([client.get_experiment_by_name("gradsweep").experiment_id])
    assert {r.info.status for r in runs} == {"KILLED"}
    for trial in trials:  # what each trial trained before the signal is on record
        history = client.get_metric_history(trial.user_attrs["mlflow_run_id"], "train/loss")
        assert len(history) >= len(trial.intermediate_values) >= 1


# ------------------------------------------------------------------ PostgreSQL + MLflow server


def _server_args(optuna_url: str, tracking: str, name: str, n_trials: int, *extra: str) -> list[str]:
    return [
        *SWEEP,
        f"sweep.name={name}",
        f"sweep.n_trials={n_trials}",
        f"sweep.storage={optuna_url}",
        f"tracking.uri={tracking}",
        *extra,
    ]


def test_three_workers_from_two_processes_on_postgres_survive_a_sigkill(optuna_url, mlflow_http):
    """Two `gradsweep` processes (as on two machines: 2 + 1 workers) join one study and one
    parent run; one worker is SIGKILLed mid-trial; exactly n_trials, none twice."""
    n_trials, name = 5, "pg-killed"
    first = _start(_server_args(optuna_url, mlflow_http.url, name, n_trials, "sweep.n_workers=2"), Path.cwd())
    victim = _wait_for_trial_in_progress(name, optuna_url, first)
    second = _start(_server_args(optuna_url, mlflow_http.url, name, n_trials), Path.cwd())
    os.kill(int(victim.user_attrs["worker"].rsplit(":", 2)[1]), signal.SIGKILL)
    outputs = [_finish(first), _finish(second)]
    assert first.returncode == 0 and second.returncode == 0, "\n".join(o[-2500:] for o in outputs)
    study = optuna.load_study(study_name=name, storage=optuna_url)
    client = MlflowClient(mlflow_http.url)
    check_exactly_once(study, client, n_trials, lost=[victim.number])
    experiment = client.get_experiment_by_name("gradsweep")
    parents = client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.`optuna.study` = '{name}' and tags.`gradsweep.kind` = 'sweep'"
    )
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    trials = client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{parents[0].info.run_id}'"
    )
    assert len(trials) == n_trials + 1  # the killed attempt stays, FAILED
    assert optuna_url.split("@")[0].split(":")[-1] not in "".join(outputs)  # the password is never printed


def _all_epochs_recorded(client: MlflowClient, study_name: str, epochs: int) -> None:
    experiment = client.get_experiment_by_name("gradsweep")
    runs = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.`optuna.study` = '{study_name}' and tags.`gradsweep.kind` = 'trial'",
    )
    finished = [r for r in runs if r.info.status == "FINISHED"]
    assert finished
    for run in finished:
        for metric in ("train/loss", "val/loss", "grad/global_norm", "grad/output/norm_mean"):
            steps = sorted(m.step for m in client.get_metric_history(run.info.run_id, metric))
            expected = list(range(1, epochs + 1))
            assert [s for s in steps if s > 0] == expected, (run.info.run_name, metric, steps)


def test_mlflow_server_restart_loses_no_metric(optuna_url, mlflow_http):
    name, n_trials = "mlflow-restart", 3
    process = _start(_server_args(optuna_url, mlflow_http.url, name, n_trials, "sweep.n_workers=2"), Path.cwd())
    _wait_for_trial_in_progress(name, optuna_url, process)
    mlflow_http.restart()  # down for the ~20 s a server takes to come back on 2 cores
    output = _finish(process)
    assert process.returncode == 0, output[-3000:]
    client = MlflowClient(mlflow_http.url)
    check_exactly_once(optuna.load_study(study_name=name, storage=optuna_url), client, n_trials, lost=[])
    _all_epochs_recorded(client, name, epochs=EPOCHS)


def test_postgres_restart_workers_reconnect(optuna_url, mlflow_http, pg):
    name, n_trials = "pg-restart", 3
    process = _start(_server_args(optuna_url, mlflow_http.url, name, n_trials, "sweep.n_workers=2"), Path.cwd())
    _wait_for_trial_in_progress(name, optuna_url, process)
    pg.restart()  # the study and MLflow's own database go away together
    time.sleep(3)
    pg.restart()
    output = _finish(process)
    assert process.returncode == 0, output[-3000:]
    client = MlflowClient(mlflow_http.url)
    check_exactly_once(optuna.load_study(study_name=name, storage=optuna_url), client, n_trials, lost=[])
    _all_epochs_recorded(client, name, epochs=EPOCHS)


def test_mlflow_server_that_stays_down_fails_the_sweep_naming_it(optuna_url, mlflow_http):
    name = "mlflow-down"
    process = _start(_server_args(optuna_url, mlflow_http.url, name, 3, "tracking.patience=10"), Path.cwd())
    _wait_for_trial_in_progress(name, optuna_url, process)
    mlflow_http.stop()
    try:
        started = time.monotonic()
        output = _finish(process, timeout=180)
        seconds = time.monotonic() - started
    finally:
        mlflow_http.start()
    assert process.returncode != 0
    errors = [line for line in output.splitlines() if "[ERROR]" in line]
    assert errors and f"tracking.uri: MLflow at {mlflow_http.url}" in errors[-1], output[-3000:]
    assert "Traceback" not in output
    assert seconds < 120, seconds  # a bounded wait, not minutes per call
    trials = optuna.load_study(study_name=name, storage=optuna_url).get_trials()
    assert not [t for t in trials if t.state == TrialState.RUNNING]
