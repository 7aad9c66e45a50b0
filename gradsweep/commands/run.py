"""``gradsweep run [overrides]``: compose the config with Hydra, check it, and run the
sweep or the single run it describes."""

from __future__ import annotations

import logging
import sys
from typing import List

import hydra
from omegaconf import DictConfig, OmegaConf

from gradsweep import logs
from gradsweep.config import Config, register, to_config
from gradsweep.config.compose import compose_error, config_dir
from gradsweep.errors import ConfigError, GradsweepError

log = logging.getLogger("gradsweep")


def run(cfg: DictConfig) -> int:
    """Runs the composed config: a sweep when ``sweep`` is set, else one run."""
    from gradsweep.data.datasets import load

    try:
        # Bad input fails here, in seconds, before any store is opened or TensorFlow loads.
        config = to_config(cfg)
        if config.sweep is not None:
            from gradsweep.study.search import make_pruner, make_sampler

            make_sampler(config.sweep), make_pruner(config.sweep)
        _check_memory(config)
        data = load(config.data)
        # Then the stores, the study's first (an unreachable one leaves no MLflow database
        # behind): a bad one is said before TensorFlow's seconds of loading.
        study = None
        if config.sweep is not None:
            from gradsweep.study.storage import open_study

            study = open_study(config.sweep)
        from gradsweep.tracking.store import Tracker

        tracker = Tracker(config.tracking)
    except GradsweepError as err:
        log.error("%s", err)
        return err.exit_code
    # A sweep's worker processes load TensorFlow each; this one only where it trains.
    trains_here = config.sweep is None or config.sweep.n_workers == 1
    if trains_here:
        logs.import_tensorflow()
    from gradsweep.commands.sweep import run_single, run_sweep
    from gradsweep.training.device import configure, threads_for

    try:
        text = OmegaConf.to_yaml(cfg, resolve=True)  # @hydra.main hands over cfg without its hydra node
        if trains_here:
            log.debug("TensorFlow on %s", configure(config.device, threads_for(config.threads, 1)))
        if study is not None:
            summary = run_sweep(config, text, data, tracker=tracker, study=study)
        else:
            summary = run_single(config, data=data, tracker=tracker)
    except GradsweepError as err:
        log.error("%s", err)
        return err.exit_code
    except KeyboardInterrupt:
        log.error("interrupted: the running trial was marked failed and its MLflow run KILLED")
        return 130
    for line in summary.lines():
        log.info(line)
    return 0


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="config")
def _hydra_app(cfg: DictConfig) -> None:
    code = run(cfg)
    if code:
        sys.exit(code)


def main(overrides: List[str]) -> int:
    """Checks the overrides in a second (one line naming the key on error), then hands
    them to Hydra, which also takes its own flags (``--help``, ``--cfg job``, ``-m``)."""
    register()
    if not any(arg.startswith("-") for arg in overrides):  # Hydra's own flags: leave to Hydra
        error = compose_error(overrides)
        if error:
            raise ConfigError(error)
    sys.argv = [sys.argv[0], *overrides]
    _hydra_app()
    return 0


def _check_memory(config: Config) -> None:
    """The largest model of every worker must fit in this machine's available memory."""
    import psutil

    needed, available = config.memory_needed(), psutil.virtual_memory().available
    if needed > available:
        workers = config.sweep.n_workers if config.sweep is not None else 1
        population = config.sweep.population if config.sweep is not None else 1
        if population > 1:
            raise ConfigError(
                f"sweep.population: {population} nets of the largest model in {workers} worker(s) take about "
                f"{needed / 2**30:.1f} GiB; this machine has {available / 2**30:.1f} GiB available (a smaller "
                "sweep.population, or 0 to fit it automatically)"
            )
        raise ConfigError(
            f"model: the largest model in {workers} worker(s) takes about {needed / 2**30:.1f} GiB; this machine "
            f"has {available / 2**30:.1f} GiB available (a smaller model or fewer sweep.n_workers)"
        )
