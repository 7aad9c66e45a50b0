"""gradsweep: map where deep networks' gradients vanish or explode across a
hyperparameter space (Hydra configs, Optuna trials, Keras, MLflow)."""

from gradsweep.config import Config, ConfigError, to_config
from gradsweep.data import Dataset, DataError, load

__all__ = ["Config", "ConfigError", "DataError", "Dataset", "load", "to_config"]
__version__ = "0.1.0"
