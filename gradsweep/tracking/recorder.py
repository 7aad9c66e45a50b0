"""One training run recorded as one MLflow run: params, epoch metrics, artifacts.

Used for a sweep's trials (nested under the sweep's parent run) and for a single run.
Whatever happens, the MLflow run ends FINISHED, FAILED or KILLED, never RUNNING.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd
import yaml

from gradsweep import keys
from gradsweep.config import Config, ModelConfig, flatten
from gradsweep.data.datasets import Dataset
from gradsweep.diagnosis import flow_figure
from gradsweep.diagnosis.regime import Verdict, diagnose, trainability
from gradsweep.keys import Artifact, Tag
from gradsweep.model.theory import Prediction, no_theory, predict
from gradsweep.tracking.store import Run, Tracker

if TYPE_CHECKING:
    from gradsweep.training.loop import EpochListener, TrainResult

log = logging.getLogger(__name__)


def derive_seed(base: int, trial_number: int) -> int:
    """A well-mixed 31-bit seed for trial ``trial_number`` of a sweep seeded ``base``."""
    return int(np.random.SeedSequence([base, trial_number]).generate_state(1)[0] & 0x7FFFFFFF)


def constant_loss(positive_rate: float) -> float:
    """Binary cross-entropy of always predicting the base rate: what a trivial model scores."""
    p = min(max(positive_rate, 1e-7), 1 - 1e-7)
    return float(-(p * np.log(p) + (1 - p) * np.log(1 - p)))


def objective_value(result: TrainResult, metric: str, data: Dataset) -> float:
    """The trial's objective: ``metric`` of the final weights, always finite.

    A diverged run scores what a constant predictor would (its loss, or the majority
    share as accuracy), so it stays in the study as data instead of failing.
    """
    value = result.final.get(metric, float("nan"))
    if result.diverged or not np.isfinite(value):
        p = data.positive_rate
        return constant_loss(p) if metric.endswith("loss") else max(p, 1 - p)
    return float(value)


def epoch_table(result: TrainResult) -> pd.DataFrame:
    """All recorded statistics, one row per epoch, epoch 0 = at initialisation."""
    rows = [{"epoch": 0, **result.init}] + [{"epoch": i, **row} for i, row in enumerate(result.epochs, start=1)]
    return pd.DataFrame(rows)


@dataclass
class Recorded:
    """A finished, recorded training: what it measured, its verdict, its MLflow run and
    where its time went (``run_setup``, ``train`` and its parts from
    :attr:`TrainResult.timings`, ``verdict_artifacts``, ``logging``), in seconds."""

    result: TrainResult
    verdict: Verdict
    theory: Optional[Prediction]
    run: Run
    timings: Dict[str, float] = field(default_factory=dict)


def theory_for(config: Config, input_moment: float = 1.0) -> Optional[Prediction]:
    """Mean-field prediction for the hidden layers (the narrowest width), if it applies;
    ``input_moment``, the features' mean square, sets where a residual net starts."""
    model = config.model
    return predict(
        model.activation,
        model.init,
        model.init_std,
        model.bias_init_std,
        min(model.hidden_widths),
        model.norm,
        model.residual,
        depth=len(model.hidden_widths),
        input_moment=input_moment,
    )


def _verdict_tags(
    verdict: Verdict, theory: Optional[Prediction], result: TrainResult, model: ModelConfig
) -> Dict[str, str]:
    tags = {
        Tag.REGIME: verdict.regime,
        Tag.REGIME_DETAIL: verdict.detail or "-",
        Tag.REGIME_EVIDENCE: verdict.summary[:500],
        Tag.THEORY_SOURCE: no_theory(model.activation, model.init, model.residual, model.norm) or "none",
    }
    if "trainable" in verdict.facts:
        tags[Tag.TRAINABLE] = "true" if verdict.facts["trainable"] else "false"
    if theory is not None:
        tags.update(
            {Tag.THEORY_PHASE: theory.phase, Tag.THEORY_CHI1: f"{theory.chi1:.4g}", Tag.THEORY_SOURCE: theory.source}
        )
    if keys.MEASURED_CHI1 in result.init:
        tags[Tag.MEASURED_CHI1] = f"{result.init[keys.MEASURED_CHI1]:.4g}"
    return tags


