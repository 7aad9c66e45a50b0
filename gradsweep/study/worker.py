"""The trial loop every worker runs, on this machine or another.

A worker takes the sweep lock, reclaims trials of dead workers, and starts a trial only
while complete + pruned + running trials fall short of ``sweep.n_trials`` (or a lost
trial waits in the queue). It leaves once ``sweep.n_trials`` trials are counted. Idle
workers keep polling until then, because a running trial may still be lost and need
running again.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import threading
import time
import warnings
from typing import Any, Callable, List, Optional

import optuna
from optuna.trial import TrialState

from gradsweep import stopping
from gradsweep.config import Config
from gradsweep.config.sweep import MEMBER_KEYS
from gradsweep.data.datasets import load
from gradsweep.errors import first_line
from gradsweep.keys import Tag, TrialAttr
from gradsweep.retry import patient
from gradsweep.study.grid import GroupedGridSampler
from gradsweep.study.lock import SweepLock
from gradsweep.study.objective import Objective
from gradsweep.study.recovery import Recovery
from gradsweep.study.search import fixing, suggest
from gradsweep.study.storage import open_study
from gradsweep.tracking.store import Tracker
from gradsweep.training.device import configure, threads_for

log = logging.getLogger(__name__)

COUNTED = (TrialState.COMPLETE, TrialState.PRUNED)
POLL_SECONDS = 1.0
# We call ask/tell ourselves (to decide under the lock) and beat the heart ourselves.
warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")


class Heartbeat:
    """Records a running trial's heartbeat every ``interval`` seconds (RDB storages).

    Unlike a crash, an unreachable database (a restart) does not stop the beat: each
    failure is logged and the next beat tries again.
    """

    def __init__(self, trial: optuna.Trial):
        storage: Any = trial.storage
        # Only RDB storages have a heartbeat (a journal file has none).
        self.interval = getattr(storage, "get_heartbeat_interval", lambda: None)()
        self._beat: Optional[Callable[[], None]] = None
        if self.interval:
            study_id = storage.get_study_id_from_name(trial.study.study_name)
            trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
            self._beat = lambda: storage.record_heartbeat(trial_id)
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def _run(self) -> None:
        while not self._stop.wait(self.interval) and self._beat is not None:
            try:
                self._beat()
            except Exception as err:  # the storage is away; the trial goes on
                log.warning("heartbeat not recorded: %s", first_line(err))

    def __enter__(self) -> Heartbeat:
        if self._beat is not None:
            patient(self._beat, "recording a heartbeat")
            self._thread = threading.Thread(target=self._run, name="gradsweep-heartbeat", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


def counts(study: optuna.Study) -> dict:
    """The study's trials by state name."""
    trials = patient(lambda: study.get_trials(deepcopy=False), "listing trials")
    out = {state.name: 0 for state in TrialState}
    for trial in trials:
        out[trial.state.name] += 1
    out["counted"] = out["COMPLETE"] + out["PRUNED"]
    return out


def _next_trials(
    study: optuna.Study,
    n_trials: int,
    size: int,
    lock: SweepLock,
    recovery: Recovery,
    objective: Objective,
) -> tuple[List[optuna.Trial], bool]:
    """Under the lock: up to ``size`` claimed trials, their params suggested, that share
    every swept key outside ``MEMBER_KEYS`` (the first sampled freely, the others by the
    study's sampler with those keys fixed, see :func:`fixing`); and whether the sweep is
    done. Suggested under the lock, a trial's point is taken before the next worker asks."""
    with lock:
        recovery.reclaim(study, lock)
        n = counts(study)
        if n["counted"] >= n_trials:
            return [], True
        free = n_trials - n["counted"] - n["RUNNING"]
        if n["WAITING"]:
            free = 1  # a lost trial comes back alone, with its own params
        if free <= 0:
            return [], False
        first = patient(study.ask, "starting a trial")
        objective.claim(first)
        params = suggest(first, objective.space)
        group = [first]
        members = min(size, free) - 1
        if members <= 0 or not objective.can_group(params):  # e.g. a BatchNorm net: alone
            return group, False
        fixed = {k: v for k, v in params.items() if k not in MEMBER_KEYS}
        if isinstance(study.sampler, GroupedGridSampler):  # no repeats to fill a group
            members = min(members, study.sampler.room(study, fixed))
        with fixing(study, fixed):
            for _ in range(members):
                trial = patient(study.ask, "starting a trial")
                objective.claim(trial)
                suggest(trial, objective.space)
                group.append(trial)
        return group, False


def _tell(study: optuna.Study, trial: optuna.Trial, **outcome) -> bool:
    """Records the trial's outcome; False when the sampler asks the study to stop (the
    grid sampler does, once every grid point ran)."""
    try:
        patient(lambda: study.tell(trial, **outcome), "recording a trial")
    except RuntimeError as err:
        # Study.stop() outside Study.optimize raises; the outcome is stored before it.
        if "Study.stop" not in str(err):
            raise
        return False
    return True


def _run_one(study: optuna.Study, objective: Callable[[optuna.Trial], float], trial: optuna.Trial) -> bool:
    """Runs one trial; False when the sampler has nothing left to try."""
    with Heartbeat(trial):
        try:
            value = objective(trial)
        except optuna.TrialPruned:
            return _tell(study, trial, state=TrialState.PRUNED)
        except BaseException as err:
            _fail(trial, study, err)
            raise
        return _tell(study, trial, values=value)


