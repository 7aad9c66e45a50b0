"""The sweep's schema: its search space, objective, study and where its files live."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Dict, List, Optional

from gradsweep import keys
from gradsweep.config.checks import check, one_of
from gradsweep.errors import ConfigError

SAMPLERS = ("random", "grid", "qmc", "tpe", "cmaes", "gp", "boundary")
PRUNERS = ("none", "median", "percentile", "successive_halving", "hyperband", "threshold")
PARAM_TYPES = ("categorical", "int", "float")
DIRECTIONS = ("minimize", "maximize")
OBJECTIVE_METRICS = (keys.VAL_LOSS, keys.VAL_ACCURACY, keys.TRAIN_LOSS, keys.TRAIN_ACCURACY)
JOURNAL = "optuna.journal"
SWEEPS = "sweeps"  # the folder of every sweep's journal, report and logs
# A sweep's name is a folder under sweeps/ and a file name in reports: nothing that
# climbs out (..), hides (.name) or needs quoting.
SAFE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}")


def sweep_folder(name: str) -> Path:
    """Where a sweep's journal, report and logs live unless configured elsewhere."""
    return Path(SWEEPS) / name


def default_storage(name: str) -> str:
    """Where a sweep's study lives unless ``sweep.storage`` says otherwise."""
    return f"{SWEEPS}/{name}/{JOURNAL}"


@dataclass
class ParamSpec:
    """One dimension of a search space.

    Attributes:
        type: ``categorical``, ``int`` or ``float``.
        choices: the values of a categorical dimension.
        low: lower bound of a numeric dimension.
        high: upper bound (inclusive) of a numeric dimension.
        log: sample on a log scale.
        step: grid step of a numeric dimension (required by the grid sampler for floats).
    """

    type: str = "float"
    choices: Optional[List[Any]] = None
    low: Optional[float] = None
    high: Optional[float] = None
    log: bool = False
    step: Optional[float] = None

    @classmethod
    def build(cls, entry: Any, key: str) -> ParamSpec:
        """Builds and checks an entry, naming ``key`` (its place in the config) on error."""
        if isinstance(entry, ParamSpec):
            spec = entry
        else:
            check(isinstance(entry, dict), key, "must be a mapping such as {type: int, low: 1, high: 8}")
            unknown = set(entry) - {f.name for f in fields(cls)}
            check(not unknown, f"{key}.{sorted(unknown)[0] if unknown else ''}", "unknown field")
            spec = cls(**entry)
        spec.validate(key)
        return spec

    @property
    def bounds(self) -> tuple[float, float]:
        """(low, high) of a numeric dimension (validated: both set)."""
        if self.low is None or self.high is None:
            raise ValueError("a categorical dimension has no bounds")
        return self.low, self.high

    def validate(self, key: str) -> None:
        """Checks the entry, naming ``key`` (its place in ``sweep.space``) on error."""
        one_of(self.type, PARAM_TYPES, f"{key}.type")
        for bound in ("low", "high", "step"):
            value = getattr(self, bound)
            is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
            check(value is None or is_number, f"{key}.{bound}", f"must be a number, got {value!r}")
        if self.type == "categorical":
            check(bool(self.choices), f"{key}.choices", "a categorical needs a non-empty list")
            return
        low, high = self.low, self.high
        if low is None or high is None:
            raise ConfigError(f"{key}: needs low and high")
        check(low <= high, key, f"low {low} > high {high}")
        if self.log:
            check(low > 0, f"{key}.low", f"log scale needs low > 0, got {self.low}")
            check(self.step is None, f"{key}.step", "log scale takes no step")
        check(self.step is None or self.step > 0, f"{key}.step", "must be > 0")
        if self.type == "int":
            check(
                self.step is None or float(self.step).is_integer(),
                f"{key}.step",
                f"must be a whole number for an int, got {self.step}",
            )
            for bound in ("low", "high"):
                value = getattr(self, bound)
                check(float(value).is_integer(), f"{key}.{bound}", f"must be an integer, got {value}")


@dataclass
class ObjectiveConfig:
    """What the study optimises: a recorded metric and a direction."""

    metric: str = keys.VAL_LOSS
    direction: str = "minimize"

    def __post_init__(self) -> None:
        one_of(self.metric, OBJECTIVE_METRICS, "sweep.objective.metric")
        one_of(self.direction, DIRECTIONS, "sweep.objective.direction")


