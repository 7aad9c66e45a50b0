"""From the sweep config to Optuna: search space, sampler and pruner."""

from __future__ import annotations

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
            low, high = spec.bounds
            values[name] = trial.suggest_int(name, int(low), int(high), step=int(spec.step or 1), log=spec.log)
        else:
            low, high = spec.bounds
            values[name] = trial.suggest_float(name, float(low), float(high), step=spec.step, log=spec.log)
    return values


def grid(space: Dict[str, ParamSpec]) -> Dict[str, list]:
    """The grid sampler's value lists: categoricals as given, numbers by ``step``."""
    values: Dict[str, list] = {}
    for name, spec in space.items():
        if spec.type == "categorical":
            values[name] = list(spec.choices or [])
        elif spec.type == "int":
            low, high = spec.bounds
            values[name] = list(range(int(low), int(high) + 1, int(spec.step or 1)))
        elif spec.step is None:
            raise ConfigError(f"sweep.space.{name}.step: the grid sampler needs a step for floats")
        else:
            low, high = spec.bounds
            count = int(np.floor((high - low) / spec.step + 1e-9)) + 1
            values[name] = [float(low + spec.step * i) for i in range(count)]
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
