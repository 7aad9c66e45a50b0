"""Running a sweep as its own process group, waiting for a trial mid-training, killing
parts of it, and checking that the study still ends with every trial counted exactly once:
what the fault tests share (tests/study/test_workers_faults.py, test_server_faults.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
from mlflow import MlflowClient
from optuna.trial import TrialState

# Trials of a few seconds each, so a kill lands inside one.
EPOCHS = 30
SWEEP = ["+sweep=smoke", f"train.epochs={EPOCHS}", "data.n_samples=1500"]


def start(args: list[str], cwd: Path, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "gradsweep", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        env={**os.environ, **(env or {})},
    )


def finish(process: subprocess.Popen, timeout: float = 600) -> str:
    try:
        output, _ = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    return output


def wait_for_trial_in_progress(
    study_name: str, storage_url: str, process: subprocess.Popen, timeout: float = 180
) -> optuna.trial.FrozenTrial:
    """A RUNNING trial that has reported at least two epochs (so it is mid-training)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert process.poll() is None, process.communicate()[0][-3000:]
        try:
            trials = optuna.load_study(study_name=study_name, storage=storage(storage_url)).get_trials(
                states=(TrialState.RUNNING,)
            )
        except (KeyError, FileNotFoundError):  # the study is not created yet
            trials = []
        ready = [t for t in trials if len(t.intermediate_values) >= 2 and "worker" in t.user_attrs]
        if ready:
            return ready[0]
        time.sleep(0.3)
    raise AssertionError("no trial reached its second epoch in time")


def storage(url: str):
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
    process = start([*args, f"sweep.name={name}", f"sweep.n_trials={n_trials}"], cwd, env)
    try:
        victim = wait_for_trial_in_progress(name, storage_url, process)
        pid = int(victim.user_attrs["worker"].rsplit(":", 2)[1])
        os.kill(pid, signal.SIGKILL)
        output, _ = process.communicate(timeout=600)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 0, output[-3000:]
    study = optuna.load_study(study_name=name, storage=storage(storage_url))
    check_exactly_once(study, MlflowClient(tracking_uri), n_trials, lost=[victim.number])
    return output
