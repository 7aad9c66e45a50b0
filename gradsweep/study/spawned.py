"""The entry point of a spawned worker process.

A module of its own, importing nothing heavy: the child imports it to find its target,
before it can silence TensorFlow's start-up block.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import sys
import threading

from gradsweep import logs, stopping
from gradsweep.errors import GradsweepError

log = logging.getLogger(__name__)


def _die_with_parent() -> None:
    """Stops this worker, as SIGTERM would, once its parent process is gone (killed with
    -9, say): its trial then ends FAIL and its run KILLED, instead of the worker going on
    as an orphan with nobody to report to."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        parent.join()  # returns when the parent's end of the pipe closes, however it died
        log.warning("the sweep's main process is gone; stopping")
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="gradsweep-parent-watch", daemon=True).start()


def main(config: object, parent_id: str, index: int) -> None:
    """A spawned worker: its own TensorFlow, study handle and MLflow client."""
    stopping.install(worker=True)
    _die_with_parent()
    logs.setup(fmt=f"[%(asctime)s][worker {index}][%(name)s] %(message)s")
    logs.import_tensorflow()
    import optuna

    from gradsweep.study.worker import work

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the parent's progress bar speaks for all
    try:
        work(config, parent_id)  # type: ignore[arg-type]
    except KeyboardInterrupt:
        sys.exit(130)
    except GradsweepError as err:  # said in one line, as the parent would
        log.error("%s", err)
        sys.exit(err.exit_code)
