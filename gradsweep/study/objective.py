"""The Optuna objective: one recorded training per trial, its outcome kept on the trial."""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any, Dict, List, Optional, Sequence, Tuple

import optuna

from gradsweep import keys
from gradsweep.config import Config
from gradsweep.data.datasets import Dataset, load
from gradsweep.keys import Tag, TrialAttr, TrialRecord
from gradsweep.retry import patient
from gradsweep.study.recovery import owner
from gradsweep.study.search import suggest
from gradsweep.tracking.recorder import Member, Recorded, derive_seed, objective_value, record_population, run_recorded
from gradsweep.tracking.store import Run, Tracker

log = logging.getLogger(__name__)


def trial_name(number: int, params: Dict[str, object]) -> str:
    """The MLflow run name of a trial: its number and its parameters, shortened."""

    def short(v: object) -> str:
        return f"{v:.3g}" if isinstance(v, float) else str(v)

    return f"trial-{number:03d} " + " ".join(f"{k.split('.')[-1]}={short(v)}" for k, v in params.items())


def record_of(recorded: Recorded) -> TrialRecord:
    """What the map and the report read back from the study alone."""
    result, verdict = recorded.result, recorded.verdict
    return TrialRecord(
        regime=verdict.regime,
        detail=verdict.detail,
        evidence=verdict.summary,
        facts=verdict.facts,
        metrics={k: v for k, v in result.final.items() if k in keys.HEADLINE},
        diverged=result.diverged,
        stop_reason=result.stop_reason,
        epochs_run=len(result.epochs),
        seconds=recorded.timings,
        reused_model=result.reused_model,
        theory_chi1=recorded.theory.chi1 if recorded.theory is not None else None,
        measured_chi1=result.init.get(keys.MEASURED_CHI1),
    )


@dataclass
class _Outcome:
    """What a trial's training gave: the epoch it was pruned at, its run, its value."""

    pruned: List[int] = field(default_factory=list)
    run: Optional[Run] = None
    value: Optional[float] = None

    def failed(self) -> None:
        """Optuna marks the trial FAIL; says so on its run too."""
        if self.run is not None:
            self.run.set_tags({Tag.STATE: "FAIL"})


def _keep(trial: optuna.Trial, recorded: Recorded) -> None:
    """Keeps the verdict, and where the time went, on the trial: what the map reads."""
    for key, item in record_of(recorded).attrs().items():
        patient(partial(trial.set_user_attr, key, item), "recording the verdict")


def _data_key(config: Config) -> str:
    return json.dumps(asdict(config.data), sort_keys=True)


