"""The main process killed with SIGKILL at random moments, six times with one worker and six
with two, the same command run again after each: every other kill anywhere from importing to
the first trial (opening the stores, recovering, spawning workers), the others just after a
trial started (mid-trial, writing a record, ending runs). The study ends at exactly
``n_trials`` counted, no trial twice, no MLflow run left RUNNING, no worker outliving its
parent, no resume that hangs."""

from __future__ import annotations

import random
import subprocess
import sys
import time
from pathlib import Path
from typing import List

import optuna
import psutil
import pytest
from mlflow import MlflowClient
from optuna.trial import TrialState

KILLS = 6
N_TRIALS = 12
# Short trials, so that some kills land mid-trial and some between trials.
ARGS = ["+sweep=smoke", "train.epochs=50", "data.n_samples=600", f"sweep.n_trials={N_TRIALS}"]
# A resume that has not started a trial by then hangs. Starting takes 6-9 s with one worker
# and 16-20 s with two (each imports TensorFlow) on 2 idle cores, and several times that
# beside other tests. The waits a kill could leave (a journal lock, an unclaimed trial)
# have their own tests: test_reliability.py, test_recovery.py.
RESUME_S = 90
ORPHAN_S = 30  # a worker sees its parent gone within a second or two


def _ours(folder: Path) -> List[psutil.Process]:
    """Every live gradsweep process started in ``folder`` (main processes and workers)."""
    found = []
    for process in psutil.process_iter(["cmdline", "cwd"]):
        try:
            if process.info["cwd"] == str(folder) and "gradsweep" in " ".join(process.info["cmdline"] or []):
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def _trials(folder: Path) -> List[optuna.trial.FrozenTrial]:
    journal = folder / "sweeps" / "smoke" / "optuna.journal"
    if not journal.is_file():
        return []
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal)))
    try:
        return optuna.load_study(study_name="smoke", storage=storage).get_trials()
    except KeyError:  # killed before the study was made
        return []


def _started_a_trial(folder: Path, known: int, process: subprocess.Popen, timeout: float) -> float:
    """Seconds until the study holds a trial it did not hold before (or the run ended);
    ``timeout`` when neither happened by then."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if len(_trials(folder)) > known or process.poll() is not None:
            return time.monotonic() - started
        time.sleep(0.2)
    return timeout


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_random_kills_of_the_main_process_then_resume(tmp_path, workers):
    rng = random.Random(workers)
    tracking = f"sqlite:///{tmp_path}/mlruns/mlflow.db"
    args = [*ARGS, f"sweep.n_workers={workers}"]
    resumes, kills = [], 0
    while kills < KILLS:
        known = len(_trials(tmp_path))
        main = subprocess.Popen(
            [sys.executable, "-m", "gradsweep", *args],
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if kills % 2:  # mid-trial: just after this run's first trial started
            resumes.append(_started_a_trial(tmp_path, known, main, RESUME_S))
            time.sleep(rng.uniform(0.0, 2.0))
        else:  # anywhere from importing to the first trial; how long until one started, on the way
            delay = rng.uniform(0.5, 12.0)
            waited = _started_a_trial(tmp_path, known, main, delay)
            if waited < delay:
                resumes.append(waited)
                time.sleep(delay - waited)
        if main.poll() is not None:  # the sweep ended before the kill
            break
        main.kill()
        main.wait()
        kills += 1
        _, alive = psutil.wait_procs(_ours(tmp_path), timeout=ORPHAN_S)
        assert not alive, f"kill {kills}: {[' '.join(p.cmdline()) for p in alive]} outlived the main process"
    assert kills >= KILLS // 2, f"the sweep ended after {kills} kills: make its trials longer"

    last = subprocess.Popen(
        [sys.executable, "-m", "gradsweep", *args], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    resumes.append(_started_a_trial(tmp_path, len(_trials(tmp_path)), last, RESUME_S))
    output, _ = last.communicate(timeout=600)
    assert last.returncode == 0, output.decode()[-3000:]
    assert resumes and max(resumes) < RESUME_S, resumes

    trials = _trials(tmp_path)
    counted = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(counted) == N_TRIALS, [(t.number, t.state.name) for t in trials]
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    drawn = [(tuple(sorted(t.params.items())), t.user_attrs["seed"]) for t in counted]
    assert len(set(drawn)) == len(drawn), "a trial ran twice to completion"
    client = MlflowClient(tracking)
    runs = client.search_runs([client.get_experiment_by_name("gradsweep").experiment_id])
    assert not [r.info.run_id for r in runs if r.info.status == "RUNNING"]
    finished = [r for r in runs if r.data.tags.get("gradsweep.kind") == "trial" and r.info.status == "FINISHED"]
    assert sorted(r.data.tags["optuna.trial_number"] for r in finished) == sorted(str(t.number) for t in counted)
    parents = [r for r in runs if r.data.tags.get("gradsweep.kind") == "sweep"]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert not _ours(tmp_path)
