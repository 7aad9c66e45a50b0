"""A lock over one study across processes, so that workers decide one at a time
whether another trial may start (the study then ends at exactly ``sweep.n_trials``
counted trials) and pop queued trials (SQLite alone would hand one queued trial to
several workers)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Optional

from filelock import FileLock

from gradsweep.retry import patient


class SweepLock:
    """A lock over one study, across processes: a file lock beside a local storage, a
    PostgreSQL advisory lock for a shared one, nothing elsewhere (then a race between
    machines may run a surplus trial, which the summary reports).

    Args:
        storage: the study's storage URL or journal path.
        study: the study name (the advisory lock's key).
    """

    def __init__(self, storage: str, study: str):
        self.storage, self.study = storage, study
        self._file: Optional[FileLock] = None
        self._engine: Any = None
        self._connection: Any = None
        scheme = storage.split("://", 1)[0] if "://" in storage else ""
        if scheme.startswith("postgresql"):
            self.kind = "postgresql"
        elif scheme in ("", "sqlite"):
            self.kind = "file"
            path = storage[len("sqlite:///") :] if scheme else storage
            self.path = Path(path + ".gradsweep-lock")  # ".lock" is the journal's own
        else:
            self.kind = "none"

    @property
    def exclusive(self) -> bool:
        """Whether holding it excludes every other worker of the study, and a holder that
        dies releases it (the file lock and the advisory lock both are)."""
        return self.kind != "none"

    def __enter__(self) -> SweepLock:
        if self.kind == "file":
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = FileLock(self.path)
            self._file.acquire()
        elif self.kind == "postgresql":
            patient(self._advisory_lock, "taking the sweep lock")
        return self

    def __exit__(self, *exc) -> None:
        if self._file is not None:
            self._file.release()
            self._file = None
        if self._connection is not None:
            try:  # closing the session releases the advisory lock even if unlock fails
                self._connection.close()
            except Exception:  # the server went away; the lock went with the session
                pass
            self._connection = None

    def _advisory_lock(self) -> None:
        import sqlalchemy

        if self._engine is None:
            self._engine = sqlalchemy.create_engine(
                self.storage, pool_pre_ping=True, poolclass=sqlalchemy.pool.NullPool
            )
        key = int.from_bytes(hashlib.sha256(f"gradsweep:{self.study}".encode()).digest()[:8], "big", signed=True)
        connection = self._engine.connect()
        try:
            connection.execute(sqlalchemy.text("SELECT pg_advisory_lock(:key)"), {"key": key})
        except Exception:
            connection.close()
            raise
        self._connection = connection