class Objective:
    """The Optuna objective: one recorded training per trial, nested under ``parent``."""

    def __init__(self, config: Config, data: Dataset, tracker: Tracker, parent: Run):
        assert config.sweep is not None
        self.config, self.sweep, self.tracker, self.parent = config, config.sweep, tracker, parent
        self.space = config.sweep.params()
        # Trials that sweep data.* keys get their own data; equal settings share one copy.
        self._data = {_data_key(config): data}
        self._size: Optional[int] = None

    def population_size(self) -> int:
        """Trials trained together: ``sweep.population``, or for 0 the K measured on the
        space's largest net when first asked (see ``automatic_size``), capped by memory
        and ``sweep.n_trials``."""
        if self.sweep.population:
            return self.sweep.population
        if self._size is None:
            import psutil

            from gradsweep.training.population import AUTO_LIMIT, automatic_size

            largest = self.config.with_params(self.config.largest_params())
            if not largest.model.stackable:
                log.info("sweep.population=0: K = 1 (populations train nets without dropout)")
                self._size = 1
                return self._size
            room = psutil.virtual_memory().available // max(self.config.memory_needed(population=1), 1)
            # At most sqrt(n_trials): a group's members share one architecture, so K of them
            # leave the sampler n_trials / K architectures to place on the map.
            limit = min(AUTO_LIMIT, math.isqrt(self.sweep.n_trials), room)
            sizing = automatic_size(largest, self._data_for(largest), limit)
            log.info("sweep.population=0: %s", sizing.describe())
            self._size = sizing.size
        return self._size

    def can_group(self, params: Dict[str, Any]) -> bool:
        """Whether a trial at ``params`` can train in a population (its net is stackable)."""
        return self.config.with_params(params).model.stackable

    def _data_for(self, config: Config) -> Dataset:
        key = _data_key(config)
        if key not in self._data:
            self._data[key] = load(config.data)
        return self._data[key]

    def claim(self, trial: optuna.Trial) -> None:
        """Marks a new trial as this process's and fixes its seed (a re-run of a lost
        trial arrives with the seed of the attempt it replaces)."""
        patient(lambda: trial.set_user_attr(TrialAttr.WORKER, owner()), "claiming a trial")
        if TrialAttr.SEED not in trial.user_attrs:
            seed = derive_seed(self.config.train.seed, trial.number)
            patient(lambda: trial.set_user_attr(TrialAttr.SEED, seed), "claiming a trial")

    def __call__(self, trial: optuna.Trial) -> float:
        member, outcome = self._member(trial)
        try:
            recorded = run_recorded(
                member.config,
                self._data_for(member.config),
                member.seed,
                self.tracker,
                member.name,
                member.tags,
                parent=self.parent,
                listeners=member.listeners,
                on_start=member.on_start,
                on_end=member.on_end,
            )
            _keep(trial, recorded)
        except BaseException:
            outcome.failed()
            raise
        if outcome.pruned:
            raise optuna.TrialPruned(f"pruned at epoch {outcome.pruned[0]}")
        assert outcome.value is not None
        return outcome.value

    def population(self, trials: Sequence[optuna.Trial]) -> List[Optional[float]]:
        """Trains ``trials`` (one graph, see ``gradsweep.training.population``) together and
        records each as :meth:`__call__` would; each one's value, None where it was pruned."""
        prepared = [self._member(trial) for trial in trials]
        try:
            data = self._data_for(prepared[0][0].config)
            group = f"trial-{trials[0].number:03d}"  # the first trial's run name
            recorded = record_population([m for m, _ in prepared], data, self.tracker, group, parent=self.parent)
            for trial, one in zip(trials, recorded):
                _keep(trial, one)
        except BaseException:
            for _, outcome in prepared:
                outcome.failed()
            raise
        return [None if outcome.pruned else outcome.value for _, outcome in prepared]

    def _member(self, trial: optuna.Trial) -> Tuple[Member, _Outcome]:
        """The trial's config, seed, run name, tags, pruning listener and ending; and its
        outcome, filled in as it trains and ends."""
        metric = self.sweep.objective.metric
        params = suggest(trial, self.space)
        attrs = trial.user_attrs
        seed = attrs.get(TrialAttr.SEED, derive_seed(self.config.train.seed, trial.number))
        outcome = _Outcome()

        def report(epoch: int, metrics: Dict[str, float]) -> bool:
            value = metrics.get(metric)
            if value is None or not math.isfinite(value):
                return False  # a diverged epoch stops training on its own
            patient(lambda: trial.report(value, epoch), "reporting an epoch")
            if patient(trial.should_prune, "asking the pruner"):
                outcome.pruned.append(epoch)
                return True
            return False

        def link(run: Run) -> None:
            outcome.run = run
            patient(lambda: trial.set_user_attr(TrialAttr.RUN_ID, run.id), "linking the MLflow run")

        def end(recorded: Recorded) -> Dict[str, Any]:
            """The trial's value; the outcome's tags for its run, sent as the run ends."""
            outcome.value = objective_value(recorded.result, metric, self._data_for(config))
            return {Tag.STATE: "PRUNED" if outcome.pruned else "COMPLETE", Tag.OBJECTIVE: outcome.value}

        tags = {
            Tag.STUDY: self.sweep.name,
            Tag.TRIAL_NUMBER: str(trial.number),
            Tag.STATE: "RUNNING",
            Tag.KIND: "trial",
            **({Tag.RETRY_OF: str(attrs[TrialAttr.RETRY_OF])} if TrialAttr.RETRY_OF in attrs else {}),
        }
        config = self.config.with_params(params)
        return Member(config, seed, trial_name(trial.number, params), tags, [report], link, end), outcome
