"""What the process prints: one log format, quiet libraries, no TensorFlow start-up noise."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from pathlib import Path
from typing import Any, Iterator

from gradsweep.redaction import redact

FORMAT = "[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"


def setup(level: int = logging.INFO, fmt: str = FORMAT) -> None:
    """Configures the root logger once per process (workers pass their own prefix)."""
    logging.basicConfig(level=level, format=fmt)
    quiet_libraries()
    redact_records()


def redact_records() -> None:
    """Every log record, ours and the libraries', with the passwords of its URLs masked
    when it is made: whatever handler writes it (the terminal, Hydra's log file) gets the
    masked text. Idempotent."""
    make = logging.getLogRecordFactory()
    if getattr(make, "redacts", False):
        return

    def masked(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        text = record.getMessage()
        clean = redact(text)
        if clean != text:
            record.msg, record.args = clean, None
        return record

    masked.redacts = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(masked)


def quiet_libraries() -> None:
    """Keeps the libraries' INFO chatter out of the sweep's log."""
    for name in ("alembic", "mlflow.store", "mlflow.tracking", "absl"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # urllib3 warns at each of MLflow's retries; the tracker says it once, with the outcome.
    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)


def nvidia_driver() -> bool:
    """Whether this machine has an NVIDIA driver (without asking TensorFlow)."""
    return Path("/proc/driver/nvidia/version").exists() or shutil.which("nvidia-smi") is not None


def quiet_environment() -> None:
    """Settings TensorFlow and MLflow read at import: before either is imported."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    # MLflow prints "View run ... at: URL" as each run ends: inside the progress bar, and
    # with the password of a URL that carries one. The summary says where the runs are.
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")


@contextlib.contextmanager
def stderr_silenced() -> Iterator[None]:
    """Sends file descriptor 2 to /dev/null: TensorFlow's shared libraries write their
    start-up block there before absl's logging exists, so no log level reaches it."""
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def import_tensorflow() -> None:
    """Imports TensorFlow (and Keras) without its start-up block on the terminal.

    Idempotent; an import error still raises, after stderr is back.
    """
    quiet_environment()
    import sys

    if "tensorflow" in sys.modules:
        return
    with stderr_silenced():
        import keras  # noqa: F401  (imports TensorFlow)
        import tensorflow  # noqa: F401
