"""Several local workers on one study (gradsweep/study: parent, worker, recovery, storage)
and the faults they must survive: a worker killed with SIGKILL mid-trial, the whole sweep
killed and run again, SIGTERM. Real processes, real stores."""

from __future__ import annotations

import os
import signal
import time

import optuna
import pytest
from conftest import run_gradsweep
from faults import (
    SWEEP,
    check_exactly_once,
    finish,
    kill_a_worker_mid_trial,
    start,
    storage,
    wait_for_trial_in_progress,
)
from mlflow import MlflowClient
from optuna.trial import TrialState


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
    process = start(args, tmp_path)
    try:
        wait_for_trial_in_progress("again", journal_path, process)
        os.killpg(process.pid, signal.SIGKILL)  # the parent and both workers, no clean-up at all
        process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    journal = storage(journal_path)
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
    process = start(args, tmp_path)
    wait_for_trial_in_progress("term", str(tmp_path / "sweeps" / "term" / "optuna.journal"), process)
    process.send_signal(signal.SIGTERM)
    started = time.monotonic()
    output = finish(process, timeout=90)
    assert process.returncode == 130, output[-3000:]
    assert time.monotonic() - started < 60
    trials = optuna.load_study(
        study_name="term", storage=storage(str(tmp_path / "sweeps/term/optuna.journal"))
    ).get_trials()
    assert trials and all(t.state == TrialState.FAIL and "interrupted" in t.user_attrs for t in trials)
    client = MlflowClient(tracking)
    runs = client.search_runs([client.get_experiment_by_name("gradsweep").experiment_id])
    assert {r.info.status for r in runs} == {"KILLED"}
    for trial in trials:  # what each trial trained before the signal is on record
        history = client.get_metric_history(trial.user_attrs["mlflow_run_id"], "train/loss")
        assert len(history) >= len(trial.intermediate_values) >= 1
