"""``gradsweep rerun RUN_ID``: train a recorded run or trial again and compare.

Every run stores ``config.yaml`` with the exact seed it trained with; this trains that
config again as a new single run (tagged ``gradsweep.rerun_of``) and compares the two
``epochs.csv`` tables value by value. On CPU they are identical.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from gradsweep.config import ConfigError, TrackingConfig, from_dict
from gradsweep.data import DataError

log = logging.getLogger("gradsweep.rerun")


def _download(client, run_id: str, name: str, folder: str) -> Path:
    return Path(client.download_artifacts(run_id, name, folder))


def compare(before: pd.DataFrame, after: pd.DataFrame) -> float:
    """Largest absolute difference over the statistics both tables hold (NaN = NaN)."""
    columns = [c for c in before.columns if c in after.columns]
    if len(before) != len(after):
        return float("inf")
    a, b = before[columns].to_numpy(float), after[columns].to_numpy(float)
    same = (a == b) | (np.isnan(a) & np.isnan(b))  # equal infinities and NaN count as equal
    with np.errstate(invalid="ignore"):
        diff = np.where(same, 0.0, np.abs(a - b))
    return float(np.max(np.where(np.isnan(diff), np.inf, diff))) if diff.size else 0.0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="gradsweep rerun", description=__doc__.splitlines()[0])
    parser.add_argument("run_id", help="MLflow run id of a trial or single run")
    parser.add_argument("--tracking-uri", default=TrackingConfig.uri, help="MLflow tracking URI (%(default)s)")
    parser.add_argument("--experiment", default=TrackingConfig.experiment, help="experiment of the new run")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    from gradsweep.sweep import run_single
    from gradsweep.tracking import Tracker, TrackingError

    tracking = TrackingConfig(uri=args.tracking_uri, experiment=args.experiment)
    client = Tracker(tracking).client
    with tempfile.TemporaryDirectory() as tmp:
        try:
            recorded = yaml.safe_load(_download(client, args.run_id, "config.yaml", tmp).read_text())
            before = pd.read_csv(_download(client, args.run_id, "epochs.csv", tmp))
        except Exception as err:
            log.error("run %s: cannot read its config.yaml and epochs.csv: %s", args.run_id, str(err).splitlines()[0])
            return 2
        try:
            config = from_dict({**recorded, "tracking": vars(tracking)})
            summary = run_single(config, tags={"gradsweep.rerun_of": args.run_id})
        except (ConfigError, DataError, TrackingError) as err:
            log.error("%s", err)
            return 2
        fresh = Path(tmp) / "rerun"
        fresh.mkdir()
        after = pd.read_csv(_download(client, summary.parent_run_id, "epochs.csv", str(fresh)))
    worst = compare(before, after)
    verdict = "identical" if worst == 0 else f"max abs difference {worst:.3g}"
    log.info("rerun of %s -> %s: %d epochs, %s", args.run_id, summary.parent_run_id, len(after) - 1, verdict)
    return 0 if worst == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
