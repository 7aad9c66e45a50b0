"""The pool of local worker processes on one study.

TensorFlow is not fork-safe, hence spawn. A worker that dies (even by SIGKILL) leaves its
trial to the others: they see its process is gone and run it again.
"""

from __future__ import annotations

import logging
import multiprocessing
import time
from typing import Callable, Optional

import optuna

from gradsweep import stopping
from gradsweep.config import Config
from gradsweep.errors import WorkersFailed
from gradsweep.study import spawned
from gradsweep.study.worker import POLL_SECONDS, counts

log = logging.getLogger(__name__)


def run_pool(
    config: Config, parent_id: str, study: optuna.Study, progress: Optional[Callable[[int], None]] = None
) -> None:
    """Runs ``sweep.n_workers`` spawned worker processes on the study until it is done.

    Raises:
        WorkersFailed: every worker stopped while trials were still missing.
        KeyboardInterrupt: interrupted; the workers were stopped first.
    """
    sweep = config.sweep
    assert sweep is not None
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=spawned.main, args=(config, parent_id, i), name=f"gradsweep-worker-{i}")
        for i in range(sweep.n_workers)
    ]
    for process in workers:
        process.start()
    reported = set()
    try:
        while any(p.is_alive() for p in workers):  # is_alive() also reaps a dead child
            for i, p in enumerate(workers):
                if p.exitcode not in (None, 0) and i not in reported:
                    reported.add(i)
                    how = f"signal {-p.exitcode}" if p.exitcode < 0 else f"exit code {p.exitcode}"
                    log.warning("worker %d (pid %d) stopped with %s; the others carry on", i, p.pid, how)
            if progress is not None:
                progress(counts(study)["counted"])
            time.sleep(POLL_SECONDS)
            stopping.check()
    except KeyboardInterrupt:
        for p in workers:
            if p.is_alive():
                p.terminate()  # SIGTERM: the worker stops after its epoch, run KILLED, trial FAIL
        for p in workers:
            p.join(timeout=60)
            if p.is_alive():
                p.kill()
        raise
    codes = [p.exitcode for p in workers]
    if counts(study)["counted"] < sweep.n_trials and any(codes):  # all 0: the sampler ran out (grid)
        raise WorkersFailed(
            f"sweep.n_workers: all {len(workers)} workers stopped (exit codes {codes}) before "
            f"{sweep.n_trials} trials were counted; run the same command again to resume"
        )
