"""The failures a person can act on, and how the command line ends for each.

Every expected failure is a :class:`GradsweepError` whose message is one line naming the
key, file or store to fix; the command line prints that line and exits with
``exit_code``: 2 for bad input, 1 for a store or worker that went away.
"""

from __future__ import annotations

from gradsweep.redaction import redact


class GradsweepError(Exception):
    """An expected failure; its message names what to fix."""

    exit_code = 2


class ConfigError(GradsweepError, ValueError):
    """A configuration value is invalid; the message names the key."""


class DataError(GradsweepError, ValueError):
    """The data cannot be loaded as configured; the message names the file or column."""


class TrackingError(GradsweepError, RuntimeError):
    """The tracking store cannot be used; the message names ``tracking.uri``."""


class StorageUnavailable(GradsweepError, RuntimeError):
    """The study's storage stayed unreachable; the message names ``sweep.storage``."""

    exit_code = 1


class WorkersFailed(GradsweepError, RuntimeError):
    """The local workers all stopped before the study had its trials."""

    exit_code = 1


def first_line(err: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message (passwords of URLs in it masked), or its
    type's name when it has none."""
    text = str(err).strip()
    return redact(text.splitlines()[0])[:limit] if text else type(err).__name__
