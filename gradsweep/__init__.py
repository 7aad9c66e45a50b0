"""gradsweep: map where deep networks' gradients vanish or explode across a
hyperparameter space (Hydra configs, Optuna trials, Keras, MLflow)."""

from gradsweep.config import Config, to_config
from gradsweep.data.datasets import Dataset, load
from gradsweep.errors import ConfigError, DataError

__all__ = ["Config", "ConfigError", "DataError", "Dataset", "load", "to_config"]
__version__ = "0.1.0"
