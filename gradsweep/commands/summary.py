"""The closing table of a sweep or run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional

from gradsweep.redaction import redact


@dataclass
class Summary:
    """What a sweep or run ended with, for the closing table."""

    name: str
    trials: int
    pruned: int
    regimes: Dict[str, int]
    best_value: Optional[float]
    best_params: Dict[str, Any]
    best_metrics: Dict[str, float]
    parent_run_id: str
    tracking_uri: str
    storage: Optional[str]
    report: Optional[str] = None
    n_trials: Optional[int] = None
    failed: int = 0

    def lines(self) -> list[str]:
        counted = f"{self.trials} ({self.pruned} pruned)"
        if self.n_trials is not None and self.trials > self.n_trials:
            counted += f"; {self.trials - self.n_trials} over sweep.n_trials, started by racing machines"
        rows = [("sweep", self.name), ("trials (complete + pruned)", counted)]
        if self.failed:
            rows.append(("failed attempts", f"{self.failed} (lost or interrupted trials run again are counted once)"))
        rows += [
            ("regimes", ", ".join(f"{k} {v}" for k, v in self.regimes.items() if v) or "-"),
            ("best value", "-" if self.best_value is None else f"{self.best_value:.4g}"),
        ]
        rows += [(f"  {k}", str(v)) for k, v in self.best_params.items()]
        rows += [(f"  {k}", f"{v:.4f}") for k, v in self.best_metrics.items()]
        rows += [("MLflow run", self.parent_run_id), ("MLflow store", redact(self.tracking_uri))]
        if self.storage:
            rows.append(("Optuna storage", redact(self.storage)))
        if self.report:
            rows.append(("regime map", self.report))
        uri = redact(self.tracking_uri)
        ui = f"mlflow ui --backend-store-uri {uri} --host 127.0.0.1" if not uri.startswith("http") else f"open {uri}"
        rows.append(("open the UI", ui))
        width = max(len(k) for k, _ in rows)
        return [f"{k.ljust(width)}  {v}" for k, v in rows]
