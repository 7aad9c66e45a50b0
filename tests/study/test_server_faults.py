"""Workers on PostgreSQL and an MLflow server, started on 127.0.0.1 by the tests, and the
faults they must survive: a population's worker killed in one of two processes, either
server restarted, the MLflow server gone for good. Real processes, real stores."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import optuna
from faults import EPOCHS, SWEEP, check_exactly_once, finish, start, wait_for_trial_in_progress
from mlflow import MlflowClient
from optuna.trial import TrialState

from gradsweep.keys import Tag


def _server_args(optuna_url: str, tracking: str, name: str, n_trials: int, *extra: str) -> list[str]:
    return [
        *SWEEP,
        f"sweep.name={name}",
        f"sweep.n_trials={n_trials}",
        f"sweep.storage={optuna_url}",
        f"tracking.uri={tracking}",
        *extra,
    ]


def test_groups_and_lone_trials_from_two_processes_on_postgres_survive_a_sigkill(optuna_url, mlflow_http):
    """Two `gradsweep` processes (as on two machines) join one study and one parent run:
    one with 2 workers training populations of 2, one with a worker training trials alone.
    A population's worker is SIGKILLed mid-training: its whole group is failed (its
    heartbeats stop) and each member is run again once; exactly n_trials, none twice."""
    n_trials, name = 6, "pg-killed"
    groups = start(
        _server_args(optuna_url, mlflow_http.url, name, n_trials, "sweep.n_workers=2", "sweep.population=2"),
        Path.cwd(),
    )
    victim = wait_for_trial_in_progress(name, optuna_url, groups)
    alone = start(_server_args(optuna_url, mlflow_http.url, name, n_trials), Path.cwd())
    worker = victim.user_attrs["worker"]
    os.kill(int(worker.rsplit(":", 2)[1]), signal.SIGKILL)
    running = optuna.load_study(study_name=name, storage=optuna_url).get_trials(states=(TrialState.RUNNING,))
    lost = [t.number for t in running if t.user_attrs.get("worker") == worker]
    outputs = [finish(groups), finish(alone)]
    assert groups.returncode == 0 and alone.returncode == 0, "\n".join(o[-2500:] for o in outputs)
    assert len(lost) == 2, "the kill should land in a group of two"
    study = optuna.load_study(study_name=name, storage=optuna_url)
    client = MlflowClient(mlflow_http.url)
    check_exactly_once(study, client, n_trials, lost=lost)
    experiment = client.get_experiment_by_name("gradsweep")
    parents = client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.`optuna.study` = '{name}' and tags.`gradsweep.kind` = 'sweep'"
    )
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    trials = client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{parents[0].info.run_id}'"
    )
    assert len(trials) == n_trials + len(lost)  # the killed attempts stay, FAILED
    members = [r for r in trials if r.info.status == "FINISHED" and Tag.POPULATION in r.data.tags]
    assert members, "no population finished on PostgreSQL and the MLflow server"
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
    process = start(_server_args(optuna_url, mlflow_http.url, name, n_trials, "sweep.n_workers=2"), Path.cwd())
    wait_for_trial_in_progress(name, optuna_url, process)
    mlflow_http.restart()  # down for the ~20 s a server takes to come back on 2 cores
    output = finish(process)
    assert process.returncode == 0, output[-3000:]
    client = MlflowClient(mlflow_http.url)
    check_exactly_once(optuna.load_study(study_name=name, storage=optuna_url), client, n_trials, lost=[])
    _all_epochs_recorded(client, name, epochs=EPOCHS)


def test_postgres_restart_workers_reconnect(optuna_url, mlflow_http, pg):
    name, n_trials = "pg-restart", 3
    process = start(_server_args(optuna_url, mlflow_http.url, name, n_trials, "sweep.n_workers=2"), Path.cwd())
    wait_for_trial_in_progress(name, optuna_url, process)
    pg.restart()  # the study and MLflow's own database go away together
    time.sleep(3)
    pg.restart()
    output = finish(process)
    assert process.returncode == 0, output[-3000:]
    client = MlflowClient(mlflow_http.url)
    check_exactly_once(optuna.load_study(study_name=name, storage=optuna_url), client, n_trials, lost=[])
    _all_epochs_recorded(client, name, epochs=EPOCHS)


def test_mlflow_server_that_stays_down_fails_the_sweep_naming_it(optuna_url, mlflow_http):
    name = "mlflow-down"
    process = start(_server_args(optuna_url, mlflow_http.url, name, 3, "tracking.patience=10"), Path.cwd())
    wait_for_trial_in_progress(name, optuna_url, process)
    mlflow_http.stop()
    try:
        started = time.monotonic()
        output = finish(process, timeout=180)
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
