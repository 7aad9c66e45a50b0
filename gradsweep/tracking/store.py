"""MLflow recording: one parent run per sweep, one nested run per trial. The only module
that imports ``mlflow``.

Everything goes through an explicit :class:`mlflow.MlflowClient` (no global active run),
metrics gathered for up to ``_METRICS_EVERY`` seconds into one batch (a call costs more
than a small model's epoch, on SQLite and over HTTP), so a run costs a few calls
whatever its number of epochs.

A tracking server may restart under a sweep. Each HTTP call gives up after a few
seconds (MLflow's own retries, sized in :func:`size_http_retries`); a batch that still
failed waits in its run and goes out before the next one, and a run ends only once all
of its batches are delivered. A server away for longer than ``tracking.patience`` fails
the sweep with a message naming ``tracking.uri``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, TypeVar

from filelock import FileLock
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME

from gradsweep import stopping
from gradsweep.config import TrackingConfig
from gradsweep.errors import TrackingError, first_line
from gradsweep.keys import Tag
from gradsweep.redaction import redact
from gradsweep.retry import retrying

log = logging.getLogger(__name__)
T = TypeVar("T")

_BATCH = 1000  # MLflow's limit of entities (metrics, params and tags) per log_batch call
_LIMITS = {"metrics": 1000, "params": 100, "tags": 100}  # and of each kind
_METRICS_EVERY = 3.0  # seconds metrics may wait, to go out together in one call
_PARAM_LEN = 6000
_RETRY_EVERY = 5.0  # seconds between attempts to reach a server that went away


def size_http_retries() -> None:
    """MLflow's HTTP defaults (7 retries, backoff 2, 120 s timeout) block one call for
    about 4 minutes against a dead server. Two retries with backoff 1 give up in about
    3 s and ride out a blip; :class:`Run` keeps what failed, and the patience covers a
    restart. Settings already in the environment win; MLflow reads them at each call."""
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")


def _reason(err: BaseException) -> str:
    text = str(err)
    if "Max retries exceeded" in text or "NewConnectionError" in text:
        return "no answer (connection refused or timed out)"
    return first_line(err)


def _local_write_error(err: OSError) -> bool:
    """A file that cannot be written here (permissions, a file where a folder should be,
    a full or read-only disk), as opposed to a connection that failed."""
    import requests  # MLflow's HTTP client

    return not isinstance(err, (ConnectionError, TimeoutError, requests.RequestException))


def _not_a_database(err: BaseException) -> bool:
    text = str(err).lower()
    return "file is not a database" in text or "database disk image is malformed" in text


def _transient(err: Exception) -> bool:
    """A server error or no answer at all; a client error (bad request, 403) is final."""
    status = getattr(err, "get_http_status_code", None)
    return status is None or status() >= 500


class _Link:
    """Whether one tracking store answers, shared by a tracker and all its runs: an
    outage is timed from its first failed call, whichever run made it, so a sweep gives
    up ``patience`` seconds into an outage, not ``patience`` per call."""

    def __init__(self, uri: str, patience: float):
        self.uri, self.patience = uri, patience
        self.down_since: Optional[float] = None

    def check(self, what: str) -> None:
        """Fails at once, without a call, once an outage has outlasted the patience (the
        sweep is stopping; each further call would only wait for its timeout)."""
        if self.down_since is not None and time.monotonic() - self.down_since > self.patience:
            raise TrackingError(
                f"tracking.uri: MLflow at {redact(self.uri)} unreachable for "
                f"{time.monotonic() - self.down_since:.0f} s ({what})"
            )

    def failed(self, err: Exception, what: str) -> None:
        """Records a failed call.

        Raises:
            TrackingError: the failure is final (a refused request) or the outage has
                lasted longer than the patience.
        """
        if not _transient(err):
            raise TrackingError(f"tracking.uri: MLflow at {redact(self.uri)} refused {what}: {_reason(err)}")
        now = time.monotonic()
        if self.down_since is None:
            self.down_since = now
            log.warning(
                "MLflow at %s is not answering (%s); keeping what it misses for up to %.0f s: %s",
                redact(self.uri),
                what,
                self.patience,
                _reason(err),
            )
        if now - self.down_since > self.patience:
            raise TrackingError(
                f"tracking.uri: MLflow at {redact(self.uri)} unreachable for "
                f"{now - self.down_since:.0f} s ({what}): {_reason(err)}"
            )

    def answered(self) -> None:
        if self.down_since is not None:
            log.warning("MLflow at %s answers again after %.0f s", redact(self.uri), time.monotonic() - self.down_since)
        self.down_since = None

    def call(self, call: Callable[[], T], what: str) -> T:
        """Runs ``call``, retrying while the store is away (up to the patience)."""

        def attempt() -> T:
            self.check(what)
            try:
                result = call()
            except TrackingError:
                raise
            except Exception as err:
                self.failed(err, what)  # raises once the failure is final or the outage too long
                raise
            self.answered()
            return result

        # The outage is said once (by failed() and answered()), not at every attempt.
        policy = retrying(
            lambda err: not isinstance(err, TrackingError),
            patience=math.inf,
            what=what,
            first=1.0,
            most=_RETRY_EVERY,
            warn=False,
        )
        return policy(attempt)


def _create_store(db: Path, uri: str) -> None:
    """Makes a new SQLite store's tables in a file beside ``db`` that then takes its name.

    MLflow's migrations are dozens of steps, each committed alone: a process killed among
    them would leave a store no later run can open or migrate (``_alembic_tmp_*`` tables).
    Called under the store's file lock, so no other process makes the same file.
    """
    fresh = db.with_name(db.name + ".creating")
    fresh.unlink(missing_ok=True)  # a killed process's half-made store
    try:
        MlflowClient(tracking_uri=f"sqlite:///{fresh.resolve()}").search_experiments(max_results=1)
        os.replace(fresh, db)
    except Exception as err:
        raise TrackingError(f"tracking.uri: cannot create MLflow store {redact(uri)}: {_reason(err)}") from None


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
        self.link = _Link(cfg.uri, cfg.patience)
        size_http_retries()
        db = cfg.local_file
        if db is not None:
            try:
                db.parent.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise TrackingError(f"tracking.uri: cannot make the folder of {db}: {err.strerror}") from err
        if cfg.uri.startswith(("http://", "https://")):
            _check_server(cfg.uri)
        # Two first runs at once would both create MLflow's tables (and one fail): on a
        # local file, the first makes them while the other waits.
        with FileLock(f"{db}.gradsweep-lock") if db is not None else contextlib.nullcontext():
            if db is not None and not db.exists():
                _create_store(db, cfg.uri)
            self._open(cfg)

    def _open(self, cfg: TrackingConfig) -> None:
        try:
            self.client = MlflowClient(tracking_uri=cfg.uri)
            experiment = self.client.get_experiment_by_name(cfg.experiment)
            if experiment is None:
                location = Path(cfg.artifacts).resolve().as_uri() if _is_database(cfg.uri) else None
                self.experiment_id = self.client.create_experiment(
                    cfg.experiment, artifact_location=location, tags={Tag.EXPERIMENT_KIND: Tag.TRAINING_KIND}
                )
            else:
                self.experiment_id = experiment.experiment_id
                if Tag.EXPERIMENT_KIND not in experiment.tags:  # made by an older version or by hand
                    self.client.set_experiment_tag(self.experiment_id, Tag.EXPERIMENT_KIND, Tag.TRAINING_KIND)
        except Exception as err:
            hint = " (not an MLflow database: corrupted or cut off?)" if _not_a_database(err) else ""
            raise TrackingError(
                f"tracking.uri: cannot use MLflow store {redact(cfg.uri)}{hint}: {_reason(err)}"
            ) from None

    def start_run(self, name: str, tags: Dict[str, str], parent_id: Optional[str] = None) -> Run:
        """Creates a RUNNING run, nested under ``parent_id`` when given."""
        tags = {MLFLOW_RUN_NAME: name, **tags}
        if parent_id:
            tags[MLFLOW_PARENT_RUN_ID] = parent_id
        run = self.link.call(
            lambda: self.client.create_run(self.experiment_id, tags=tags, run_name=name), "creating a run"
        )
        return Run(self.client, run.info.run_id, self.link)

    def run(self, run_id: str) -> Run:
        """A handle on an existing run (e.g. the sweep's parent, from a worker)."""
        return Run(self.client, run_id, self.link)

    def download(self, run_id: str, name: str, folder: Path) -> Path:
        """Downloads artifact ``name`` of a run into ``folder``; its local path."""
        return Path(self.client.download_artifacts(run_id, name, str(folder)))

    def artifact_uri(self, run_id: str) -> str:
        """Where a run's artifacts are kept."""
        return str(self.client.get_run(run_id).info.artifact_uri)

    def tags(self, run_id: str) -> Dict[str, str]:
        """The tags of a run."""
        return dict(self.client.get_run(run_id).data.tags)

    def running(self, study: str) -> List[tuple[str, Dict[str, str]]]:
        """(run id, tags) of the runs of study ``study`` still marked RUNNING."""
        query = f"tags.`{Tag.STUDY}` = '{study}' and attributes.status = 'RUNNING'"
        runs = self.link.call(
            lambda: self.client.search_runs([self.experiment_id], filter_string=query, max_results=50000),
            "listing running runs",
        )
        return [(run.info.run_id, dict(run.data.tags)) for run in runs]

    def resume_run(self, run_id: str) -> Optional[Run]:
        """Marks an existing run RUNNING again, or returns None if it is gone."""
        try:
            self.client.get_run(run_id)
        except Exception:
            return None
        self.client.update_run(run_id, status="RUNNING")
        return self.run(run_id)


def log_artifacts_to(uri: str, run_id: str, folder: Path, artifact_path: str) -> None:
    """Uploads ``folder`` to an existing run, once; a failure is a warning (the files
    stay where they were written)."""
    size_http_retries()
    try:
        MlflowClient(tracking_uri=uri).log_artifacts(run_id, str(folder), artifact_path=artifact_path)
    except Exception as err:
        log.warning("%s not logged to MLflow run %s: %s", folder, run_id, _reason(err))


def _check_server(uri: str) -> None:
    """Fails at once, naming ``tracking.uri``, when nothing answers there (rather than
    after MLflow's retries)."""
    import requests

    try:
        requests.get(uri.rstrip("/") + "/health", timeout=10)
    except requests.RequestException as err:
        raise TrackingError(f"tracking.uri: no MLflow server answers at {redact(uri)}: {type(err).__name__}") from None


class Run:
    """One MLflow run, written in batches; batches that fail wait for the next call.

    Args:
        client: the MLflow client.
        run_id: the run.
        link: the store's availability, shared with the tracker's other runs.
    """

    def __init__(self, client: MlflowClient, run_id: str, link: Optional[_Link] = None):
        self.client, self.id = client, run_id
        self.link = link or _Link(client.tracking_uri, 60.0)
        self._pending: List[dict] = []
        self._oldest = 0.0  # when the oldest kept batch was made
        self._next_try = 0.0

    def _send(self, wait: bool = False, **batch: Any) -> None:
        if not self._pending:
            self._oldest = time.monotonic()
        self._pending.append(batch)
        if not wait or time.monotonic() - self._oldest >= _METRICS_EVERY:
            self._flush()

    def _next_batch(self) -> tuple[dict, int]:
        """The kept batches, oldest first, merged into one call within MLflow's limits:
        (the call's batch, how many kept batches it holds)."""
        merged: Dict[str, list] = {}
        taken = 0
        for batch in self._pending:
            sizes = {k: len(merged.get(k, ())) + len(v) for k, v in batch.items()}
            if taken and (
                sum(len(v) for v in merged.values()) + sum(len(v) for v in batch.values()) > _BATCH
                or any(n > _LIMITS[k] for k, n in sizes.items())
            ):
                break
            for kind, items in batch.items():
                merged.setdefault(kind, []).extend(items)
            taken += 1
        return merged, taken

    def _flush(self, force: bool = False) -> None:
        """Sends the kept batches in order; while the server is away, tries again at most
        every ``_RETRY_EVERY`` seconds so that training does not wait on each epoch.

        Raises:
            TrackingError: a batch was refused, or the outage outlasted the patience.
        """
        if not force and time.monotonic() < self._next_try:
            return
        while self._pending:
            self.link.check(f"logging to run {self.id}")
            batch, taken = self._next_batch()
            try:
                self.client.log_batch(self.id, **batch)
            except Exception as err:
                self.link.failed(err, f"logging to run {self.id}")
                self._next_try = time.monotonic() + _RETRY_EVERY
                return
            self.link.answered()
            del self._pending[:taken]

    def log_params(self, params: Dict[str, Any]) -> None:
        items = [Param(k, str(v)[:_PARAM_LEN]) for k, v in params.items()]
        for i in range(0, len(items), 100):
            self._send(params=items[i : i + 100])

    def set_tags(self, tags: Dict[str, Any], later: bool = False) -> None:
        """Sets tags now, or ``later``: with the next batch that goes out (at the latest
        when the run ends), as metrics wait, so that a run's last tags cost no call."""
        self._send(wait=later, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def rename(self, name: str) -> None:
        """Sets the run's name, with the next batch that goes out."""
        self.set_tags({MLFLOW_RUN_NAME: name}, later=True)

    def log_metrics(self, metrics: Dict[str, float], step: int) -> None:
        """Logs a dict of metrics at ``step``; they go out with the next params or tags,
        at the end of the run, or once metrics have waited ``_METRICS_EVERY`` seconds."""
        now = int(time.time() * 1000)
        items = [Metric(k, float(v), now, step) for k, v in metrics.items() if v is not None]
        for i in range(0, len(items), _BATCH):
            self._send(wait=True, metrics=items[i : i + _BATCH])

    def log_artifacts(self, folder: Path, artifact_path: Optional[str] = None) -> None:
        """Uploads ``folder``; a local write error fails at once (no server to wait for).

        Raises:
            TrackingError: the upload was refused, the server stayed away, or the local
                artifact location cannot be written (names ``tracking.artifacts``).
        """

        def upload() -> None:
            try:
                self.client.log_artifacts(self.id, str(folder), artifact_path=artifact_path)
            except OSError as err:
                if not _local_write_error(err):
                    raise
                location = self.client.get_run(self.id).info.artifact_uri
                experiment = self.client.get_experiment(self.client.get_run(self.id).info.experiment_id)
                raise TrackingError(
                    f"tracking.artifacts: cannot write run {self.id}'s artifacts to {location}: {first_line(err)}; "
                    f"experiment {experiment.name!r} keeps them under {experiment.artifact_location} (set when it "
                    "was created): make that writable, or use another tracking.experiment"
                ) from None

        self.link.call(upload, f"uploading artifacts of run {self.id}")

    def deliver(self) -> None:
        """Waits (up to the patience) until every batch kept back has been delivered.

        Raises:
            TrackingError: the server stayed away; names ``tracking.uri``.
        """
        while True:
            self._flush(force=True)
            if not self._pending:
                return
            time.sleep(_RETRY_EVERY)

    def finish(self, status: str = "FINISHED") -> None:
        """Delivers what is kept back, then ends the run with ``status``; a second Ctrl-C
        meanwhile waits until the run is ended."""
        with stopping.shielded():
            try:
                self.deliver()
            finally:
                self.link.call(lambda: self.client.set_terminated(self.id, status=status), f"ending run {self.id}")
