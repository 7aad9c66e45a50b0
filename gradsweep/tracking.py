"""MLflow recording: one parent run per sweep, one nested run per trial.

Everything goes through an explicit :class:`mlflow.MlflowClient` (no global active run),
metrics one batch per epoch, so a run costs a few calls even over HTTP.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Dict, Optional

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME

from gradsweep.config import TrackingConfig

log = logging.getLogger(__name__)

_BATCH = 1000  # MLflow's limit of metrics per log_batch call
_PARAM_LEN = 6000


class TrackingError(RuntimeError):
    """The tracking store cannot be used; the message names ``tracking.uri``."""


def _local_db_path(uri: str) -> Optional[Path]:
    """The file of a ``sqlite:///`` URI, relative to the working directory or absolute."""
    prefix = "sqlite:///"
    return Path(uri[len(prefix):]) if uri.startswith(prefix) else None


def _is_database(uri: str) -> bool:
    return uri.split(":", 1)[0].split("+", 1)[0] in ("sqlite", "postgresql", "mysql", "mssql")


class Tracker:
    """An MLflow experiment on one tracking store.

    Args:
        cfg: the tracking config; a local SQLite file's folder is created, and an
            experiment created here on a database store keeps artifacts in
            ``cfg.artifacts``.

    Raises:
        TrackingError: the store cannot be reached or opened.
    """

    def __init__(self, cfg: TrackingConfig):
        self.uri = cfg.uri
        db = _local_db_path(cfg.uri)
        if db is not None:
            db.parent.mkdir(parents=True, exist_ok=True)
        self.client = MlflowClient(tracking_uri=cfg.uri)
        try:
            experiment = self.client.get_experiment_by_name(cfg.experiment)
            if experiment is None:
                location = Path(cfg.artifacts).resolve().as_uri() if _is_database(cfg.uri) else None
                self.experiment_id = self.client.create_experiment(cfg.experiment, artifact_location=location)
            else:
                self.experiment_id = experiment.experiment_id
        except Exception as err:
            reason = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise TrackingError(f"tracking.uri: cannot use MLflow store {cfg.uri}: {reason}") from None

    def start_run(self, name: str, tags: Dict[str, str], parent_id: Optional[str] = None) -> "Run":
        """Creates a RUNNING run, nested under ``parent_id`` when given."""
        tags = {MLFLOW_RUN_NAME: name, **tags}
        if parent_id:
            tags[MLFLOW_PARENT_RUN_ID] = parent_id
        run = self.client.create_run(self.experiment_id, tags=tags, run_name=name)
        return Run(self.client, run.info.run_id)

    def resume_run(self, run_id: str) -> Optional["Run"]:
        """Marks an existing run RUNNING again, or returns None if it is gone."""
        try:
            self.client.get_run(run_id)
        except Exception:
            return None
        self.client.update_run(run_id, status="RUNNING")
        return Run(self.client, run_id)


class Run:
    """One MLflow run, written in batches."""

    def __init__(self, client: MlflowClient, run_id: str):
        self.client, self.id = client, run_id

    def log_params(self, params: Dict[str, Any]) -> None:
        items = [Param(k, str(v)[:_PARAM_LEN]) for k, v in params.items()]
        for i in range(0, len(items), 100):
            self.client.log_batch(self.id, params=items[i:i + 100])

    def set_tags(self, tags: Dict[str, Any]) -> None:
        self.client.log_batch(self.id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_metrics(self, metrics: Dict[str, float], step: int) -> None:
        """Logs a dict of metrics at ``step`` in as few calls as MLflow allows."""
        now = int(time.time() * 1000)
        items = [Metric(k, float(v), now, step) for k, v in metrics.items() if v is not None]
        for i in range(0, len(items), _BATCH):
            self.client.log_batch(self.id, metrics=items[i:i + _BATCH])

    def log_artifacts(self, folder: Path, artifact_path: Optional[str] = None) -> None:
        self.client.log_artifacts(self.id, str(folder), artifact_path=artifact_path)

    def finish(self, status: str = "FINISHED") -> None:
        self.client.set_terminated(self.id, status=status)
