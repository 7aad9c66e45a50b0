"""The study's storage: an RDB database or a journal file, and the study in it."""

from __future__ import annotations

import warnings
from pathlib import Path

import optuna
from optuna.storages.journal import JournalFileBackend

from gradsweep.config import ConfigError, SweepConfig, redact
from gradsweep.errors import first_line
from gradsweep.retry import retrying
from gradsweep.study.search import make_pruner, make_sampler


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
    return optuna.storages.JournalStorage(JournalFileBackend(str(path)))


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
        raise ConfigError(f"sweep.storage: cannot open {redact(sweep.storage)}: {first_line(err)}") from None


def _unreachable(err: BaseException) -> bool:
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
        )
    )
