"""Many workers, one study: who starts the next trial, and what becomes of a dead
worker's trial.

Workers on one machine share a journal file or SQLite database; workers on many share
PostgreSQL. Either way they take :class:`SweepLock` to decide whether another trial may
start (so the study ends at exactly ``sweep.n_trials`` counted trials) and to pop queued
trials (SQLite alone would hand one queued trial to several workers). :class:`Recovery`
fails the trials of workers that died and queues them again with the same parameters
and seed: a dead local worker is seen at once from its process id, a dead remote one by
Optuna's heartbeat (RDB storages only; a journal file has none).
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import socket
import time
import warnings
from datetime import datetime, timedelta
from pathlib import Path
from typing import Callable, Optional, TypeVar

import optuna
from optuna.trial import FrozenTrial, TrialState

log = logging.getLogger(__name__)
T = TypeVar("T")
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning, message=".*fail_stale_trials")

# A RUNNING trial nobody claimed within this time lost its worker between ask and claim.
UNCLAIMED_GRACE = timedelta(seconds=60)


class StorageUnavailable(RuntimeError):
    """The study's storage stayed unreachable; the message names ``sweep.storage``."""


def _transient() -> tuple:
    import sqlalchemy.exc

    return (optuna.exceptions.StorageInternalError, sqlalchemy.exc.OperationalError,
            sqlalchemy.exc.InterfaceError)


def patient(call: Callable[[], T], what: str, patience: float = 120.0) -> T:
    """Runs ``call``, retrying while the storage is unreachable (e.g. PostgreSQL restarts).

    Raises:
        StorageUnavailable: still failing after ``patience`` seconds.
    """
    deadline, delay = time.monotonic() + patience, 0.5
    while True:
        try:
            return call()
        except _transient() as err:
            if time.monotonic() > deadline:
                reason = str(err).splitlines()[0] if str(err) else type(err).__name__
                raise StorageUnavailable(f"sweep.storage: unreachable for {patience:.0f} s ({what}): "
                                         f"{reason}") from None
            log.warning("storage unreachable (%s); retrying in %.1f s", what, delay)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


class SweepLock:
    """A lock over one study, across processes: a file lock beside a local storage, a
    PostgreSQL advisory lock for a shared one, nothing elsewhere (then a race between
    machines may run a surplus trial, which the summary reports).

    Args:
        storage: the study's storage URL or journal path.
        study: the study name (the advisory lock's key).
    """

    def __init__(self, storage: str, study: str):
        self.storage, self.study = storage, study
        self._file = None
        self._engine = None
        self._connection = None
        scheme = storage.split("://", 1)[0] if "://" in storage else ""
        if scheme.startswith("postgresql"):
            self.kind = "postgresql"
        elif scheme in ("", "sqlite"):
            self.kind = "file"
            path = storage[len("sqlite:///"):] if scheme else storage
            self.path = Path(path + ".gradsweep-lock")  # ".lock" is the journal's own
        else:
            self.kind = "none"

    def __enter__(self) -> "SweepLock":
        if self.kind == "file":
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "a")
            fcntl.flock(self._file, fcntl.LOCK_EX)
        elif self.kind == "postgresql":
            patient(self._advisory_lock, "taking the sweep lock")
        return self

    def __exit__(self, *exc) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None
        if self._connection is not None:
            try:  # closing the session releases the advisory lock even if unlock fails
                self._connection.close()
            except Exception:  # the server went away; the lock went with the session
                pass
            self._connection = None

    def _advisory_lock(self) -> None:
        import sqlalchemy

        if self._engine is None:
            self._engine = sqlalchemy.create_engine(self.storage, pool_pre_ping=True, poolclass=sqlalchemy.pool.NullPool)
        key = int.from_bytes(hashlib.sha256(f"gradsweep:{self.study}".encode()).digest()[:8], "big", signed=True)
        connection = self._engine.connect()
        try:
            connection.execute(sqlalchemy.text("SELECT pg_advisory_lock(:key)"), {"key": key})
        except Exception:
            connection.close()
            raise
        self._connection = connection


def _start_time(pid: int) -> Optional[str]:
    """The process's start time in clock ticks since boot, None when it is gone or a
    zombie (a killed child its parent has not reaped yet)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    return None if fields[0] in ("Z", "X") else fields[19]


def owner() -> str:
    """This process as ``host:pid:start``; the start time tells a reused pid apart."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{_start_time(pid) or 0}"


def owner_alive(token: str) -> Optional[bool]:
    """Whether the process behind ``token`` still runs; None when it runs elsewhere."""
    host, pid, start = token.rsplit(":", 2)
    if host != socket.gethostname() or not Path("/proc").is_dir():
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

    def reclaim(self, study: optuna.Study) -> list[int]:
        """Finds the study's lost trials and queues them again; call under the sweep lock.

        Returns:
            The numbers of the trials found lost.
        """
        running = patient(lambda: study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)), "listing trials")
        if not running:
            return []
        by_id = {t._trial_id: t for t in running}
        patient(lambda: optuna.storages.fail_stale_trials(study), "failing stale trials")  # RDB heartbeat only
        now = datetime.now()
        for trial in running:
            token = trial.user_attrs.get("worker")
            lost = (owner_alive(token) is False) if token else (now - trial.datetime_start > UNCLAIMED_GRACE)
            if lost:
                try:
                    patient(lambda: study.tell(trial.number, state=TrialState.FAIL), "failing a lost trial")
                except (ValueError, RuntimeError):  # someone else closed it meanwhile
                    pass
        lost_trials = []
        for trial_id, before in by_id.items():
            now_trial = patient(lambda: study._storage.get_trial(trial_id), "reading a trial")
            # A trial its own worker failed (an error, an interrupt) says so; it is not lost.
            if now_trial.state == TrialState.FAIL and not ({"error", "interrupted"} & now_trial.user_attrs.keys()):
                lost_trials.append(now_trial)
        for trial in lost_trials:
            self._queue_again(study, trial)
        return [t.number for t in lost_trials]

    def _queue_again(self, study: optuna.Study, trial: FrozenTrial) -> None:
        attempt = int(trial.user_attrs.get("attempt", 0)) + 1
        origin = int(trial.user_attrs.get("retry_of", trial.number))
        self.on_lost(trial)
        if attempt > self.max_retry:
            log.warning("trial %d lost its worker %d times; it stays failed", origin, attempt)
            return
        log.warning("trial %d lost its worker (%s); queued again", trial.number, trial.user_attrs.get("worker", "?"))
        attrs = {"retry_of": origin, "attempt": attempt}
        if "seed" in trial.user_attrs:
            attrs["seed"] = trial.user_attrs["seed"]
        patient(lambda: study.add_trial(optuna.trial.create_trial(
            state=TrialState.WAITING, params=trial.params, distributions=trial.distributions,
            user_attrs=attrs)), "queueing a lost trial")