def write_artifacts(config: Config, result: TrainResult, verdict: Verdict, seed: int, folder: Path) -> None:
    """Writes the trial's CSV, figure (unless ``tracking.figures`` is off), verdict and
    replayable config into ``folder``."""
    (folder / Artifact.REGIME).write_text(verdict.to_json())
    table = epoch_table(result)
    table.to_csv(folder / Artifact.EPOCHS, index=False)
    if config.tracking.figures:
        flow_figure.gradient_flow(table, config.model.layer_names, folder / Artifact.GRADIENT_FLOW, verdict)
    replay = asdict(config)
    replay["train"]["seed"] = seed  # `gradsweep rerun` trains with exactly this seed
    replay.pop("sweep", None)
    replay.pop("tracking", None)
    (folder / Artifact.CONFIG).write_text(yaml.safe_dump(replay, sort_keys=False))


class _Laps:
    """Seconds between successive laps, summed per name, from the moment it is made."""

    def __init__(self) -> None:
        self.timings: Dict[str, float] = {}
        self._clock = time.perf_counter()

    def lap(self, what: str) -> None:
        now = time.perf_counter()
        self.timings[what] = self.timings.get(what, 0.0) + now - self._clock
        self._clock = now


def _epoch_logger(run: Run) -> EpochListener:
    """A listener that logs each epoch's metrics at its step and never stops training."""

    def log_epoch(epoch: int, metrics: Dict[str, float]) -> bool:
        run.log_metrics(metrics, step=epoch)
        return False

    return log_epoch


def _judge(config: Config, result: TrainResult, data: Dataset) -> Tuple[Verdict, Optional[Prediction]]:
    """The trial's regime verdict with its trainability, and what mean-field theory
    predicted for its model."""
    theory = theory_for(config, data.mean_square)
    verdict = diagnose(result, config.model, config.regime, config.model.layer_names)
    verdict.facts.update(trainability(result.final, data.positive_rate, config.regime.trainable_share))
    return verdict, theory


def _log_artifacts(run: Run, config: Config, result: TrainResult, verdict: Verdict, seed: int) -> None:
    """Writes the trial's artifacts into a temporary folder and uploads them to ``run``."""
    with tempfile.TemporaryDirectory() as tmp:
        write_artifacts(config, result, verdict, seed, Path(tmp))
        run.log_artifacts(Path(tmp))


def _step0_metrics(result: TrainResult, theory: Optional[Prediction], timings: Dict[str, float]) -> Dict[str, float]:
    """What step 0 holds: the statistics at initialisation, the fit's wall time, the
    timed parts (``train`` is ``train_seconds`` already) and the theory's numbers."""
    step0 = {
        **result.init,
        keys.TRAIN_SECONDS: result.seconds,
        **{keys.seconds(k): v for k, v in timings.items() if k != "train"},
    }
    if theory is not None:
        step0.update({keys.THEORY_CHI1: theory.chi1, keys.THEORY_SIGMA_W2: theory.sigma_w2})
    return step0


def _outcome_tags(
    result: TrainResult, verdict: Verdict, theory: Optional[Prediction], model: ModelConfig
) -> Dict[str, Any]:
    """How training ended and what it was judged, as the run's tags."""
    return {
        Tag.STOP_REASON: result.stop_reason,
        Tag.DIVERGED: str(result.diverged).lower(),
        Tag.REUSED_MODEL: str(result.reused_model).lower(),
        Tag.EPOCHS_RUN: len(result.epochs),
        **({Tag.DIVERGED_EPOCH: result.diverged_epoch} if result.diverged else {}),
        **_verdict_tags(verdict, theory, result, model),
    }


def _log_outcome(
    run: Run,
    name: str,
    result: TrainResult,
    verdict: Verdict,
    theory: Optional[Prediction],
    model: ModelConfig,
    timings: Dict[str, float],
) -> None:
    """Logs the step-0 metrics and the outcome tags, and puts the regime in the run's name:
    one batch, which goes out as the run ends."""
    run.log_metrics(_step0_metrics(result, theory, timings), step=0)
    run.set_tags(_outcome_tags(result, verdict, theory, model), later=True)
    run.rename(f"{name} [{verdict.regime}]")  # the runs table shows the regime beside the name


def _open(
    config: Config, data: Dataset, seed: int, tracker: Tracker, name: str, tags: Dict[str, str], parent: Optional[Run]
) -> Run:
    run = tracker.start_run(
        name, {**tags, Tag.SEED: str(seed), Tag.DATA_DIGEST: data.digest}, parent_id=parent.id if parent else None
    )
    try:
        run.log_params({**flatten(config), "seed": seed})
    except BaseException:
        run.finish("FAILED")
        raise
    return run


