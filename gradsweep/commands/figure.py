"""``gradsweep figure RUN_ID``: draw a run's gradient-flow figure from what it recorded.

A run recorded with ``tracking.figures=false`` keeps ``epochs.csv`` and ``regime.json``,
which hold everything the figure shows; this draws the figure the run would have drawn
at its end and logs it to the run. No training and no TensorFlow: a second or two.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Optional

from gradsweep.config import TrackingConfig
from gradsweep.errors import TrackingError, first_line
from gradsweep.keys import Artifact


def figure(run_id: str, tracking_uri: Optional[str] = None) -> str:
    """Draws run ``run_id``'s ``gradient_flow.png`` and logs it to the run; where it is.

    Raises:
        TrackingError: no such store, or no such run with ``epochs.csv`` and
            ``regime.json`` (names ``tracking.uri`` or the run).
    """
    tracking = TrackingConfig(uri=tracking_uri or TrackingConfig.uri)
    tracking.require_records()
    import pandas as pd

    from gradsweep.diagnosis.flow_figure import gradient_flow, recorded_layers
    from gradsweep.diagnosis.regime import Verdict
    from gradsweep.tracking.store import Tracker

    tracker = Tracker(tracking)
    with tempfile.TemporaryDirectory() as tmp:
        recorded, drawn = Path(tmp) / "recorded", Path(tmp) / "drawn"
        recorded.mkdir()
        drawn.mkdir()
        try:
            table = pd.read_csv(tracker.download(run_id, Artifact.EPOCHS, recorded))
            verdict = Verdict(**json.loads(tracker.download(run_id, Artifact.REGIME, recorded).read_text()))
        except Exception as err:
            raise TrackingError(
                f"run {run_id}: no such run with {Artifact.EPOCHS} and {Artifact.REGIME} in "
                f"tracking.uri {tracking.uri}: {first_line(err)}"
            ) from None
        gradient_flow(table, recorded_layers(table), drawn / Artifact.GRADIENT_FLOW, verdict)
        tracker.run(run_id).log_artifacts(drawn)
    return f"figure of {run_id}: {tracker.artifact_uri(run_id)}/{Artifact.GRADIENT_FLOW}"
