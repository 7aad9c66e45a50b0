"""``sweep.population=K`` (gradsweep/study/worker.py, objective.py, tracking/recorder.py): a
worker trains K trials that share the graph together; each is still one Optuna trial and
one MLflow run with the records of a lone trial, and ``gradsweep rerun`` of a member
reproduces it alone (Adam nets here, SGD in the kill test)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import defaultdict

import optuna
import pytest
from conftest import run_gradsweep, sqlite_stores, trial_runs
from faults import check_exactly_once, start, storage, wait_for_trial_in_progress
from mlflow import MlflowClient
from optuna.trial import TrialState

from gradsweep.keys import Tag

EPOCHS = 3
N_TRIALS = 7
SPACE = "{type: float, low: 0.05, high: 1.0, log: true}"


@pytest.fixture(scope="module")
def population_sweep(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("population")
    stores = sqlite_stores(tmp)
    done = run_gradsweep(  # the smoke sweep's Adam nets
        "+sweep=smoke", "model.init=random_normal", f"+sweep.space.model.init_std={SPACE}",
        "sweep.population=3", f"sweep.n_trials={N_TRIALS}", f"train.epochs={EPOCHS}",
        *(f"{k}={v}" for k, v in stores.items()), cwd=tmp,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:]
    return tmp, stores


def test_members_are_trials_and_runs_of_their_own_grouped_by_graph(population_sweep):
    _, stores = population_sweep
    study = optuna.load_study(study_name="smoke", storage=stores["sweep.storage"])
    trials = study.get_trials()
    assert len(trials) == N_TRIALS and all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    client = MlflowClient(stores["tracking.uri"])
    runs = client.search_runs([client.get_experiment_by_name("gradsweep").experiment_id])
    members = [r for r in runs if r.data.tags.get(Tag.KIND) == "trial"]
    assert len(members) == N_TRIALS
    groups = defaultdict(list)
    for run in members:
        assert run.info.status == "FINISHED" and run.data.tags[Tag.STATE] == "COMPLETE"
        number = int(run.data.tags[Tag.TRIAL_NUMBER])
        assert trials[number].user_attrs["mlflow_run_id"] == run.info.run_id
        assert run.data.tags[Tag.REGIME] == trials[number].user_attrs["regime"]
        assert run.data.params["model.activation"] == trials[number].params["model.activation"]
        for key in ("model.init_std", "optimizer.learning_rate"):
            assert float(run.data.params[key]) == trials[number].params[key]
        history = client.get_metric_history(run.info.run_id, "grad/dense_00/norm_mean")
        assert sorted(m.step for m in history) == list(range(EPOCHS + 1))  # step 0 = at initialisation
        assert {a.path for a in client.list_artifacts(run.info.run_id)} >= {"epochs.csv", "regime.json", "config.yaml"}
        groups[run.data.tags.get(Tag.POPULATION, "alone")].append(trials[number])
    # Groups of 3 while the budget allows, then the last trial alone (the lone path, untagged).
    assert sorted(len(g) for g in groups.values()) == [1, 3, 3] and len(groups["alone"]) == 1
    for name, group in groups.items():
        assert name == "alone" or name.endswith(f"/{len(group)}")
        assert len({t.params["model.activation"] for t in group}) == 1  # a group shares the graph
    assert len({t.params["model.init_std"] for t in trials}) == N_TRIALS  # members differ in the rest


def test_rerun_of_a_member_reproduces_it_alone(population_sweep):
    tmp, stores = population_sweep
    client = MlflowClient(stores["tracking.uri"])
    runs = client.search_runs([client.get_experiment_by_name("gradsweep").experiment_id])
    member = next(r for r in runs if r.data.tags.get(Tag.POPULATION, "").endswith("/3"))
    done = subprocess.run(
        [sys.executable, "-m", "gradsweep", "rerun", member.info.run_id, "--tracking-uri", stores["tracking.uri"]],
        cwd=tmp, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-3000:]
    assert "trained alone, a member of population" in out and "(within 0.0001)" in out, out[-2000:]


def test_an_automatic_population_measures_its_size_and_trains_groups_of_it(tmp_path):
    stores = sqlite_stores(tmp_path)
    overrides = ("+sweep=smoke", "sweep.population=0", "sweep.n_trials=5", *(f"{k}={v}" for k, v in stores.items()))
    done = run_gradsweep(*overrides, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:]
    said = next(line for line in done.stdout.splitlines() if "sweep.population=0: K = " in line)
    size = int(said.split("K = ")[1].split()[0])
    assert size in (1, 2) and "K is at most 2" in said, said  # doubled up to sqrt(5 trials)
    client = MlflowClient(stores["tracking.uri"])
    runs = client.search_runs([client.get_experiment_by_name("gradsweep").experiment_id])
    first = next(r for r in runs if r.data.tags.get(Tag.TRIAL_NUMBER) == "0")
    assert first.data.tags.get(Tag.POPULATION, "alone") == (f"trial-000/{size}" if size > 1 else "alone")


def test_a_population_with_dropout_is_refused_before_anything_runs(tmp_path):
    stores = sqlite_stores(tmp_path)
    overrides = ("+sweep=smoke", "sweep.population=4", "model.dropout=0.2", *(f"{k}={v}" for k, v in stores.items()))
    done = run_gradsweep(*overrides, cwd=tmp_path)
    assert done.returncode == 2
    assert (
        "sweep.population: populations train nets without dropout" in done.stdout
        and "model.dropout is 0.2" in done.stdout
    )
    assert not (tmp_path / "o.db").exists() and not (tmp_path / "m.db").exists()


def test_a_space_over_dropout_trains_its_dropout_nets_alone_and_the_others_together(tmp_path):
    stores = sqlite_stores(tmp_path)
    overrides = (
        "+sweep=smoke", "sweep.population=3", "sweep.n_trials=8", "+sweep.space.model.dropout={type: categorical, "
        "choices: [0.0, 0.2]}", "model.norm=batch", "train.epochs=2", *(f"{k}={v}" for k, v in stores.items()),
    )  # fmt: skip
    done = run_gradsweep(*overrides, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:]
    client = MlflowClient(stores["tracking.uri"])
    runs = [r for r in trial_runs(stores["tracking.uri"]) if r.info.status == "FINISHED"]
    assert len(runs) == 8
    grouped = [r for r in runs if Tag.POPULATION in r.data.tags]
    alone = [r for r in runs if Tag.POPULATION not in r.data.tags]
    assert grouped and all(r.data.params["model.dropout"] == "0.0" for r in grouped)  # BatchNorm nets together
    assert any(r.data.params["model.dropout"] == "0.2" for r in alone)  # dropout nets train alone
    assert client.get_metric_history(alone[0].info.run_id, "grad/dense_00/norm_mean")  # and are recorded as ever


@pytest.mark.slow
def test_a_group_killed_mid_training_is_run_again_one_by_one_with_its_params_and_seeds(tmp_path):
    tracking = f"sqlite:///{tmp_path}/m.db"
    MlflowClient(tracking).search_experiments()  # the schema, before processes race to create it
    args = [
        "+sweep=smoke", "optimizer=sgd", "model.init=random_normal", f"+sweep.space.model.init_std={SPACE}",
        "sweep.population=3", "sweep.n_workers=2", "sweep.n_trials=6", "sweep.name=groups", "train.epochs=30",
        "data.n_samples=1500", f"tracking.uri={tracking}", f"tracking.artifacts={tmp_path}/artifacts",
    ]  # fmt: skip
    journal = str(tmp_path / "sweeps" / "groups" / "optuna.journal")
    process = start(args, tmp_path)
    try:
        victim = wait_for_trial_in_progress("groups", journal, process)
        worker = victim.user_attrs["worker"]
        os.kill(int(worker.rsplit(":", 2)[1]), signal.SIGKILL)
        running = optuna.load_study(study_name="groups", storage=storage(journal)).get_trials()
        lost = [t.number for t in running if t.state == TrialState.RUNNING and t.user_attrs.get("worker") == worker]
        output, _ = process.communicate(timeout=600)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 0, output[-3000:]
    assert len(lost) > 1, "the kill should land in a group of several trials"
    study = optuna.load_study(study_name="groups", storage=storage(journal))
    check_exactly_once(study, MlflowClient(tracking), 6, lost)
