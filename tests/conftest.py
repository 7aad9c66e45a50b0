"""Shared fixtures: real stores in temporary folders, the shared credit card data."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

REPO = Path(__file__).resolve().parents[1]
CREDIT_CARD = Path(os.environ.get("GRADSWEEP_CREDIT_CARD_DIR", REPO.parent / "shared" / "data" / "credit_card"))


@pytest.fixture
def credit_card_dir() -> Path:
    if not (CREDIT_CARD / "Credit_card.csv").is_file():
        pytest.skip(f"credit card data not found in {CREDIT_CARD} (set GRADSWEEP_CREDIT_CARD_DIR)")
    return CREDIT_CARD


def run_gradsweep(*args: str, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    """Runs ``python -m gradsweep ARGS`` in ``cwd`` as a user would; stdout holds both streams."""
    return subprocess.run([sys.executable, "-m", "gradsweep", *args], cwd=cwd, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT,
                          text=True, timeout=timeout)


@pytest.fixture
def stores(tmp_path: Path) -> dict:
    """Overrides that point MLflow and Optuna at fresh SQLite files under tmp_path."""
    return {"tracking.uri": f"sqlite:///{tmp_path}/m.db", "sweep.storage": f"sqlite:///{tmp_path}/o.db",
            "tracking.artifacts": str(tmp_path / "artifacts")}
