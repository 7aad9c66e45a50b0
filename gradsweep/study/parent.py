"""A study's MLflow parent run and what ties the two together: provenance tags, the
resume fingerprint, and the space and fixed values stored on the study for its report."""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
import tempfile
from dataclasses import asdict
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Dict, Optional

import optuna

from gradsweep.config import Config, ConfigError, flatten
from gradsweep.data.datasets import Dataset
from gradsweep.keys import Artifact, StudyAttr, Tag
from gradsweep.redaction import redact
from gradsweep.tracking.store import Run, Tracker

PACKAGES = ("gradsweep", "tensorflow", "keras", "optuna", "mlflow", "hydra-core", "numpy")


def _versions() -> Dict[str, str]:
    out = {Tag.version("python"): platform.python_version()}
    for package in PACKAGES:
        try:
            out[Tag.version(package)] = version(package)
        except PackageNotFoundError:
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
    tags = {
        Tag.DATA_NAME: config.data.name,
        Tag.DATA_DIGEST: data.digest,
        Tag.DATA_ROWS: f"{len(data.x_train)}+{len(data.x_val)}",
        **_versions(),
    }
    commit = _git_commit()
    if commit:
        tags[Tag.GIT_COMMIT] = commit
    return tags


def fingerprint(config: Config, data: Dataset) -> str:
    """What a study's trials depend on besides their parameters."""
    assert config.sweep is not None
    fixed = {k: v for k, v in asdict(config).items() if k in ("data", "model", "optimizer", "train")}
    text = json.dumps(
        {
            "space": config.sweep.space_json(),
            "fixed": fixed,
            "data": data.digest,
            "objective": asdict(config.sweep.objective),
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def check_resume(study: optuna.Study, config: Config, data: Dataset) -> None:
    """Records the fingerprint on a new study; refuses to resume one run differently.

    Raises:
        ConfigError: the study was run with another space, objective, config or data.
    """
    assert config.sweep is not None
    recorded, now = study.user_attrs.get(StudyAttr.FINGERPRINT), fingerprint(config, data)
    if recorded is None:
        study.set_user_attr(StudyAttr.FINGERPRINT, now)
    elif recorded != now:
        raise ConfigError(
            f"sweep.name: study {study.study_name!r} in {redact(config.sweep.storage)} was run with a different "
            "search space, objective, config or data; choose a new sweep.name or another sweep.storage"
        )


def record_study_context(study: optuna.Study, config: Config) -> None:
    """Stores the space and the fixed values on the study, so reports need only the study."""
    assert config.sweep is not None
    space = config.sweep.params()
    fixed = {k: v for k, v in flatten(config).items() if k not in space and isinstance(v, (str, int, float, bool))}
    study.set_user_attr(StudyAttr.SPACE, config.sweep.space_json())
    study.set_user_attr(StudyAttr.FIXED, fixed)


def parent_run(study: optuna.Study, tracker: Tracker, config: Config, data: Dataset) -> tuple[Run, bool]:
    """The study's MLflow parent run, created on the first start and resumed after;
    True when it is new (and still needs :func:`describe_parent`)."""
    assert config.sweep is not None
    run_id = study.user_attrs.get(StudyAttr.PARENT_RUN_ID)
    parent = tracker.resume_run(run_id) if run_id else None
    if parent is not None:
        return parent, False
    parent = tracker.start_run(
        config.sweep.name, {Tag.STUDY: config.sweep.name, Tag.KIND: "sweep", **run_tags(config, data)}
    )
    study.set_user_attr(StudyAttr.PARENT_RUN_ID, parent.id)  # late and resuming workers find it here
    return parent, True


def describe_parent(parent: Run, config: Config, config_yaml: str) -> None:
    """The sweep's settings as params, and its composed config as an artifact."""
    sweep = config.sweep
    assert sweep is not None
    parent.log_params(
        {
            "sweep.name": sweep.name,
            "sweep.n_trials": sweep.n_trials,
            "sweep.sampler": sweep.sampler,
            "sweep.pruner": sweep.pruner,
            "sweep.objective.metric": sweep.objective.metric,
            "sweep.objective.direction": sweep.objective.direction,
            "sweep.storage": redact(sweep.storage),
            "sweep.space": sweep.space_json(),
        }
    )
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / Artifact.CONFIG).write_text(redact(config_yaml))
        parent.log_artifacts(Path(tmp))
