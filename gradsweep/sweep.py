"""Run a sweep (an Optuna study, recorded in MLflow) or a single configured run.

The study lives in ``sweep.storage`` and remembers its MLflow parent run, so running the
same command again resumes both and stops at ``sweep.n_trials`` counted trials.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import platform
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, Optional

import optuna
from optuna.trial import TrialState

from gradsweep.config import Config, ConfigError, flatten, redact
from gradsweep.coordination import Recovery, SweepLock, owner, patient
from gradsweep.data import Dataset, load
from gradsweep.device import configure, threads_for
from gradsweep.report import build as build_report
from gradsweep.report import record_study_context
from gradsweep.search import open_study, suggest
from gradsweep.tracking import Run, Tracker
from gradsweep.trial import Recorded, derive_seed, objective_value, run_recorded
from gradsweep.worker import COUNTED, counts, run_pool, run_trials

log = logging.getLogger(__name__)

HEADLINE = ("train/loss", "train/accuracy", "val/loss", "val/accuracy")


@dataclass
class Summary:
    """What a sweep or run ended with, for the closing table."""

    name: str
    trials: int
    pruned: int
    regimes: Dict[str, int]
    best_value: Optional[float]
    best_params: Dict[str, Any]
    best_metrics: Dict[str, float]
    parent_run_id: str
    tracking_uri: str
    storage: Optional[str]
    report: Optional[str] = None
    n_trials: Optional[int] = None
    failed: int = 0

    def lines(self) -> list[str]:
        counted = f"{self.trials} ({self.pruned} pruned)"
        if self.n_trials is not None and self.trials > self.n_trials:
            counted += f"; {self.trials - self.n_trials} over sweep.n_trials, started by racing machines"
        rows = [("sweep", self.name), ("trials (complete + pruned)", counted)]
        if self.failed:
            rows.append(("failed attempts", f"{self.failed} (lost or interrupted trials run again are counted once)"))
        rows += [
            ("regimes", ", ".join(f"{k} {v}" for k, v in self.regimes.items() if v) or "-"),
            ("best value", "-" if self.best_value is None else f"{self.best_value:.4g}")]
        rows += [(f"  {k}", str(v)) for k, v in self.best_params.items()]
        rows += [(f"  {k}", f"{v:.4f}") for k, v in self.best_metrics.items()]
        rows += [("MLflow run", self.parent_run_id), ("MLflow store", redact(self.tracking_uri))]
        if self.storage:
            rows.append(("Optuna storage", redact(self.storage)))
        if self.report:
            rows.append(("regime map", self.report))
        ui = (f"mlflow ui --backend-store-uri {self.tracking_uri} --host 127.0.0.1"
              if not self.tracking_uri.startswith("http") else f"open {self.tracking_uri}")
        rows.append(("open the UI", ui))
        width = max(len(k) for k, _ in rows)
        return [f"{k.ljust(width)}  {v}" for k, v in rows]


def _versions() -> Dict[str, str]:
    from importlib.metadata import version

    out = {"versions.python": platform.python_version()}
    for package in ("gradsweep", "tensorflow", "keras", "optuna", "mlflow", "hydra-core", "numpy"):
        try:
            out[f"versions.{package}"] = version(package)
        except Exception:
            pass
    return out


def _git_commit() -> Optional[str]:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        return out.stdout.strip() if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def run_tags(config: Config, data: Dataset) -> Dict[str, str]:
    """Tags that every parent or single run carries: provenance of code and data."""
    tags = {"data.name": config.data.name, "data.digest": data.digest,
            "data.rows": f"{len(data.x_train)}+{len(data.x_val)}", **_versions()}
    commit = _git_commit()
    if commit:
        tags["mlflow.source.git.commit"] = commit
    return tags


def _fingerprint(config: Config, data: Dataset) -> str:
    """What a study's trials depend on besides their parameters."""
    fixed = {k: v for k, v in asdict(config).items() if k in ("data", "model", "optimizer", "train")}
    text = json.dumps({"space": config.sweep.space_json(), "fixed": fixed, "data": data.digest,
                       "objective": asdict(config.sweep.objective)}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _check_resume(study: optuna.Study, fingerprint: str, storage: str) -> None:
    recorded = study.user_attrs.get("fingerprint")
    if recorded is None:
        study.set_user_attr("fingerprint", fingerprint)
    elif recorded != fingerprint:
        raise ConfigError(
            f"sweep.name: study {study.study_name!r} in {redact(storage)} was run with a different search space, "
            "objective, config or data; choose a new sweep.name or another sweep.storage")


def _parent_run(study: optuna.Study, tracker: Tracker, config: Config, data: Dataset) -> tuple[Run, bool]:
    """The study's MLflow parent run, created on the first start and resumed after;
    True when it is new (and still needs :func:`_describe_parent`)."""
    run_id = study.user_attrs.get("mlflow_parent_run_id")
    parent = tracker.resume_run(run_id) if run_id else None
    if parent is not None:
        return parent, False
    sweep = config.sweep
    parent = tracker.start_run(sweep.name, {"optuna.study": sweep.name, "gradsweep.kind": "sweep",
                                            **run_tags(config, data)})
    study.set_user_attr("mlflow_parent_run_id", parent.id)  # late and resuming workers find it here
    return parent, True


def _describe_parent(parent: Run, study: optuna.Study, config: Config, config_yaml: str) -> None:
    sweep = config.sweep
    parent.log_params({"sweep.name": sweep.name, "sweep.n_trials": sweep.n_trials,
                       "sweep.sampler": sweep.sampler, "sweep.pruner": sweep.pruner,
                       "sweep.objective.metric": sweep.objective.metric,
                       "sweep.objective.direction": sweep.objective.direction,
                       "sweep.storage": redact(sweep.storage), "sweep.space": sweep.space_json()})
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "config.yaml").write_text(redact(config_yaml))
        parent.log_artifacts(Path(tmp))


