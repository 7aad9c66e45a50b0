"""The one retry layer: calls to a store that may be away for a while (a database or
tracking server restarting) are retried here, with exponential back-off, until a
patience runs out."""

from __future__ import annotations

import logging
from typing import Callable, TypeVar

import tenacity

from gradsweep.errors import StorageUnavailable, first_line

log = logging.getLogger(__name__)
T = TypeVar("T")


def storage_transient(err: BaseException) -> bool:
    """An Optuna storage error that a reconnect may cure (not a bad request)."""
    import optuna
    import sqlalchemy.exc

    return isinstance(
        err, (optuna.exceptions.StorageInternalError, sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError)
    )


def retrying(
    transient: Callable[[BaseException], bool],
    patience: float,
    what: str,
    first: float = 0.5,
    most: float = 5.0,
    warn: bool = True,
) -> tenacity.Retrying:
    """A tenacity policy: retry while ``transient(err)``, back-off from ``first`` to
    ``most`` seconds, give up (re-raising the last error) after ``patience`` seconds;
    ``warn`` logs each retry (off where the caller says when an outage starts and ends)."""

    def say(state: tenacity.RetryCallState) -> None:
        err = state.outcome.exception() if state.outcome else None
        log.warning(
            "%s failed (%s); retrying in %.1f s",
            what,
            first_line(err) if err else "?",
            state.next_action.sleep if state.next_action else 0.0,
        )

    return tenacity.Retrying(
        retry=tenacity.retry_if_exception(transient),
        wait=tenacity.wait_exponential(multiplier=first, min=first, max=most),
        stop=tenacity.stop_after_delay(patience),
        before_sleep=say if warn else None,
        reraise=True,
    )


def patient(call: Callable[[], T], what: str, patience: float = 120.0) -> T:
    """Runs ``call`` on the study's storage, retrying while it is unreachable.

    Raises:
        StorageUnavailable: still failing after ``patience`` seconds; names ``sweep.storage``.
    """
    try:
        return retrying(storage_transient, patience, f"storage ({what})")(call)
    except Exception as err:
        if storage_transient(err):
            raise StorageUnavailable(
                f"sweep.storage: unreachable for {patience:.0f} s ({what}): {first_line(err)}"
            ) from None
        raise
