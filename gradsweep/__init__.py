"""gradsweep: map where deep networks' gradients vanish or explode across a
hyperparameter space (Hydra configs, Optuna trials, Keras, MLflow).

The names below load on first use, so that ``import gradsweep.errors`` (every module
does) stays cheap for commands that answer in a second.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Config": "gradsweep.config",
    "to_config": "gradsweep.config",
    "ConfigError": "gradsweep.errors",
    "DataError": "gradsweep.errors",
    "Dataset": "gradsweep.data.datasets",
    "load": "gradsweep.data.datasets",
}
__all__ = sorted(_EXPORTS)
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'gradsweep' has no attribute {name!r}")
