"""Hydra composition: where the config tree is, and checking a command line's overrides
before Hydra (and TensorFlow) take over."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from gradsweep.config.schema import to_config
from gradsweep.errors import ConfigError

PACKAGE = Path(__file__).resolve().parents[1]


def config_dir() -> str:
    """The packaged config tree: ``gradsweep/conf`` when installed, ``conf/`` in a checkout."""
    for candidate in (PACKAGE / "conf", PACKAGE.parent / "conf"):
        if (candidate / "config.yaml").is_file():
            return str(candidate)
    raise FileNotFoundError(f"gradsweep's config tree is missing beside {PACKAGE}")


def compose_error(overrides: list[str]) -> Optional[str]:
    """Composes and validates the config as Hydra is about to (in a second, before
    TensorFlow loads); what went wrong, in one line naming the key or file, or None.

    Hydra itself would print several lines and a hint about HYDRA_FULL_ERROR.
    """
    import yaml
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        with initialize_config_dir(config_dir=config_dir(), version_base="1.3", job_name="gradsweep"):
            to_config(compose(config_name="config", overrides=overrides))
    except ConfigError as err:
        return str(err)
    except yaml.YAMLError as err:
        return _yaml_message(err)
    except (HydraException, OmegaConfBaseException, ValueError) as err:
        return _hydra_message(err)
    return None


def _yaml_message(err: BaseException) -> str:
    """``file:line: problem`` of a config file that is not YAML."""
    mark = getattr(err, "problem_mark", None)
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    if mark is None:
        return f"a config file is not valid YAML: {problem}"
    context = getattr(err, "context", None)
    return f"{mark.name}:{mark.line + 1}: not valid YAML: {problem}" + (f" ({context})" if context else "")


def _hydra_message(err: BaseException) -> str:
    """One line from Hydra's or OmegaConf's error: the key it names, or its first line."""
    from hydra.errors import OverrideParseException

    if isinstance(err, OverrideParseException):
        name = err.override.split("=", 1)[0].lstrip("+~")
        return (
            f"{name}: cannot parse the override {err.override!r}; quote a value with special characters: {name}='...'"
        )
    cause: Optional[BaseException] = err
    while cause is not None:
        key = getattr(cause, "full_key", None)
        if key:
            return f"{key}: {getattr(cause, 'msg', str(cause)).splitlines()[0]}"
        cause = cause.__cause__ or cause.__context__
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    if any(line.startswith("Available options in") for line in lines):
        start = next(i for i, line in enumerate(lines) if line.startswith("Available options in"))
        options = [line for line in lines[start + 1 :] if "/" not in line and " " not in line]
        return f"{lines[0]}; available: {', '.join(options)}"
    return lines[0] if lines else type(err).__name__