# The swept keys a population's members may differ in; every other swept key fixes the
# graph (or the data) and is shared by a population's members.
MEMBER_KEYS = (
    "model.init",
    "model.init_std",
    "model.bias_init_std",
    "optimizer.learning_rate",
    "optimizer.clipnorm",
    "optimizer.momentum",
)


@dataclass
class SweepConfig:
    """An Optuna study over config keys.

    Attributes:
        name: study name; also the folder under ``sweeps/`` and the parent run's name.
        n_trials: trials that must finish with a value (complete or pruned).
        sampler: one of ``SAMPLERS``.
        sampler_options: keyword arguments of that Optuna sampler.
        pruner: one of ``PRUNERS``.
        pruner_options: keyword arguments of that Optuna pruner.
        objective: metric and direction.
        storage: an Optuna storage URL (``sqlite:///...``, ``postgresql+psycopg2://...``)
            or the path of a journal file.
        space: ``{group: {key: ParamSpec}}``; the Optuna parameter is ``group.key``.
        n_workers: worker processes on this machine, all on the one study.
        heartbeat: seconds between a running trial's heartbeats in an RDB storage; a
            trial silent for three of them is stale (its worker died) and runs again.
        max_retry: how often a dead worker's trial is run again before it stays failed.
        population: trials a worker trains together in one graph (a population, see
            ``gradsweep.training.population``): they share the swept keys that fix the graph
            and differ in the others (init, init std, bias std, learning rate, clipnorm,
            momentum); 1 = one trial at a time; 0 = automatic: the largest K whose steady
            epoch takes at most 1.5x one net's, measured when a worker starts on the
            space's largest net, capped by memory and ``sqrt(n_trials)`` (a group shares
            one architecture: the sweep still draws as many architectures as a group has
            members). Nets with dropout do not train together (``ModelConfig.stackable``):
            such a trial trains alone.
    """

    name: str = "sweep"
    n_trials: int = 10
    sampler: str = "tpe"
    sampler_options: Dict[str, Any] = field(default_factory=dict)
    pruner: str = "none"
    pruner_options: Dict[str, Any] = field(default_factory=dict)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    storage: str = SWEEPS + "/${sweep.name}/" + JOURNAL
    # Typed as Any below the key: omegaconf cannot merge command-line entries into a
    # nested dict of dataclasses. __post_init__ builds and checks each ParamSpec.
    space: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    n_workers: int = 1
    heartbeat: int = 10
    max_retry: int = 3
    population: int = 1

    def __post_init__(self) -> None:
        check(
            bool(SAFE_NAME.fullmatch(self.name)),
            "sweep.name",
            f"{self.name!r} is not a safe folder name: letters, digits, '.', '_' and '-', "
            "not starting with '.', at most 100 characters",
        )
        check(self.n_trials >= 1, "sweep.n_trials", f"must be >= 1, got {self.n_trials}")
        check(self.n_workers >= 1, "sweep.n_workers", f"must be >= 1, got {self.n_workers}")
        check(self.heartbeat >= 1, "sweep.heartbeat", f"must be >= 1 second, got {self.heartbeat}")
        check(self.max_retry >= 0, "sweep.max_retry", f"must be >= 0, got {self.max_retry}")
        check(self.population >= 0, "sweep.population", f"must be >= 0 (0 = automatic), got {self.population}")
        one_of(self.sampler, SAMPLERS, "sweep.sampler")
        one_of(self.pruner, PRUNERS, "sweep.pruner")
        for group, entries in self.space.items():
            for key, spec in entries.items():
                entries[key] = ParamSpec.build(spec, f"sweep.space.{group}.{key}")

    def space_json(self) -> str:
        """The space as canonical JSON (stored with the study and the parent run)."""
        return json.dumps({k: asdict(v) for k, v in self.params().items()}, sort_keys=True)

    def params(self) -> Dict[str, ParamSpec]:
        """The space as ``{"group.key": spec}``, the names Optuna and MLflow use."""
        return {f"{g}.{k}": spec for g, keys in self.space.items() for k, spec in keys.items()}