def _trial_name(number: int, params: Dict[str, Any]) -> str:
    def short(v: Any) -> str:
        return f"{v:.3g}" if isinstance(v, float) else str(v)

    return f"trial-{number:03d} " + " ".join(f"{k.split('.')[-1]}={short(v)}" for k, v in params.items())


class Objective:
    """The Optuna objective: one recorded training per trial."""

    def __init__(self, config: Config, data: Dataset, tracker: Tracker, parent: Run):
        self.config, self.tracker, self.parent = config, tracker, parent
        self.space = config.sweep.params()
        # Trials that sweep data.* keys get their own data; equal settings share one copy.
        self._data = {_data_key(config): data}

    def _data_for(self, config: Config) -> Dataset:
        key = _data_key(config)
        if key not in self._data:
            self._data[key] = load(config.data)
        return self._data[key]

    def claim(self, trial: optuna.Trial) -> None:
        """Marks a new trial as this process's and fixes its seed (a re-run of a lost
        trial arrives with the seed of the attempt it replaces)."""
        attrs = trial.user_attrs
        patient(lambda: trial.set_user_attr("worker", owner()), "claiming a trial")
        if "seed" not in attrs:
            seed = derive_seed(self.config.train.seed, trial.number)
            patient(lambda: trial.set_user_attr("seed", seed), "claiming a trial")

    def __call__(self, trial: optuna.Trial) -> float:
        sweep = self.config.sweep
        params = suggest(trial, self.space)
        trial_config = self.config.with_params(params)
        attrs = trial.user_attrs
        seed = attrs.get("seed", derive_seed(self.config.train.seed, trial.number))
        pruned = []

        def report(epoch: int, metrics: Dict[str, float]) -> bool:
            value = metrics.get(sweep.objective.metric)
            if value is None or not math.isfinite(value):
                return False  # a diverged epoch stops training on its own
            patient(lambda: trial.report(value, epoch), "reporting an epoch")
            if patient(trial.should_prune, "asking the pruner"):
                pruned.append(epoch)
                return True
            return False

        tags = {"optuna.study": sweep.name, "optuna.trial_number": str(trial.number),
                "optuna.state": "RUNNING", "gradsweep.kind": "trial",
                **({"optuna.retry_of": str(attrs["retry_of"])} if "retry_of" in attrs else {})}
        started: list[Run] = []

        def link(run: Run) -> None:
            started.append(run)
            patient(lambda: trial.set_user_attr("mlflow_run_id", run.id), "linking the MLflow run")

        try:
            data = self._data_for(trial_config)
            recorded = run_recorded(trial_config, data, seed, self.tracker,
                                    _trial_name(trial.number, params), tags, parent=self.parent,
                                    listeners=[report], on_start=link)
            value = objective_value(recorded.result, sweep.objective.metric, data)
            patient(lambda: _record_on_trial(trial, recorded), "recording the verdict")
            recorded.run.set_tags({"optuna.state": "PRUNED" if pruned else "COMPLETE", "objective": value})
        except BaseException:
            if started:  # Optuna marks the trial FAIL; say so on its run too
                started[0].set_tags({"optuna.state": "FAIL"})
            raise
        if pruned:
            raise optuna.TrialPruned(f"pruned at epoch {pruned[0]}")
        return value