OnEnd = Callable[[Recorded], Dict[str, Any]]


def _conclude(
    run: Run,
    config: Config,
    data: Dataset,
    result: TrainResult,
    seed: int,
    name: str,
    laps: _Laps,
    on_end: Optional[OnEnd] = None,
) -> Recorded:
    """Judges a finished training and logs its verdict, artifacts and step 0 to ``run``,
    with the tags ``on_end`` gives for it; all but the artifacts in one last batch."""
    verdict, theory = _judge(config, result, data)
    _log_artifacts(run, config, result, verdict, seed)
    laps.lap("verdict_artifacts")
    laps.timings.update(result.timings)  # before logging: step 0 holds the training's parts too
    _log_outcome(run, name, result, verdict, theory, config.model, laps.timings)
    recorded = Recorded(result, verdict, theory, run, laps.timings)
    if on_end is not None:
        run.set_tags(on_end(recorded), later=True)
    run.deliver()
    laps.lap("logging")  # what the epochs' metrics left to send goes out with the tags
    return recorded


def run_recorded(
    config: Config,
    data: Dataset,
    seed: int,
    tracker: Tracker,
    name: str,
    tags: Dict[str, str],
    parent: Optional[Run] = None,
    listeners: Sequence[EpochListener] = (),
    on_start: Optional[Callable[[Run], None]] = None,
    on_end: Optional[OnEnd] = None,
) -> Recorded:
    """Trains ``config`` with ``seed``, judges its regime and records it as one MLflow run.

    Args:
        on_start: called with the new run before training (e.g. to link it to Optuna).
        on_end: called with the recorded training before its run ends; the tags it
            returns go out with the run's last batch (e.g. the Optuna trial's outcome).
    """
    laps = _Laps()
    run = _open(config, data, seed, tracker, name, tags, parent)
    status = "FAILED"
    try:
        if on_start is not None:
            on_start(run)
        laps.lap("run_setup")
        from gradsweep.training.loop import train  # TensorFlow: only a process that trains loads it

        result = train(config, data, seed, [_epoch_logger(run), *listeners])
        laps.lap("train")
        recorded = _conclude(run, config, data, result, seed, name, laps, on_end)
        status = "FINISHED"
        return recorded
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        run.finish(status)


@dataclass
class Member:
    """One config of a population, as :func:`record_population` records it."""

    config: Config
    seed: int
    name: str
    tags: Dict[str, str]
    listeners: Sequence[EpochListener] = ()
    on_start: Optional[Callable[[Run], None]] = None
    on_end: Optional[OnEnd] = None


def record_population(
    members: Sequence[Member], data: Dataset, tracker: Tracker, group: str, parent: Optional[Run] = None
) -> List[Recorded]:
    """Trains ``members`` as one population (:func:`train_population`) and records each as
    :func:`run_recorded` records a lone training: one MLflow run each, with the same params,
    metrics, artifacts and verdict, and a ``population`` tag, ``<group>/<size>``. Every run
    ends FINISHED, FAILED or KILLED."""
    from gradsweep.training.population import train_population

    laps = _Laps()
    status: Dict[int, str] = {}
    runs: List[Run] = []
    with contextlib.ExitStack() as ending:
        try:
            tag = {Tag.POPULATION: f"{group}/{len(members)}"}
            for i, member in enumerate(members):
                run = _open(member.config, data, member.seed, tracker, member.name, {**member.tags, **tag}, parent)
                runs.append(run)
                status[i] = "FAILED"
                ending.callback(lambda run, i: run.finish(status[i]), run, i)
                if member.on_start is not None:
                    member.on_start(run)
            laps.lap("run_setup")
            results = train_population(
                [m.config for m in members],
                data,
                [m.seed for m in members],
                [[_epoch_logger(run), *m.listeners] for run, m in zip(runs, members)],
            )
            laps.lap("train")
            shared = {k: v / len(members) for k, v in laps.timings.items()}
            out = []
            for i, (run, member, result) in enumerate(zip(runs, members, results)):
                own = _Laps()
                own.timings.update(shared)
                out.append(_conclude(run, member.config, data, result, member.seed, member.name, own, member.on_end))
                status[i] = "FINISHED"
            return out
        except KeyboardInterrupt:
            status.update({i: "KILLED" for i, s in status.items() if s != "FINISHED"})
            raise
