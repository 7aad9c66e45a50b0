"""The entry point of a spawned worker process.

A module of its own, importing nothing heavy: the child imports it to find its target,
before it can silence TensorFlow's start-up block.
"""

from __future__ import annotations

import logging
import sys

from gradsweep import logs, stopping
from gradsweep.errors import GradsweepError

log = logging.getLogger(__name__)


def main(config: object, parent_id: str, index: int) -> None:
    """A spawned worker: its own TensorFlow, study handle and MLflow client."""
    stopping.install(worker=True)
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
