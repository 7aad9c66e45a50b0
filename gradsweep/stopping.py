"""Ctrl-C and SIGTERM, turned into a stop at the next safe point.

Raising KeyboardInterrupt from a signal handler lands wherever Python happens to be,
for instance inside a database commit, which then keeps its write lock and blocks every
other worker. Instead the first signal only sets a flag; training checks it at each
epoch end (after that epoch is logged) and the trial loop between trials, and raise
:class:`KeyboardInterrupt` there. A second signal in the main process stops at once.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from typing import Iterator

log = logging.getLogger(__name__)

_requested = threading.Event()
_shielded = 0  # how many shielded sections are open (ending runs): a second signal waits


def _handle(signum, frame) -> None:
    if _requested.is_set():
        if _shielded:
            log.warning("ending the runs that are open; stopping right after (signal %d)", signum)
            return
        raise KeyboardInterrupt(f"signal {signum}, again")
    _requested.set()
    log.warning("stopping at the end of this epoch (signal %d); send it again to stop at once", signum)


def _handle_once(signum, frame) -> None:
    # A worker: a terminal's Ctrl-C reaches every worker and the parent forwards SIGTERM
    # as well; neither may cut its clean-up short.
    _requested.set()


def install(worker: bool = False) -> None:
    """Routes SIGINT and SIGTERM to the stop flag in this process."""
    handler = _handle_once if worker else _handle
    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


@contextlib.contextmanager
def shielded() -> Iterator[None]:
    """A section a second signal may not cut short (a run being ended: cut, it would stay
    RUNNING); the stop it asks for is taken at the next :func:`check`."""
    global _shielded
    _shielded += 1
    try:
        yield
    finally:
        _shielded -= 1


def requested() -> bool:
    return _requested.is_set()


def check() -> None:
    """Raises KeyboardInterrupt, at a safe point, once a stop was asked for."""
    if _requested.is_set():
        raise KeyboardInterrupt("stop requested")