def _fail(trial: optuna.Trial, study: optuna.Study, err: BaseException) -> None:
    """Marks a trial whose training raised (so that recovery tells it from a trial whose
    worker died) and tells Optuna it failed."""
    key = TrialAttr.INTERRUPTED if isinstance(err, KeyboardInterrupt) else TrialAttr.ERROR
    message = f"{type(err).__name__}: {err}"[:500]
    with stopping.shielded():  # cut here, the trial would stay RUNNING
        patient(lambda: trial.set_user_attr(key, message), "marking a trial")
        _tell(study, trial, state=TrialState.FAIL)


def _run_group(study: optuna.Study, objective: Objective, trials: List[optuna.Trial]) -> bool:
    """Runs a population of trials; False when the sampler has nothing left to try."""
    if len(trials) == 1:
        return _run_one(study, objective, trials[0])
    with contextlib.ExitStack() as beating:
        for trial in trials:
            beating.enter_context(Heartbeat(trial))
        try:
            values = objective.population(trials)
        except BaseException as err:
            for trial in trials:
                _fail(trial, study, err)
            raise
        told = [
            _tell(study, t, state=TrialState.PRUNED) if v is None else _tell(study, t, values=v)
            for t, v in zip(trials, values)
        ]
    return all(told)


def run_trials(
    study: optuna.Study,
    objective: Objective,
    n_trials: int,
    lock: SweepLock,
    recovery: Recovery,
    progress: Optional[Callable[[int], None]] = None,
) -> int:
    """Runs trials of ``study`` until ``n_trials`` are counted, ``objective.population_size()``
    at a time (a group of one is a lone trial); returns how many it ran.

    Args:
        progress: called with the counted trials after each trial or poll.
    """
    # Tracing a new model starts with a full garbage collection (compiled.py), which
    # walks every object of TensorFlow, MLflow and SQLAlchemy, every new model. What
    # exists now lives as long as the process; frozen, the collector skips it.
    gc.collect()
    gc.freeze()
    ran = 0
    size = objective.population_size()
    while True:
        stopping.check()
        trials, done = _next_trials(study, n_trials, size, lock, recovery, objective)
        if done:
            break
        if not trials:
            time.sleep(POLL_SECONDS)
        else:
            ran += len(trials)
            if not _run_group(study, objective, trials):
                log.info("the sampler has tried everything it can; this worker stops")
                break
        if progress is not None:
            progress(counts(study)["counted"])
    if progress is not None:
        progress(counts(study)["counted"])
    return ran


def recovery_for(config: Config, tracker: Tracker) -> Recovery:
    """Recovery of lost trials that also ends each one's MLflow run FAILED."""
    assert config.sweep is not None

    def close_lost_run(trial: optuna.trial.FrozenTrial) -> None:
        run_id = trial.user_attrs.get(TrialAttr.RUN_ID)
        if run_id:  # its worker died with the run RUNNING
            try:
                run = tracker.run(run_id)
                run.set_tags({Tag.STATE: "FAIL", Tag.LOST: f"worker {trial.user_attrs.get(TrialAttr.WORKER)}"})
                run.finish("FAILED")
            except Exception as err:
                log.warning("could not end the lost trial's MLflow run %s: %s", run_id, first_line(err))

    return Recovery(config.sweep.max_retry, close_lost_run)


def end_orphan_runs(study: optuna.Study, tracker: Tracker, parent_id: str) -> int:
    """Ends the trial runs a dead process left RUNNING although their trial has ended
    (a second Ctrl-C, a kill -9 between the trial and its run): FINISHED for a trial
    that counted, KILLED for an interrupted one, FAILED otherwise. Returns how many."""
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    ended = 0
    for run_id, tags in tracker.running(study.study_name):
        number = tags.get(Tag.TRIAL_NUMBER)
        trial = trials.get(int(number)) if number is not None and number.isdigit() else None
        if run_id == parent_id or (trial is not None and trial.state == TrialState.RUNNING):
            continue  # the sweep's own run, or a trial still running (or reclaimed later)
        if trial is not None and trial.state in COUNTED:
            status = "FINISHED"
        elif trial is not None and TrialAttr.INTERRUPTED in trial.user_attrs:
            status = "KILLED"
        else:
            status = "FAILED"
        log.warning("trial run %s (trial %s) was left RUNNING; ended %s", run_id, number, status)
        tracker.run(run_id).finish(status)
        ended += 1
    return ended


def work(config: Config, parent_id: str) -> int:
    """One worker process of a sweep whose study and parent run already exist; returns
    the trials it ran."""
    assert config.sweep is not None
    configure(config.device, threads_for(config.threads, config.sweep.n_workers))
    data = load(config.data)
    study = open_study(config.sweep)
    tracker = Tracker(config.tracking)
    lock = SweepLock(config.sweep.storage, config.sweep.name)
    objective = Objective(config, data, tracker, tracker.run(parent_id))
    return run_trials(study, objective, config.sweep.n_trials, lock, recovery_for(config, tracker))
