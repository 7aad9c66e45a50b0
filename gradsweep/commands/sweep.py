"""Run a sweep (an Optuna study, recorded in MLflow) or a single configured run.

The study lives in ``sweep.storage`` and remembers its MLflow parent run, so running the
same command again resumes both and stops at ``sweep.n_trials`` counted trials.
"""

from __future__ import annotations

import logging
from typing import Dict, Optional

import optuna
from optuna.trial import TrialState

from gradsweep import keys
from gradsweep.commands.summary import Summary
from gradsweep.config import Config, sweep_folder
from gradsweep.data.datasets import Dataset, load
from gradsweep.keys import Artifact, Tag, TrialRecord
from gradsweep.report.page import build as build_report
from gradsweep.study.lock import SweepLock
from gradsweep.study.objective import Objective
from gradsweep.study.parent import check_resume, describe_parent, parent_run, record_study_context, run_tags
from gradsweep.study.pool import run_pool
from gradsweep.study.recovery import Recovery
from gradsweep.study.storage import open_study
from gradsweep.study.worker import COUNTED, counts, end_orphan_runs, recovery_for, run_trials
from gradsweep.tracking.recorder import run_recorded
from gradsweep.tracking.store import Run, Tracker

log = logging.getLogger(__name__)


def run_sweep(
    config: Config,
    config_yaml: str = "",
    data: Optional[Dataset] = None,
    tracker: Optional[Tracker] = None,
    study: Optional[optuna.Study] = None,
) -> Summary:
    """Runs (or resumes) the configured sweep until ``sweep.n_trials`` trials are counted.

    Both stores' schemas, the study and its parent run are made here, before any worker
    starts (fresh schemas created by racing processes fail).

    Raises:
        ConfigError, DataError, TrackingError: bad input, before any training.
    """
    sweep = config.sweep
    assert sweep is not None
    data = data or load(config.data)
    tracker = tracker or Tracker(config.tracking)
    study = study or open_study(sweep)
    lock = SweepLock(sweep.storage, sweep.name)
    recovery = recovery_for(config, tracker)
    with lock:
        check_resume(study, config, data)
        record_study_context(study, config)
        parent, new = parent_run(study, tracker, config, data)
        recovery.reclaim(study, lock)
        end_orphan_runs(study, tracker, parent.id)
    status = "FAILED"
    try:
        if new:
            describe_parent(parent, config, config_yaml)
        _run_missing_trials(config, data, study, tracker, parent, lock, recovery)
        report = build_report(study, sweep_folder(sweep.name) / Artifact.REPORT)
        parent.log_artifacts(report.folder, Artifact.REPORT)
        summary = _summarise(study, config, parent, tracker, report.counts)
        summary.report = str(report.html)
        status = "FINISHED"
        return summary
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        parent.finish(status)


def _run_missing_trials(
    config: Config,
    data: Dataset,
    study: optuna.Study,
    tracker: Tracker,
    parent: Run,
    lock: SweepLock,
    recovery: Recovery,
) -> None:
    """Runs trials, in this process or in workers, until ``sweep.n_trials`` are counted."""
    from tqdm import tqdm

    sweep = config.sweep
    assert sweep is not None
    done = counts(study)["counted"]
    if done >= sweep.n_trials:
        log.info("study %s already has %d counted trials; nothing to run", sweep.name, done)
        return
    objective = Objective(config, data, tracker, parent) if sweep.n_workers == 1 else None
    if objective is not None:
        objective.population_size()  # sweep.population=0 measures its K here, before the bar is drawn
    bar = tqdm(total=sweep.n_trials, initial=done, desc=sweep.name, unit="trial")

    def progress(counted: int) -> None:
        bar.update(max(0, min(counted, sweep.n_trials) - bar.n))

    try:
        if objective is not None:
            run_trials(study, objective, sweep.n_trials, lock, recovery, progress)
        else:
            run_pool(config, parent.id, study, progress)
    finally:
        bar.close()
        with lock:  # trials of workers that died last are closed, not left RUNNING
            recovery.reclaim(study, lock)
            end_orphan_runs(study, tracker, parent.id)


def _summarise(study: optuna.Study, config: Config, parent: Run, tracker: Tracker, regimes: Dict[str, int]) -> Summary:
    assert config.sweep is not None
    counted = study.get_trials(deepcopy=False, states=COUNTED)
    complete = [t for t in counted if t.state == TrialState.COMPLETE]
    best = study.best_trial if complete else None
    parent.set_tags({Tag.REGIME_COUNT.format(regime): n for regime, n in regimes.items()})
    best_metrics: Dict[str, float] = {}
    if best is not None and best.value is not None:
        best_metrics = TrialRecord.read(best.user_attrs).metrics
        parent.set_tags({Tag.BEST_TRIAL: best.number, **{Tag.best_param(k): v for k, v in best.params.items()}})
        parent.log_metrics(
            {keys.BEST_VALUE: best.value, **{keys.best(k): v for k, v in best_metrics.items()}}, step=len(counted)
        )
    return Summary(
        name=study.study_name,
        trials=len(counted),
        pruned=sum(t.state == TrialState.PRUNED for t in counted),
        regimes=regimes,
        best_value=best.value if best else None,
        best_params=best.params if best else {},
        best_metrics=best_metrics,
        parent_run_id=parent.id,
        tracking_uri=tracker.uri,
        storage=config.sweep.storage,
        n_trials=config.sweep.n_trials,
        failed=len(study.get_trials(deepcopy=False, states=(TrialState.FAIL,))),
    )


def run_single(
    config: Config,
    tags: Optional[Dict[str, str]] = None,
    data: Optional[Dataset] = None,
    tracker: Optional[Tracker] = None,
) -> Summary:
    """Trains the configured model once, as one MLflow run (no study), seeded ``train.seed``."""
    data = data or load(config.data)
    tracker = tracker or Tracker(config.tracking)
    name = f"{config.model.activation} depth={len(config.model.hidden_widths)} {config.optimizer.name}"
    recorded = run_recorded(
        config, data, config.train.seed, tracker, name, {Tag.KIND: "single", **run_tags(config, data), **(tags or {})}
    )
    result, verdict = recorded.result, recorded.verdict
    log.info("regime: %s%s: %s", verdict.regime, f" ({verdict.detail})" if verdict.detail else "", verdict.summary)
    return Summary(
        name="(single run)",
        trials=1,
        pruned=0,
        regimes={verdict.regime: 1},
        best_value=result.final.get(keys.VAL_LOSS),
        best_params={},
        best_metrics={k: v for k, v in result.final.items() if k in keys.HEADLINE},
        parent_run_id=recorded.run.id,
        tracking_uri=tracker.uri,
        storage=None,
    )
