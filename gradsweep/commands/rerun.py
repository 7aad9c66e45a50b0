"""``gradsweep rerun RUN_ID``: train a recorded run or trial again and compare.

Every run stores ``config.yaml`` with the exact seed it trained with; this trains that
config again as a new single run (tagged ``gradsweep.rerun_of``), for as many epochs as
the recorded run trained (a pruned trial stopped early, a diverged one at its
divergence), and compares the two ``epochs.csv`` tables value by value. On CPU they are
identical. A member of a population (tagged ``population``) is trained again alone: the
lone path, which a population matches to float32 rounding, so its comparison is relative,
within ``MEMBER_TOLERANCE``. The run is looked up before TensorFlow loads, so a wrong id
fails in a second.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import numpy as np
import yaml

from gradsweep import logs
from gradsweep.config import TrackingConfig, from_dict
from gradsweep.errors import TrackingError, first_line
from gradsweep.keys import Artifact, Tag

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger("gradsweep.rerun")
MEMBER_TOLERANCE = 1e-4


def compare(before: pd.DataFrame, after: pd.DataFrame, relative: bool = False) -> float:
    """Largest absolute (or relative) difference over the statistics both tables hold (NaN = NaN)."""
    columns = [c for c in before.columns if c in after.columns]
    if len(before) != len(after):
        return float("inf")
    a, b = before[columns].to_numpy(float), after[columns].to_numpy(float)
    same = (a == b) | (np.isnan(a) & np.isnan(b))  # equal infinities and NaN count as equal
    with np.errstate(invalid="ignore"):
        diff = np.where(same, 0.0, np.abs(a - b) / (np.maximum(np.abs(a), 1e-6) if relative else 1.0))
    return float(np.max(np.where(np.isnan(diff), np.inf, diff))) if diff.size else 0.0


def _why_stopped(tags: dict, epochs: int, planned: int) -> str:
    reason = tags.get(Tag.STOP_REASON, "")
    if reason == "diverged":
        return f"it diverged at epoch {epochs}"
    if epochs < planned:
        return f"it stopped at epoch {epochs} of {planned} ({reason or 'stopped early'})"
    return f"all {planned} epochs"


def rerun(run_id: str, tracking_uri: Optional[str] = None, experiment: Optional[str] = None) -> bool:
    """Trains run ``run_id`` again; True when every compared value is identical (for a
    population member: within ``MEMBER_TOLERANCE``, relative).

    Raises:
        TrackingError: no such store or run, or it has no ``config.yaml`` and
            ``epochs.csv`` (names ``tracking.uri`` or the run); before TensorFlow loads.
    """
    tracking = TrackingConfig(
        uri=tracking_uri or TrackingConfig.uri, experiment=experiment or TrackingConfig.experiment
    )
    tracking.require_records()
    import pandas as pd

    from gradsweep.tracking.store import Tracker

    tracker = Tracker(tracking)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            tags = tracker.tags(run_id)
            recorded = yaml.safe_load(tracker.download(run_id, Artifact.CONFIG, Path(tmp)).read_text())
            before = pd.read_csv(tracker.download(run_id, Artifact.EPOCHS, Path(tmp)))
        except Exception as err:
            raise TrackingError(
                f"run {run_id}: no such run with {Artifact.CONFIG} and {Artifact.EPOCHS} in "
                f"tracking.uri {tracking.uri}: {first_line(err)}"
            ) from None
        epochs = len(before) - 1  # row 0 is the initialisation
        planned = int(recorded["train"]["epochs"])
        recorded["train"]["epochs"] = max(1, epochs)
        config = from_dict({**recorded, "tracking": vars(tracking)})
        logs.import_tensorflow()
        from gradsweep.commands.sweep import run_single

        summary = run_single(config, tags={Tag.RERUN_OF: run_id})
        fresh = Path(tmp) / "rerun"
        fresh.mkdir()
        after = pd.read_csv(tracker.download(summary.parent_run_id, Artifact.EPOCHS, fresh))
    member = Tag.POPULATION in tags
    worst = compare(before, after, relative=member)
    if member:
        agrees = worst <= MEMBER_TOLERANCE
        verdict = (
            f"trained alone, a member of population {tags[Tag.POPULATION]}: max relative difference {worst:.3g}"
            f" ({'within' if agrees else 'beyond'} {MEMBER_TOLERANCE:g})"
        )
    else:
        agrees = worst == 0
        verdict = "identical" if agrees else f"max abs difference {worst:.3g}"
    log.info(
        "rerun of %s -> %s: compared %d epochs (%s), %d values each: %s",
        run_id,
        summary.parent_run_id,
        epochs,
        _why_stopped(tags, epochs, planned),
        before.size,
        verdict,
    )
    return agrees
