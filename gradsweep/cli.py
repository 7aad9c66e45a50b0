"""Command line: ``gradsweep [hydra overrides]`` (same as ``python -m gradsweep``),
``gradsweep rerun RUN_ID``, ``gradsweep report NAME`` and ``gradsweep compare A B``.

A thin layer over the library: it composes the config, converts it to dataclasses once,
and turns expected failures (bad config, data or store) into one line and exit code 2.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from pathlib import Path
from typing import Optional

# Before TensorFlow or MLflow are imported anywhere.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

import hydra  # noqa: E402
from omegaconf import DictConfig, OmegaConf  # noqa: E402

from gradsweep import stopping  # noqa: E402
from gradsweep.config import ConfigError, register, to_config  # noqa: E402
from gradsweep.data import DataError  # noqa: E402

log = logging.getLogger("gradsweep")
# ./conf of the working directory is optional; Hydra warns when it is absent.
warnings.filterwarnings("ignore", message=r"provider=hydra\.searchpath in main, path=conf is not available")
EXPECTED = (ConfigError, DataError)


def config_dir() -> str:
    """The packaged config tree: ``gradsweep/conf`` when installed, ``conf/`` in a checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "conf", here.parent / "conf"):
        if (candidate / "config.yaml").is_file():
            return str(candidate)
    raise FileNotFoundError(f"gradsweep's config tree is missing beside {here}")


def quiet_libraries() -> None:
    """Keeps the libraries' INFO chatter out of the sweep's log."""
    for name in ("alembic", "mlflow.store", "mlflow.tracking", "absl"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # urllib3 warns at each of MLflow's retries; our tracker says it once, with the outcome.
    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)


def run(cfg: DictConfig) -> int:
    """Runs the composed config: a sweep when ``sweep`` is set, else one run."""
    from gradsweep.data import load

    try:
        config = to_config(cfg)
        data = load(config.data)  # bad data fails here, before TensorFlow loads
    except EXPECTED as err:
        log.error("%s", err)
        return 2
    from gradsweep.coordination import StorageUnavailable
    from gradsweep.device import configure, threads_for
    from gradsweep.sweep import run_single, run_sweep
    from gradsweep.tracking import TrackingError
    from gradsweep.worker import WorkersFailed

    quiet_libraries()
    try:
        text = OmegaConf.to_yaml(cfg, resolve=True)  # @hydra.main hands over cfg without its hydra node
        used = configure(config.device, threads_for(config.threads, config.sweep.n_workers if config.sweep else 1))
        log.debug("TensorFlow on %s", used)
        summary = run_sweep(config, text, data) if config.sweep else run_single(config, data=data)
    except (*EXPECTED, TrackingError) as err:
        log.error("%s", err)
        return 2
    except (StorageUnavailable, WorkersFailed) as err:
        log.error("%s", err)
        return 1
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


def compose_error(overrides: list[str]) -> Optional[str]:
    """Composes and validates the config as Hydra is about to (in a second, before
    TensorFlow loads); what went wrong, in one line naming the key or file, or None.

    Hydra itself would print several lines and a hint about HYDRA_FULL_ERROR.
    """
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        with initialize_config_dir(config_dir=config_dir(), version_base="1.3", job_name="gradsweep"):
            to_config(compose(config_name="config", overrides=overrides))
    except ConfigError as err:
        return str(err)
    except (HydraException, OmegaConfBaseException, ValueError) as err:
        cause: Optional[BaseException] = err
        while cause is not None:
            key = getattr(cause, "full_key", None)
            if key:
                return f"{key}: {getattr(cause, 'msg', str(cause)).splitlines()[0]}"
            cause = cause.__cause__ or cause.__context__
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        if any(line.startswith("Available options in") for line in lines):
            start = next(i for i, line in enumerate(lines) if line.startswith("Available options in"))
            options = [line for line in lines[start + 1:] if "/" not in line and " " not in line]
            return f"{lines[0]}; available: {', '.join(options)}"
        return lines[0] if lines else type(err).__name__
    return None


def main() -> None:
    """Entry point of ``gradsweep`` and ``python -m gradsweep``."""
    stopping.install()  # SIGTERM and Ctrl-C: runs end KILLED, the trial FAIL
    register()
    if len(sys.argv) > 1 and sys.argv[1] == "rerun":
        from gradsweep.rerun import main as rerun_main

        sys.exit(rerun_main(sys.argv[2:]))
    if len(sys.argv) > 1 and sys.argv[1] in ("report", "compare"):
        from gradsweep.report import main as report_main

        sys.exit(report_main(sys.argv[1:]))
    overrides = sys.argv[1:]
    if not any(arg.startswith("-") for arg in overrides):  # Hydra's own flags: leave to Hydra
        error = compose_error(overrides)
        if error:
            logging.basicConfig(format="[%(asctime)s][%(name)s][%(levelname)s] - %(message)s")
            log.error("%s", error)
            sys.exit(2)
    _hydra_app()
