"""From the sweep config to Optuna: search space, sampler, pruner, storage, study."""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any, Dict

import numpy as np
import optuna

from gradsweep.config import ConfigError, ParamSpec, SweepConfig, redact


def suggest(trial: optuna.Trial, space: Dict[str, ParamSpec]) -> Dict[str, Any]:
    """Draws one value per dimension; the Optuna parameter name is the config key."""
    values: Dict[str, Any] = {}
    for name, spec in space.items():
        if spec.type == "categorical":
            values[name] = trial.suggest_categorical(name, list(spec.choices or []))
        elif spec.type == "int":
            values[name] = trial.suggest_int(name, int(spec.low), int(spec.high),
                                             step=int(spec.step or 1), log=spec.log)
        else:
            values[name] = trial.suggest_float(name, float(spec.low), float(spec.high),
                                               step=spec.step, log=spec.log)
    return values


def grid(space: Dict[str, ParamSpec]) -> Dict[str, list]:
    """The grid sampler's value lists: categoricals as given, numbers by ``step``."""
    values: Dict[str, list] = {}
    for name, spec in space.items():
        if spec.type == "categorical":
            values[name] = list(spec.choices or [])
        elif spec.type == "int":
            values[name] = list(range(int(spec.low), int(spec.high) + 1, int(spec.step or 1)))
        elif spec.step is None:
            raise ConfigError(f"sweep.space.{name}.step: the grid sampler needs a step for floats")
        else:
            count = int(np.floor((spec.high - spec.low) / spec.step + 1e-9)) + 1
            values[name] = [float(spec.low + spec.step * i) for i in range(count)]
    return values


def make_sampler(sweep: SweepConfig) -> optuna.samplers.BaseSampler:
    """The sampler named by ``sweep.sampler`` with ``sweep.sampler_options``."""
    options = dict(sweep.sampler_options)
    try:
        if sweep.sampler == "grid":
            return optuna.samplers.GridSampler(grid(sweep.params()), **options)
        cls = {
            "random": optuna.samplers.RandomSampler,
            "qmc": optuna.samplers.QMCSampler,
            "tpe": optuna.samplers.TPESampler,
            "cmaes": optuna.samplers.CmaEsSampler,
            "gp": optuna.samplers.GPSampler,
        }[sweep.sampler]
        return cls(**options)
    except TypeError as err:
        raise ConfigError(f"sweep.sampler_options: {err}") from None


def make_pruner(sweep: SweepConfig) -> optuna.pruners.BasePruner:
    """The pruner named by ``sweep.pruner`` with ``sweep.pruner_options``; ``none``
    takes no options and ignores those a sweep file set for its own pruner."""
    if sweep.pruner == "none":
        return optuna.pruners.NopPruner()
    options = dict(sweep.pruner_options)
    cls = {
        "none": optuna.pruners.NopPruner,
        "median": optuna.pruners.MedianPruner,
        "percentile": optuna.pruners.PercentilePruner,
        "successive_halving": optuna.pruners.SuccessiveHalvingPruner,
        "hyperband": optuna.pruners.HyperbandPruner,
        "threshold": optuna.pruners.ThresholdPruner,
    }[sweep.pruner]
    try:
        return cls(**options)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"sweep.pruner_options: {err}") from None


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
            return optuna.storages.RDBStorage(url, engine_kwargs=engine, heartbeat_interval=heartbeat,
                                              grace_period=3 * heartbeat)
    path = Path(url)
    path.parent.mkdir(parents=True, exist_ok=True)
    return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))


def open_study(sweep: SweepConfig) -> optuna.Study:
    """Creates the study or loads it when the same command runs again.

    Raises:
        ConfigError: the storage cannot be opened (names ``sweep.storage``).
    """
    sampler, pruner = make_sampler(sweep), make_pruner(sweep)
    for attempt in range(3):
        try:
            storage = make_storage(sweep.storage, sweep.heartbeat)
            return optuna.create_study(study_name=sweep.name, storage=storage, sampler=sampler, pruner=pruner,
                                       direction=sweep.objective.direction, load_if_exists=True)
        except ConfigError:
            raise
        except Exception as err:
            # Processes that start together on a fresh database race to create its
            # schema; the losers find it made on a second look.
            if attempt == 2 or "://" not in sweep.storage or _unreachable(err):
                reason = str(err).splitlines()[0] if str(err) else type(err).__name__
                raise ConfigError(f"sweep.storage: cannot open {redact(sweep.storage)}: {reason}") from None
            time.sleep(1 + attempt)
    raise AssertionError("unreachable")


def _unreachable(err: Exception) -> bool:
    text = str(err).lower()
    return any(s in text for s in ("could not connect", "connection refused", "could not translate",
                                   "password authentication", "does not exist", "unable to open"))
