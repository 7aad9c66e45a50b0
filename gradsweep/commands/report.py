"""``gradsweep report NAME`` and ``gradsweep compare A B``: rebuild reports from the
stores alone. A name, store or run that does not exist is one line and exit 2, and no
file is created for it."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, List, Optional

import optuna

from gradsweep.config import TrackingConfig, default_storage, sweep_folder
from gradsweep.config.compose import config_dir
from gradsweep.errors import ConfigError
from gradsweep.keys import Artifact, StudyAttr
from gradsweep.redaction import redact

if TYPE_CHECKING:
    from gradsweep.report.page import Report

log = logging.getLogger("gradsweep.report")


def _how_to_make(name: str) -> str:
    """The command that runs a sweep of this name."""
    shipped = (Path(config_dir()) / "sweep" / f"{name}.yaml").is_file()
    return f"python -m gradsweep +sweep={name}" if shipped else f"python -m gradsweep +sweep=YOURS sweep.name={name}"


def load_study(name: str, storage: Optional[str] = None) -> optuna.Study:
    """The study of sweep ``name``, without creating any store.

    Raises:
        ConfigError: no such store or no such study in it; names the key and the
            command that makes the sweep.
    """
    from gradsweep.study.storage import make_storage

    url = storage or default_storage(name)
    path = url[len("sqlite:///") :] if url.startswith("sqlite:///") else (None if "://" in url else url)
    if path is not None and not Path(path).is_file():
        key = "sweep.storage" if storage else "sweep.name"
        raise ConfigError(f"{key}: no study file {path} for sweep {name!r}; run `{_how_to_make(name)}` to make it")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        return optuna.load_study(study_name=name, storage=make_storage(url))
    except KeyError:
        raise ConfigError(
            f"sweep.name: no study {name!r} in {redact(url)}; run `{_how_to_make(name)}` to make it"
        ) from None


def report(name: str, storage: Optional[str] = None, tracking_uri: Optional[str] = None) -> Report:
    """Rebuilds the report of sweep ``name`` and logs it to the sweep's parent run."""
    study = load_study(name, storage)
    from gradsweep.report.page import build  # matplotlib and pandas: only once the study is there
    from gradsweep.tracking.store import log_artifacts_to

    built = build(study, sweep_folder(name) / Artifact.REPORT)
    run_id = study.user_attrs.get(StudyAttr.PARENT_RUN_ID)
    if run_id:
        log_artifacts_to(tracking_uri or TrackingConfig.uri, run_id, built.folder, Artifact.REPORT)
    log.info("report: %s (%s)", built.html, ", ".join(f"{k} {v}" for k, v in built.counts.items()))
    return built


def compare(names: List[str], storage: Optional[str] = None) -> Path:
    """Puts the reports of the named sweeps side by side; the page's path."""
    studies = [load_study(name, storage) for name in names]  # every name checked before anything is written
    from gradsweep.report.page import build_comparison

    page = build_comparison(studies, sweep_folder("compare_" + "_".join(names)))
    log.info("comparison: %s", page)
    return page
