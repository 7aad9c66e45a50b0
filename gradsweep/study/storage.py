"""The study's storage: an RDB database or a journal file, and the study in it."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import optuna
from filelock import FileLock
from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

from gradsweep.config import ConfigError, SweepConfig
from gradsweep.errors import first_line
from gradsweep.redaction import redact
from gradsweep.retry import retrying
from gradsweep.study.search import make_pruner, make_sampler

log = logging.getLogger(__name__)


def make_storage(url: str, heartbeat: int = 10):
    """An Optuna storage: an RDB URL (``sqlite:///``, ``postgresql+psycopg2://``) or a
    journal file path (the default, safe for several local workers).

    An RDB storage beats a heartbeat every ``heartbeat`` seconds per running trial, so
    the trials of a worker that died on another machine are found stale; its
    connections are checked before use, so workers carry on after a database restart.
    """
    if "://" in url:
        engine = {"pool_pre_ping": True} if not url.startswith("sqlite") else {}
        with warnings.catch_warnings():  # heartbeats are "experimental" since Optuna 2.9
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(
                url, engine_kwargs=engine, heartbeat_interval=heartbeat, grace_period=3 * heartbeat
            )
    path = Path(url)
    path.parent.mkdir(parents=True, exist_ok=True)
    repair_journal(path)
    return optuna.storages.JournalStorage(JournalFileBackend(str(path), JournalLock(path)))


class JournalLock(JournalFileOpenLock):
    """The journal's write lock as an OS file lock (flock, through filelock) on
    ``<journal>.flock``: the kernel drops it when its holder dies, however it died.
    Optuna's own locks are files that a process killed mid-write leaves behind, and the
    next writer waits 30 s before it takes them as stale. Every gradsweep process takes
    this one; readers (a report, optuna-dashboard) take none.
    """

    # A JournalFileOpenLock only in type, for JournalFileBackend's signature: both of its
    # methods are replaced.
    POLL_SECONDS = 0.002  # the lock is held for one append: a short poll, not filelock's 50 ms

    def __init__(self, journal: Path):
        super().__init__(str(journal))
        self._lock = FileLock(f"{journal}.flock")

    def acquire(self) -> bool:
        self._lock.acquire(poll_interval=self.POLL_SECONDS)
        return True

    def release(self) -> None:
        self._lock.release()


def repair_journal(journal: Path) -> bool:
    """Drops a cut-off last line from a journal file; True when there was one.

    A process killed while writing can leave the last record without its newline; Optuna
    would append the next record to it and the journal would no longer parse. The cut
    record is a write that never finished (its trial is then lost and run again); its
    bytes are kept beside the journal, as ``<journal>.torn``.
    """
    if not journal.is_file() or journal.stat().st_size == 0 or _last_byte(journal) == b"\n":
        return False
    lock = JournalLock(journal)
    lock.acquire()
    try:
        with open(journal, "rb+") as file:
            data = file.read()
            if data.endswith(b"\n"):
                return False  # another process finished the line meanwhile
            keep = data.rfind(b"\n") + 1
            Path(f"{journal}.torn").write_bytes(data[keep:])
            file.truncate(keep)
    finally:
        lock.release()
    log.warning(
        "journal %s ended in a cut-off record (a process was killed while writing it); dropped it, kept in %s.torn",
        journal,
        journal,
    )
    return True


def _last_byte(path: Path) -> bytes:
    with open(path, "rb") as file:
        file.seek(-1, 2)
        return file.read(1)


def open_study(sweep: SweepConfig) -> optuna.Study:
    """Creates the study or loads it when the same command runs again.

    Raises:
        ConfigError: the storage cannot be opened (names ``sweep.storage``).
    """
    sampler, pruner = make_sampler(sweep), make_pruner(sweep)

    def create() -> optuna.Study:
        storage = make_storage(sweep.storage, sweep.heartbeat)
        return optuna.create_study(
            study_name=sweep.name,
            storage=storage,
            sampler=sampler,
            pruner=pruner,
            direction=sweep.objective.direction,  # type: ignore[arg-type]  # checked in ObjectiveConfig
            load_if_exists=True,
        )

    # Processes that start together on a fresh database race to create its schema; the
    # losers find it made on a second look.
    def racing(err: BaseException) -> bool:
        return "://" in sweep.storage and not isinstance(err, ConfigError) and not _unreachable(err)

    try:
        return retrying(racing, patience=10.0, what="creating the study", first=1.0)(create)
    except ConfigError:
        raise
    except Exception as err:
        raise ConfigError(f"sweep.storage: cannot open {redact(sweep.storage)}: {redact(first_line(err))}") from None


def _unreachable(err: BaseException) -> bool:
    """An error no second look cures: nothing answers, a wrong login, no such database."""
    text = str(err).lower()
    return any(
        s in text
        for s in (
            "could not connect",
            "connection refused",
            "could not translate",
            "password authentication",
            "does not exist",
            "unable to open",
            "not a database",
        )
    )
