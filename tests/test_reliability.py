"""Faults and bad input: secrets stay masked, cut-off journals and dead locks are
repaired, orphaned workers stop, runs never stay RUNNING, local artifact and store
errors fail at once with one line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import psutil
import pytest
from conftest import run_gradsweep
from mlflow import MlflowClient

from gradsweep import stopping
from gradsweep.redaction import password_of, redact
from gradsweep.study.storage import make_storage

SMOKE = ["+sweep=smoke", "train.epochs=1"]


def _stores(tmp: Path) -> list[str]:
    return [
        f"tracking.uri=sqlite:///{tmp}/m.db",
        f"tracking.artifacts={tmp}/artifacts",
        f"sweep.storage=sqlite:///{tmp}/o.db",
    ]


def _statuses(tmp: Path) -> dict[str, str]:
    client = MlflowClient(f"sqlite:///{tmp}/m.db")
    experiment = client.get_experiment_by_name("gradsweep")
    return {r.info.run_id: r.info.status for r in client.search_runs([experiment.experiment_id])}


def _errors(output: str) -> list[str]:
    return [line for line in output.splitlines() if "ERROR" in line or line.startswith(("sweep.", "tracking."))]


@pytest.mark.parametrize(
    "url, password",
    [
        ("postgresql+psycopg2://user:pa/ss:w@rd@db.example:5432/optuna", "pa/ss:w@rd"),
        ("http://alice:s3cr%2Ft@127.0.0.1:5000", "s3cr%2Ft"),
        ("mysql://u:xq9@h/db", "xq9"),
    ],
)
def test_any_password_in_a_url_is_masked_wherever_the_url_stands(url, password):
    assert password_of(url) == password
    for text in (url, f"sweep.storage: cannot open {url}: refused", f"storage: '{url}'\nnext: 1"):
        masked = redact(text)
        assert password not in masked and "***" in masked, masked
    assert (
        redact("sqlite:///mlruns/mlflow.db http://127.0.0.1:5000/x")
        == "sqlite:///mlruns/mlflow.db http://127.0.0.1:5000/x"
    )


@pytest.mark.parametrize("name", ["..", "../up", ".hidden", "a/b", "with space", "x" * 101])
def test_an_unsafe_sweep_name_is_refused_before_anything_is_made(tmp_path, name):
    done = run_gradsweep("+sweep=smoke", f"sweep.name={name}", cwd=tmp_path, timeout=60)
    assert done.returncode == 2, done.stdout
    assert _errors(done.stdout) and "sweep.name" in _errors(done.stdout)[0], done.stdout
    assert not list(tmp_path.iterdir())


def _journal_with_trials(path: Path, n: int = 3) -> None:
    study = optuna.create_study(study_name="j", storage=make_storage(str(path)))
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=n)


def test_a_cut_off_last_journal_record_is_dropped_and_kept_aside(tmp_path):
    journal = tmp_path / "optuna.journal"
    _journal_with_trials(journal)
    with open(journal, "ab") as file:
        file.write(b'{"op_code": 4, "worker_id": "cut')  # a kill during a write
    study = optuna.load_study(study_name="j", storage=make_storage(str(journal)))
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    assert len(optuna.load_study(study_name="j", storage=make_storage(str(journal))).trials) == 4
    assert (tmp_path / "optuna.journal.torn").read_bytes() == b'{"op_code": 4, "worker_id": "cut'


def test_a_journal_lock_held_by_a_killed_process_does_not_hold_up_the_next_run(tmp_path):
    journal = tmp_path / "optuna.journal"
    _journal_with_trials(journal, 1)
    os.symlink("sweeps/j/optuna.journal", f"{journal}.lock")  # as older versions could leave it
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_THE_JOURNAL_LOCK, str(journal)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline() == "held\n"
    holder.kill()  # killed while holding it, as during a write
    holder.wait()
    started = time.monotonic()
    study = optuna.load_study(study_name="j", storage=make_storage(str(journal)))
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    # Optuna's own lock, left behind, is waited out for 30 s.
    assert time.monotonic() - started < 5 and len(study.trials) == 2


HOLD_THE_JOURNAL_LOCK = """
import sys, time
from pathlib import Path
from gradsweep.study.storage import JournalLock
JournalLock(Path(sys.argv[1])).acquire()
print("held", flush=True)
time.sleep(60)
"""


def test_a_second_signal_waits_while_runs_are_ended():
    previous = signal.getsignal(signal.SIGINT)
    stopping.install()
    try:
        os.kill(os.getpid(), signal.SIGINT)  # the first asks for a stop
        with stopping.shielded():
            os.kill(os.getpid(), signal.SIGINT)  # the second would cut the run's ending short
            time.sleep(0.05)
        assert stopping.requested()
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
    finally:
        signal.signal(signal.SIGINT, previous)
        stopping._requested.clear()


def test_an_unwritable_artifact_folder_fails_at_once_naming_it_and_leaves_no_run_running(tmp_path):
    (tmp_path / "blocked").write_text("a file where the artifact folder should be")
    args = [
        *SMOKE,
        f"tracking.uri=sqlite:///{tmp_path}/m.db",
        f"tracking.artifacts={tmp_path}/blocked/x",
        f"sweep.storage=sqlite:///{tmp_path}/o.db",
    ]
    started = time.monotonic()
    done = run_gradsweep(*args, cwd=tmp_path)
    assert done.returncode == 2, done.stdout[-2000:]
    assert time.monotonic() - started < 60
    errors = _errors(done.stdout)
    assert len(errors) == 1 and "tracking.artifacts: cannot write" in errors[0] and "blocked/x" in errors[0], errors
    assert "RUNNING" not in _statuses(tmp_path).values()


def test_a_corrupt_mlflow_database_is_one_line_naming_tracking_uri(tmp_path):
    (tmp_path / "m.db").write_bytes(b"this is not sqlite" * 100)
    done = run_gradsweep(*SMOKE, *_stores(tmp_path), cwd=tmp_path)
    assert done.returncode == 2, done.stdout[-2000:]
    errors = _errors(done.stdout)
    assert len(errors) == 1 and "tracking.uri" in errors[0] and "not an MLflow database" in errors[0], errors
    assert "Traceback" not in done.stdout


def test_two_first_runs_at_once_in_a_new_folder_both_succeed(tmp_path):
    common = [f"tracking.uri=sqlite:///{tmp_path}/m.db", f"tracking.artifacts={tmp_path}/artifacts"]
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "gradsweep", *SMOKE, f"sweep.name=first{i}", *common],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(2)
    ]
    outputs = [p.communicate(timeout=600)[0] for p in processes]
    assert [p.returncode for p in processes] == [0, 0], [o[-1500:] for o in outputs]
    assert set(_statuses(tmp_path).values()) == {"FINISHED"}


OPEN_STORE = """
import sys
from gradsweep.config import TrackingConfig
from gradsweep.tracking.store import Tracker
Tracker(TrackingConfig(uri=sys.argv[1], artifacts=sys.argv[2]))
"""


@pytest.mark.parametrize("delay", [0.3, 0.6])  # both inside MLflow's migrations of a new store
def test_a_store_whose_creation_was_killed_opens_on_the_next_run(tmp_path, delay):
    args = [sys.executable, "-c", OPEN_STORE, f"sqlite:///{tmp_path}/m.db", str(tmp_path / "artifacts")]
    first = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not any((tmp_path / name).exists() for name in ("m.db", "m.db.creating")):
        assert first.poll() is None and time.monotonic() < deadline, "no store file appeared"
        time.sleep(0.005)
    time.sleep(delay)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=60)
    second = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr[-1500:]
    assert MlflowClient(f"sqlite:///{tmp_path}/m.db").search_experiments()


def test_runs_left_running_are_ended_on_the_next_start(tmp_path):
    done = run_gradsweep(*SMOKE, *_stores(tmp_path), cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-2000:]
    client = MlflowClient(f"sqlite:///{tmp_path}/m.db")
    trial_run = next(
        r
        for r in client.search_runs([client.get_experiment_by_name("gradsweep").experiment_id])
        if r.data.tags.get("gradsweep.kind") == "trial"
    )
    client.update_run(trial_run.info.run_id, status="RUNNING")  # as a second Ctrl-C used to leave it
    again = run_gradsweep(*SMOKE, *_stores(tmp_path), cwd=tmp_path)
    assert again.returncode == 0, again.stdout[-2000:]
    assert set(_statuses(tmp_path).values()) == {"FINISHED"}


@pytest.mark.slow
def test_workers_stop_when_the_main_process_is_killed_and_a_resume_finishes(tmp_path):
    args = ["+sweep=smoke", "train.epochs=20", "sweep.n_workers=2", "sweep.n_trials=3", *_stores(tmp_path)]
    main = subprocess.Popen(
        [sys.executable, "-m", "gradsweep", *args], cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 180
    workers: list[psutil.Process] = []
    while time.monotonic() < deadline and len(workers) < 2:
        workers = psutil.Process(main.pid).children(recursive=True)
        time.sleep(0.5)
    assert len(workers) >= 2
    study_file = tmp_path / "o.db"
    while time.monotonic() < deadline:  # until a trial is running
        if study_file.exists() and _statuses(tmp_path) and "RUNNING" in _statuses(tmp_path).values():
            break
        time.sleep(0.5)
    main.kill()
    main.wait()
    _, alive = psutil.wait_procs(workers, timeout=120)
    assert not alive, [p.pid for p in alive]
    resumed = run_gradsweep(*args, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout[-2000:]
    study = optuna.load_study(study_name="smoke", storage=f"sqlite:///{study_file}")
    counted = [t for t in study.trials if t.state.is_finished() and t.state != optuna.trial.TrialState.FAIL]
    assert len(counted) == 3
    assert "RUNNING" not in _statuses(tmp_path).values()