def _data_key(config: Config) -> str:
    return json.dumps(asdict(config.data), sort_keys=True)


def _record_on_trial(trial: optuna.Trial, recorded: Recorded) -> None:
    """What the map and report read back from the study alone."""
    result, verdict = recorded.result, recorded.verdict
    attrs = {"metrics": {k: v for k, v in result.final.items() if k in HEADLINE and math.isfinite(v)},
             "diverged": result.diverged, "stop_reason": result.stop_reason, "regime": verdict.regime,
             "regime.detail": verdict.detail, "regime.evidence": verdict.summary,
             "regime.facts": {k: v for k, v in verdict.facts.items() if math.isfinite(v)},
             "seconds": {k: round(v, 4) for k, v in recorded.timings.items()}, "reused_model": result.reused_model}
    if recorded.theory is not None:
        attrs["theory.chi1"] = recorded.theory.chi1
    if "measured/chi1" in result.init:
        attrs["measured.chi1"] = result.init["measured/chi1"]
    for key, value in attrs.items():
        trial.set_user_attr(key, value)


def _counted(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return study.get_trials(deepcopy=False, states=COUNTED)


def _recovery(config: Config, tracker: Tracker) -> Recovery:
    def close_lost_run(trial: optuna.trial.FrozenTrial) -> None:
        run_id = trial.user_attrs.get("mlflow_run_id")
        if run_id:  # its worker died with the run RUNNING
            try:
                run = tracker.run(run_id)
                run.set_tags({"optuna.state": "FAIL", "gradsweep.lost": f"worker {trial.user_attrs.get('worker')}"})
                run.finish("FAILED")
            except Exception as err:
                log.warning("could not end the lost trial's MLflow run %s: %s", run_id, err)

    return Recovery(config.sweep.max_retry, close_lost_run)


def work(config: Config, parent_id: str, index: int = 0) -> int:
    """One worker process of a sweep whose study and parent run already exist; returns
    the trials it ran."""
    configure(config.device, threads_for(config.threads, config.sweep.n_workers))
    data = load(config.data)
    study = open_study(config.sweep)
    tracker = Tracker(config.tracking)
    lock = SweepLock(config.sweep.storage, config.sweep.name)
    objective = Objective(config, data, tracker, tracker.run(parent_id))
    return run_trials(study, objective, config.sweep.n_trials, lock, _recovery(config, tracker))


def run_sweep(config: Config, config_yaml: str = "", data: Optional[Dataset] = None) -> Summary:
    """Runs (or resumes) the configured sweep until ``sweep.n_trials`` trials are counted.

    Both stores' schemas, the study and its parent run are made here, before any worker
    starts (fresh schemas created by racing processes fail).

    Raises:
        ConfigError, DataError, TrackingError: bad input, before any training.
    """
    from tqdm import tqdm

    sweep = config.sweep
    data = data or load(config.data)
    tracker = Tracker(config.tracking)
    study = open_study(sweep)
    lock = SweepLock(sweep.storage, sweep.name)
    recovery = _recovery(config, tracker)
    with lock:
        _check_resume(study, _fingerprint(config, data), sweep.storage)
        record_study_context(study, sweep, {k: v for k, v in flatten(config).items() if k not in sweep.params()})
        parent, new = _parent_run(study, tracker, config, data)
    status = "FAILED"
    try:
        if new:
            _describe_parent(parent, study, config, config_yaml)
        done = counts(study)["counted"]
        if done >= sweep.n_trials:
            log.info("study %s already has %d counted trials; nothing to run", sweep.name, done)
        else:
            bar = tqdm(total=sweep.n_trials, initial=done, desc=sweep.name, unit="trial")

            def progress(counted: int) -> None:
                bar.update(max(0, min(counted, sweep.n_trials) - bar.n))

            try:
                if sweep.n_workers == 1:
                    objective = Objective(config, data, tracker, parent)
                    run_trials(study, objective, sweep.n_trials, lock, recovery, progress)
                else:
                    run_pool(config, parent.id, study, progress)
            finally:
                bar.close()
                with lock:  # trials of workers that died last are closed, not left RUNNING
                    recovery.reclaim(study)
        report = build_report(study, Path("sweeps") / sweep.name / "report")
        parent.log_artifacts(report.folder, "report")
        summary = _summarise(study, config, parent, tracker, report.counts)
        summary.report = str(report.html)
        status = "FINISHED"
        return summary
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        parent.finish(status)


def _summarise(study: optuna.Study, config: Config, parent: Run, tracker: Tracker,
               regimes: Dict[str, int]) -> Summary:
    counted = _counted(study)
    complete = [t for t in counted if t.state == TrialState.COMPLETE]
    best = study.best_trial if complete else None
    if best is not None:
        parent.set_tags({"best.trial_number": best.number, **{f"best.{k}": v for k, v in best.params.items()}})
        best_metrics = {f"best/{k}": v for k, v in best.user_attrs.get("metrics", {}).items()}
        parent.log_metrics({"best/value": best.value, **best_metrics}, step=len(counted))
    return Summary(name=study.study_name, trials=len(counted),
                   pruned=sum(t.state == TrialState.PRUNED for t in counted), regimes=regimes,
                   best_value=best.value if best else None, best_params=best.params if best else {},
                   best_metrics=best.user_attrs.get("metrics", {}) if best else {},
                   parent_run_id=parent.id, tracking_uri=tracker.uri, storage=config.sweep.storage,
                   n_trials=config.sweep.n_trials,
                   failed=len(study.get_trials(deepcopy=False, states=(TrialState.FAIL,))))


def run_single(config: Config, tags: Optional[Dict[str, str]] = None, data: Optional[Dataset] = None) -> Summary:
    """Trains the configured model once, as one MLflow run (no study), seeded ``train.seed``."""
    data = data or load(config.data)
    tracker = Tracker(config.tracking)
    name = f"{config.model.activation} depth={len(config.model.hidden_widths)} {config.optimizer.name}"
    recorded = run_recorded(config, data, config.train.seed, tracker, name,
                            {"gradsweep.kind": "single", **run_tags(config, data), **(tags or {})})
    result, verdict = recorded.result, recorded.verdict
    log.info("regime: %s%s: %s", verdict.regime, f" ({verdict.detail})" if verdict.detail else "", verdict.summary)
    return Summary(name="(single run)", trials=1, pruned=0, regimes={verdict.regime: 1},
                   best_value=result.final.get("val/loss"), best_params={},
                   best_metrics={k: v for k, v in result.final.items() if k in HEADLINE},
                   parent_run_id=recorded.run.id, tracking_uri=tracker.uri, storage=None)
