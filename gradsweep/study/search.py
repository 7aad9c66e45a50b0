"""From the sweep config to Optuna: search space, sampler and pruner."""

from __future__ import annotations

import contextlib
import inspect
import warnings
from typing import Any, Dict, Iterator

import numpy as np
import optuna

from gradsweep.config import ConfigError, ParamSpec, SweepConfig
from gradsweep.study.boundary import BoundarySampler
from gradsweep.study.fixable import Fixable
from gradsweep.study.grid import GroupedGridSampler


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


# What an option's annotation may name, and the values each name takes.
_SIMPLE_TYPES: Dict[str, tuple] = {
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "str": (str,),
    "None": (type(None),),
}


def check_options(cls: type, options: Dict[str, Any], key: str) -> None:
    """Checks options against ``cls.__init__``'s signature: known names, and values of the
    annotated type where it is a plain one (int, float, bool, str, None).

    Optuna takes e.g. ``n_startup_trials="abc"`` without a word and fails at the first
    trial that reads it; here it fails before anything is created.

    Raises:
        ConfigError: naming ``key.<option>``.
    """
    parameters = inspect.signature(cls).parameters
    takes_any = any(p.kind == p.VAR_KEYWORD for p in parameters.values())
    for name, value in options.items():
        if name not in parameters:
            if takes_any:
                continue
            known = ", ".join(n for n in parameters if n != "self")
            raise ConfigError(f"{key}.{name}: {cls.__name__} takes no option {name!r} (it takes: {known})")
        annotation = parameters[name].annotation
        text = annotation.__name__ if isinstance(annotation, type) else str(annotation)
        names = [t.strip() for t in text.replace("Optional[", "None|").strip("]").split("|")]
        if annotation is inspect.Parameter.empty or not all(n in _SIMPLE_TYPES for n in names):
            continue  # a richer type (a callable, a dict): left to the sampler or pruner
        allowed = tuple(t for n in names for t in _SIMPLE_TYPES[n])
        wrong = not isinstance(value, allowed) or (isinstance(value, bool) and "bool" not in names)
        if wrong:
            raise ConfigError(f"{key}.{name}: {cls.__name__} takes {text} here, got {value!r}")


def make_sampler(sweep: SweepConfig) -> optuna.samplers.BaseSampler:
    """The sampler named by ``sweep.sampler`` with ``sweep.sampler_options``."""
    options = dict(sweep.sampler_options)
    cls = {
        "grid": GroupedGridSampler,
        "random": optuna.samplers.RandomSampler,
        "qmc": optuna.samplers.QMCSampler,
        "tpe": optuna.samplers.TPESampler,
        "cmaes": optuna.samplers.CmaEsSampler,
        "gp": optuna.samplers.GPSampler,
        "boundary": BoundarySampler,
    }[sweep.sampler]
    check_options(cls, options, "sweep.sampler_options")
    try:
        if sweep.sampler == "grid":
            return GroupedGridSampler(grid(sweep.params()), **options)
        return cls(**options)
    except (TypeError, ValueError) as err:
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
    check_options(cls, options, "sweep.pruner_options")
    try:
        return cls(**options)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"sweep.pruner_options: {err}") from None


@contextlib.contextmanager
def fixing(study: optuna.Study, fixed: Dict[str, Any]) -> Iterator[None]:
    """Trials asked inside take ``fixed``'s values; the study's sampler samples the rest: the
    boundary and grid samplers given the fixed values, any other through Optuna's
    PartialFixedSampler."""
    sampler = study.sampler
    if isinstance(sampler, Fixable):
        with sampler.fixing(fixed):
            yield
        return
    with warnings.catch_warnings():  # PartialFixedSampler is "experimental" since Optuna 2.4
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.sampler = optuna.samplers.PartialFixedSampler(fixed, sampler)
    try:
        yield
    finally:
        study.sampler = sampler
