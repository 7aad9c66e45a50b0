"""Every kind of bad input fails before any training: exit code 2, one line naming the
key or file, nothing left RUNNING in MLflow or Optuna, in well under 30 s."""

from __future__ import annotations

import time
from pathlib import Path

import optuna
import pytest
from conftest import run_gradsweep
from mlflow import MlflowClient


def _csv(tmp: Path, name: str, text: str) -> str:
    (tmp / name).write_text(text)
    return str(tmp / name)


CASES = {
    # id: (overrides, what the one line must name)
    "unknown activation": (["model.activation=swish2"], "model.activation"),
    "unknown optimizer": (["optimizer.name=adamw2"], "optimizer.name"),
    "unknown initializer": (["model.init=he_weird"], "model.init"),
    "depth 0": (["model.depth=0"], "model.depth"),
    "negative depth": (["model.depth=-3"], "model.depth"),
    "width 0": (["model.width=0"], "model.width"),
    "negative std": (["model.init_std=-0.5"], "model.init_std"),
    "negative learning rate": (["optimizer.learning_rate=-0.1"], "optimizer.learning_rate"),
    "low > high": (["+sweep.space.model.depth={type:int,low:4,high:2}"], "sweep.space.model.depth"),
    "log scale, low <= 0": (
        ["+sweep.space.optimizer.momentum={type:float,low:0,high:0.9,log:true}"],
        "sweep.space.optimizer.momentum",
    ),
    "unknown key": (["model.depht=3"], "model.depht"),
    "unknown sweep": (["+sweep=nope"], "sweep/nope"),
    "missing data file": (["data=csv", "data.path={tmp}/nowhere.csv", "data.target=y"], "nowhere.csv"),
    "CSV without the target": (["data=csv", "data.path={no_target}", "data.target=y"], "data.target"),
    "CSV with junk": (["data=csv", "data.path={junk}", "data.target=y"], "junk.csv"),
    "unreachable storage": (["sweep.storage=postgresql+psycopg2://gradsweep@127.0.0.1:9/optuna"], "sweep.storage"),
    "unreachable tracking": (["tracking.uri=http://127.0.0.1:9"], "tracking.uri"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_fails_fast_with_one_line(tmp_path, stores, case):
    files = {
        "tmp": tmp_path,
        "no_target": _csv(tmp_path, "no_target.csv", "a,b\n1,2\n3,4\n"),
        "junk": _csv(
            tmp_path, "junk.csv", "a,b,y\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(19)) + "n/a?,1,0\n"
        ),
    }
    overrides, names = CASES[case]
    for name, value in files.items():
        overrides = [o.replace("{" + name + "}", str(value)) for o in overrides]
    args = [f"{k}={v}" for k, v in stores.items() if not any(o.startswith(f"{k}=") for o in overrides)]
    args += overrides
    MlflowClient(stores["tracking.uri"]).search_experiments()  # a store with history, which must survive
    started = time.monotonic()
    done = run_gradsweep("+sweep=smoke", *args, cwd=tmp_path, timeout=60)
    seconds = time.monotonic() - started
    assert done.returncode == 2, done.stdout[-2000:]
    errors = [line for line in done.stdout.splitlines() if "ERROR" in line or "Error" in line]
    assert len(errors) == 1 and names in errors[0], done.stdout[-2000:]
    assert "Traceback" not in done.stdout and "HYDRA_FULL_ERROR" not in done.stdout
    assert seconds < 30
    runs = MlflowClient(stores["tracking.uri"]).search_runs(
        [e.experiment_id for e in MlflowClient(stores["tracking.uri"]).search_experiments()]
    )
    assert not [r for r in runs if r.info.status == "RUNNING"]
    try:
        trials = optuna.load_study(study_name="smoke", storage=stores["sweep.storage"]).get_trials()
    except KeyError:  # failed before the study was made
        trials = []
    assert trials == []
