"""What becomes of a dead worker's trial.

:class:`Recovery` fails the trials of workers that died and queues them again with the
same parameters and seed: a dead local worker is seen at once from its process id (and
start time, which tells a reused pid apart), a dead remote one by Optuna's heartbeat
(RDB storages only; a journal file has none).
"""

from __future__ import annotations

import logging
import os
import socket
import warnings
from datetime import datetime, timedelta
from functools import partial
from typing import Callable, Optional

import optuna
import psutil
from optuna.trial import FrozenTrial, TrialState

from gradsweep.keys import TrialAttr
from gradsweep.retry import patient
from gradsweep.study.lock import SweepLock

log = logging.getLogger(__name__)
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning, message=".*fail_stale_trials")

# Where nothing serialises asks, a RUNNING trial nobody claimed within this time lost its
# worker between ask and claim.
UNCLAIMED_GRACE = timedelta(seconds=60)


def _start_time(pid: int) -> Optional[str]:
    """The process's start time, None when it is gone or a zombie (a killed child its
    parent has not reaped yet)."""
    try:
        process = psutil.Process(pid)
        if process.status() in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD):
            return None
        return f"{process.create_time():.2f}"
    except psutil.Error:
        return None


def owner() -> str:
    """This process as ``host:pid:start``; the start time tells a reused pid apart."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{_start_time(pid) or 0}"


def owner_alive(token: str) -> Optional[bool]:
    """Whether the process behind ``token`` still runs; None when it runs elsewhere."""
    host, pid, start = token.rsplit(":", 2)
    if host != socket.gethostname():
        return None
    return _start_time(int(pid)) == start


class Recovery:
    """Fails the trials of dead workers and queues each again, same parameters and seed.

    Args:
        max_retry: attempts after the first before a trial stays failed.
        on_lost: called with each lost trial (e.g. to end its MLflow run FAILED).
    """

    def __init__(self, max_retry: int, on_lost: Callable[[FrozenTrial], None]):
        if max_retry < 0:
            raise ValueError(f"max_retry must be >= 0, got {max_retry}")
        self.max_retry, self.on_lost = max_retry, on_lost

    def reclaim(self, study: optuna.Study, held: SweepLock) -> list[int]:
        """Finds the study's lost trials and queues them again.

        Args:
            held: the sweep lock, held by the caller. Every trial is asked and claimed
                under it; where it is exclusive (a dead holder's lock is released), an
                unclaimed RUNNING trial was left by a process that died between the two,
                and is lost at once rather than after ``UNCLAIMED_GRACE``.

        Returns:
            The numbers of the trials found lost.
        """
        running = patient(lambda: study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)), "listing trials")
        if not running:
            return []
        numbers = {t.number for t in running}
        patient(lambda: optuna.storages.fail_stale_trials(study), "failing stale trials")  # RDB heartbeat only
        now = datetime.now()
        for trial in running:
            token = trial.user_attrs.get(TrialAttr.WORKER)
            started = trial.datetime_start or now
            if token:
                lost = owner_alive(token) is False
            else:
                lost = held.exclusive or now - started > UNCLAIMED_GRACE
            if lost:
                try:
                    patient(partial(study.tell, trial.number, state=TrialState.FAIL), "failing a lost trial")
                except (ValueError, RuntimeError):  # someone else closed it meanwhile
                    pass
        failed = patient(lambda: study.get_trials(deepcopy=False, states=(TrialState.FAIL,)), "listing trials")
        # A trial its own worker failed (an error, an interrupt) says so; it is not lost.
        lost_trials = [
            t
            for t in failed
            if t.number in numbers and not ({TrialAttr.ERROR, TrialAttr.INTERRUPTED} & t.user_attrs.keys())
        ]
        for trial in lost_trials:
            self._queue_again(study, trial)
        return [t.number for t in lost_trials]

    def _queue_again(self, study: optuna.Study, trial: FrozenTrial) -> None:
        attempt = int(trial.user_attrs.get(TrialAttr.ATTEMPT, 0)) + 1
        origin = int(trial.user_attrs.get(TrialAttr.RETRY_OF, trial.number))
        self.on_lost(trial)
        if attempt > self.max_retry:
            log.warning("trial %d lost its worker %d times; it stays failed", origin, attempt)
            return
        log.warning(
            "trial %d lost its worker (%s); queued again", trial.number, trial.user_attrs.get(TrialAttr.WORKER, "?")
        )
        attrs = {TrialAttr.RETRY_OF: origin, TrialAttr.ATTEMPT: attempt}
        if TrialAttr.SEED in trial.user_attrs:
            attrs[TrialAttr.SEED] = trial.user_attrs[TrialAttr.SEED]
        patient(
            lambda: study.add_trial(
                optuna.trial.create_trial(
                    state=TrialState.WAITING, params=trial.params, distributions=trial.distributions, user_attrs=attrs
                )
            ),
            "queueing a lost trial",
        )
