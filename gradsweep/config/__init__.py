"""The configuration: typed schema (:mod:`.schema`, the sweep's in :mod:`.sweep`, the value
checks in :mod:`.checks`) and Hydra composition (:mod:`.compose`)."""

from gradsweep.config.schema import (
    ACTIVATIONS,
    INITIALIZERS,
    STD_INITIALIZERS,
    Config,
    DataConfig,
    ModelConfig,
    OptimizerConfig,
    RegimeConfig,
    TrackingConfig,
    TrainConfig,
    flatten,
    from_dict,
    register,
    to_config,
)
from gradsweep.config.sweep import ObjectiveConfig, ParamSpec, SweepConfig, default_storage, sweep_folder
from gradsweep.errors import ConfigError

__all__ = [
    "ACTIVATIONS",
    "INITIALIZERS",
    "STD_INITIALIZERS",
    "Config",
    "ConfigError",
    "DataConfig",
    "ModelConfig",
    "ObjectiveConfig",
    "OptimizerConfig",
    "ParamSpec",
    "RegimeConfig",
    "SweepConfig",
    "TrackingConfig",
    "TrainConfig",
    "default_storage",
    "flatten",
    "from_dict",
    "register",
    "sweep_folder",
    "to_config",
]
