"""From the sweep config to Optuna: search space, sampler, pruner, storage, study."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict

import numpy as np
import optuna

from gradsweep.config import ConfigError, ParamSpec, SweepConfig


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
    """The pruner named by ``sweep.pruner`` with ``sweep.pruner_options``."""
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


def make_storage(url: str):
    """An Optuna storage: an RDB URL (``sqlite:///``, ``postgresql+psycopg2://``) or a
    journal file path (the default, safe for several local workers)."""
    if "://" in url:
        return optuna.storages.RDBStorage(url)
    path = Path(url)
    path.parent.mkdir(parents=True, exist_ok=True)
    return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))


def open_study(sweep: SweepConfig) -> optuna.Study:
    """Creates the study or loads it when the same command runs again.

    Raises:
        ConfigError: the storage cannot be opened (names ``sweep.storage``).
    """
    try:
        storage = make_storage(sweep.storage)
    except Exception as err:
        raise ConfigError(f"sweep.storage: cannot open {sweep.storage}: {str(err).splitlines()[0]}") from None
    return optuna.create_study(study_name=sweep.name, storage=storage, sampler=make_sampler(sweep),
                               pruner=make_pruner(sweep), direction=sweep.objective.direction,
                               load_if_exists=True)
